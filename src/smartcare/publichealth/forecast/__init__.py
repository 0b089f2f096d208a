"""Probabilistic forecasts of weekly counts (FluSight ``wk inc flu hosp``) in hubverse quantile format.

- :mod:`.baseline`: the FluSight-baseline method (flat line, symmetrised one-week differences);
- :mod:`.gbm`: a global gradient-boosted quantile model trained across all locations
  (optionally with CDC ILINet seasons as extra training history, :mod:`.extra`);
- :mod:`.blend`: weighted quantile averaging; ``gbm-blend`` = 0.35 GBM + 0.35 GBM-with-ILINet + 0.3 baseline;
- :mod:`.models`: registry by name and :func:`forecast`, which cuts the history at the reference date;
- :mod:`.backtest`: rolling-origin backtests scored against FluSight-ensemble and FluSight-baseline.
"""

from smartcare.publichealth.forecast.models import DEFAULT_MODEL, HORIZONS, MODELS, forecast, make_model

__all__ = ["DEFAULT_MODEL", "HORIZONS", "MODELS", "forecast", "make_model"]
