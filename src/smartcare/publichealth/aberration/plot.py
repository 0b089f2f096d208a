"""Epidemic curve with the detector's threshold and alarms (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smartcare.publichealth.series import CountSeries


def plot_detection(
    series: list[CountSeries], alarms: pd.DataFrame, path: str | Path, title: str = ""
) -> Path:
    """Write a PNG with one panel per location: observed counts (filled steps), upper bound (line), alarms (red).

    Args:
        series: the input series (full history is drawn).
        alarms: output of :func:`~smartcare.publichealth.aberration.methods.detect_frame`.
        path: PNG file to write.
    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(series)
    fig, axes = plt.subplots(n, 1, figsize=(10, 3 * n), squeeze=False)
    for ax, s in zip(axes[:, 0], series, strict=True):
        part = alarms[alarms["location"] == s.location]
        if s.dates is not None:
            x_all = pd.to_datetime(s.dates)
            x_judged = pd.to_datetime(part["date"])
        else:
            x_all, x_judged = np.arange(1, len(s) + 1), part["date"].to_numpy()
        # a filled step curve stays visible when weeks are narrower than a pixel (bars vanish)
        ax.fill_between(x_all, s.observed, step="mid", color="0.75", label="observed")
        ax.step(x_judged, part["upperbound"], where="mid", color="tab:blue", label="upper bound")
        hit = part["alarm"].fillna(0).astype(int).to_numpy() == 1
        ax.scatter(np.asarray(x_judged)[hit], part["observed"].to_numpy()[hit], color="red", zorder=3,
                   marker="v", label="alarm")
        ax.set_ylabel("cases")
        ax.set_title(f"{title} {s.location}".strip())
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
