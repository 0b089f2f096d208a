"""One Typer app class for every `smartcare` command group: bad input exits 2 with one line.

Each domain's CLI (and the top-level one) builds its app with :class:`CommandApp`. Every command it
registers is wrapped once, here, so a :class:`~smartcare.core.errors.SmartcareError` raised anywhere
under a command prints ``error: <message>`` on stderr and exits with status 2 — no traceback, and
the same behaviour whether the command runs from ``smartcare`` or from a domain app in a test.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from smartcare.core.errors import SmartcareError

EXIT_BAD_INPUT = 2


def guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command callback so bad input becomes one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SmartcareError as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


class CommandApp(typer.Typer):
    """``typer.Typer`` whose commands all go through :func:`guard`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("pretty_exceptions_enable", False)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            register(guard(fn))
            return fn

        return decorator
