"""Optional Ray execution shared by the domains (DESIGN.md, Scale).

Local execution never needs Ray. ``ray_map`` runs a picklable function over items as Ray tasks, on the
cluster at ``SMARTCARE_RAY_ADDRESS`` or on a local one it starts and stops itself, and returns the
results in input order, so callers get the same output as a local loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from smartcare.core.errors import SmartcareError


def ray_map(fn: Callable[..., Any], items: Sequence[Any], *, shared: tuple = (), num_cpus: int = 2) -> list[Any]:
    """``[fn(*shared, item) for item in items]`` as Ray tasks; ``shared`` objects are put in the store once.

    Raises ``SmartcareError`` when Ray is not installed (the ``dist`` extra).
    """
    try:
        import ray
    except ImportError as err:
        raise SmartcareError("--ray needs Ray: pip install 'smartcare[dist]'") from err
    address = os.environ.get("SMARTCARE_RAY_ADDRESS") or None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 num_cpus=None if address else max(num_cpus, 1))
    try:
        refs = [ray.put(obj) for obj in shared]
        task = ray.remote(num_cpus=1)(_apply)  # a plain function: Ray refuses partials and callables
        return ray.get([task.remote(fn, *refs, item) for item in items])
    finally:
        if started:
            ray.shutdown()


def _apply(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)
