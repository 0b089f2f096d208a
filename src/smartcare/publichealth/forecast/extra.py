"""Extra training history for the global model: CDC ILINet weighted ILI as pseudo-count series.

The NHSN hospital series start in 2022, so a model trained on them alone has seen one or two seasons.
ILINet (``publichealth/cdc_ilinet``: national and 10 HHS regions, 1997-2023) adds many season shapes.
Weighted ILI (% of visits) carries a non-influenza floor, so each season's minimum is removed and the
excess is scaled to a count-like size::

    pseudo[t] = round(scale * (wILI[t] - min over the season of wILI))

These series only join the training examples (locations ``ili-<region>``); nothing is forecast for them.
The shipped files end at 2023 week 37, before every evaluated FluSight round.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from smartcare.core.data import dataset_path

DATASET = "publichealth/cdc_ilinet"
FILES = ("ilinet_national_1997w40_2023w37.csv", "ilinet_hhs_regions_1997w40_2023w37.csv")


def ilinet_pseudo_counts(root: Path | str | None = None, first_season: int = 2010, scale: float = 200.0
                         ) -> pd.DataFrame:
    """ILINet national + HHS-region series as a target table (``date, location, value, population``).

    In: the shared data root (``SMARTCARE_DATA``), the first season's start year, the scale factor.
    Out: one row per week-ending Saturday and series; ``population`` is NaN.
    Raises DatasetMissingError when the folder is absent.
    """
    folder = dataset_path(DATASET, root)
    raw = pd.concat([pd.read_csv(folder / f) for f in FILES], ignore_index=True)
    raw = raw.dropna(subset=["weighted_ili"])
    raw["date"] = pd.to_datetime(raw["week_start"]) + pd.Timedelta(days=6)  # Sunday start -> Saturday end
    raw = raw[raw["season"].str[:4].astype(int) >= first_season]
    floor = raw.groupby(["region", "season"])["weighted_ili"].transform("min")
    out = pd.DataFrame({
        "date": raw["date"],
        "location": "ili-" + raw["region"].str.replace(" ", "").str.lower(),
        "value": (scale * (raw["weighted_ili"] - floor)).round(),
        "population": float("nan"),
    })
    return out.sort_values(["location", "date"]).drop_duplicates(["location", "date"]).reset_index(drop=True)
