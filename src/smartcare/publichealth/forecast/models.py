"""Forecasters registered by name, and the one entry point that keeps a forecast honest.

:func:`forecast` cuts the target table at the reference date before any model sees it: a forecast for
reference date D is fitted on rows dated strictly before D only.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from smartcare.core.errors import SmartcareError
from smartcare.publichealth.forecast.baseline import FluSightBaseline
from smartcare.publichealth.forecast.blend import QuantileBlend
from smartcare.publichealth.forecast.data import check_reference_date, history_before, prepare_targets
from smartcare.publichealth.forecast.gbm import GlobalQuantileGBM

#: name -> factory of an unfitted forecaster (``fit(targets)``, ``predict(reference_date, horizons)``)
MODELS: dict[str, Callable[[], object]] = {
    FluSightBaseline.name: FluSightBaseline,
    GlobalQuantileGBM.name: GlobalQuantileGBM,
    "gbm-global-ili": GlobalQuantileGBM.with_ilinet,  # needs publichealth/cdc_ilinet
    QuantileBlend.name: QuantileBlend,  # needs publichealth/cdc_ilinet (one member trains on it)
}
DEFAULT_MODEL = GlobalQuantileGBM.name
HORIZONS = (0, 1, 2, 3)  # FluSight 2023-24 onwards: weeks after the reference date


def make_model(name: str):
    """A fresh forecaster by registry name; raises SmartcareError naming the known models."""
    try:
        return MODELS[name]()
    except KeyError:
        raise SmartcareError(f"unknown forecast model {name!r}; known: {sorted(MODELS)}") from None


def forecast(targets: pd.DataFrame, reference_date, model: str | object = DEFAULT_MODEL,
             horizons=HORIZONS) -> pd.DataFrame:
    """Quantile forecasts for every location in ``targets`` made on ``reference_date``.

    In: a target table (``date, location, value`` + optional ``weekly_rate``/``population``), a date,
    a model name from :data:`MODELS` or an unfitted forecaster. Out: hubverse long table, 23 quantiles
    per (location, horizon), target ``wk inc flu hosp``. Only rows dated before ``reference_date`` are
    passed to the model.

    Raises:
        SmartcareError: bad targets, unknown model, a reference date with no history before it.
    """
    prepared = prepare_targets(targets)
    ref = check_reference_date(prepared, reference_date)
    est = make_model(model) if isinstance(model, str) else model
    if any(h < 0 for h in horizons):
        raise SmartcareError(f"horizons must be >= 0, got {list(horizons)}")
    return est.fit(history_before(prepared, ref)).predict(ref, horizons=tuple(horizons))
