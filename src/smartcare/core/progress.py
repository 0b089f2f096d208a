"""Progress reporting for long jobs (tqdm)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    """Bars show on a terminal, or anywhere when ``SMARTCARE_PROGRESS=1``; ``0`` hides them."""
    flag = os.environ.get("SMARTCARE_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "")
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, **kw) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on stderr when progress is enabled."""
    return iter(tqdm(iterable, desc=desc, total=total, disable=not progress_enabled(), **kw))
