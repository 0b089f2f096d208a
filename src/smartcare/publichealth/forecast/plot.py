"""Forecast fan chart: observed weekly counts with the 50/80/95% bands and median, one panel per location."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

BANDS = ((0.025, 0.975, 0.18), (0.1, 0.9, 0.3), (0.25, 0.75, 0.5))  # (lower, upper, alpha)


def fan_chart(forecasts: pd.DataFrame, targets: pd.DataFrame, path: str | Path, weeks_shown: int = 26,
              max_panels: int = 12) -> Path:
    """Write a PNG fan chart of hubverse ``forecasts`` over the observed ``targets``.

    In: forecasts (long; one reference date), targets (``date, location, value``). Shows at most
    ``max_panels`` locations (the largest by last median) and ``weeks_shown`` weeks of history.
    Out: the PNG path.
    """
    fc = forecasts.copy()
    fc["target_end_date"] = pd.to_datetime(fc["target_end_date"])
    tg = targets.copy()
    tg["date"] = pd.to_datetime(tg["date"])
    ref = pd.to_datetime(fc["reference_date"]).max()
    med = fc[np.isclose(fc["output_type_id"].astype(float), 0.5)]
    locs = med.groupby("location")["value"].max().sort_values(ascending=False).index[:max_panels]
    names = {}
    if "location_name" in tg.columns:
        names = tg.drop_duplicates("location").set_index("location")["location_name"].astype(str).to_dict()
    n = len(locs)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 2.8 * nrow), squeeze=False)
    for ax, loc in zip(axes.ravel(), locs, strict=False):
        obs = tg[(tg["location"] == loc) & (tg["date"] >= ref - pd.Timedelta(weeks=weeks_shown))
                 & (tg["date"] <= ref + pd.Timedelta(weeks=6))]
        ax.plot(obs["date"], obs["value"], color="black", lw=1.2, marker=".", label="observed")
        wide = fc[fc["location"] == loc].pivot_table(index="target_end_date", columns="output_type_id",
                                                     values="value")
        levels = wide.columns.to_numpy(dtype=float)
        for lo, hi, alpha in BANDS:
            ilo, ihi = np.argmin(np.abs(levels - lo)), np.argmin(np.abs(levels - hi))
            ax.fill_between(wide.index, wide.iloc[:, ilo], wide.iloc[:, ihi], color="tab:blue", alpha=alpha,
                            lw=0, label=f"{round((hi - lo) * 100)}% interval")
        ax.plot(wide.index, wide.iloc[:, np.argmin(np.abs(levels - 0.5))], color="tab:blue", lw=1.5,
                label="median")
        ax.axvline(ref, color="grey", ls="--", lw=0.8)
        ax.set_title(names.get(loc, str(loc)), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6, loc="upper left")
    fig.suptitle(f"Weekly admissions forecast, reference date {ref:%Y-%m-%d}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
