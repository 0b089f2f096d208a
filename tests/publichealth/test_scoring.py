"""WIS, coverage and relative WIS: definitions, and the published / reference FluSight numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smartcare.core.errors import SmartcareError
from smartcare.publichealth import hub, scoring
from smartcare.publichealth.cli import app as cli_app

HEAD = "target_hospital_admissions_2022-02-05_to_2025-09-27.csv"
ARCHIVE = "target_hospital_admissions_asof_2024-04-27.csv"
# 2023-24 FluSight paper protocol (flusight_hosp/MANIFEST.md): archive truth, target_end_date <= 2024-05-01,
# states + DC + PR, Massachusetts (FIPS 25) 2023-12-09 round excluded
PAPER_2023_24 = scoring.EvaluationSubset(("US",), "2024-05-01", (("25", "2023-12-09"),))
STATES = scoring.EvaluationSubset(("US",))


@pytest.fixture(scope="module")
def flusight(shared_data):
    return shared_data / "publichealth" / "flusight_hosp"


@pytest.fixture(scope="module")
def forecasts(flusight):
    return {s: hub.read_forecasts(flusight / f"forecasts_FluSight-ensemble_baseline_{s}.csv")
            for s in ("2023-24", "2024-25")}


@pytest.fixture(scope="module")
def scores(flusight, forecasts):
    head = hub.read_targets(flusight / HEAD)
    out = {(s, "head"): scoring.score_forecasts(fc, head) for s, fc in forecasts.items()}
    archive = hub.read_targets(flusight / ARCHIVE)
    out[("2023-24", "archive")] = scoring.score_forecasts(forecasts["2023-24"], archive)
    return out


def _split(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    model = scores["model_id"]
    return scores[model == "FluSight-ensemble"], scores[model == "FluSight-baseline"]


# ----------------------------------------------------------------------------- definitions
def test_point_forecast_wis_is_absolute_error():
    values = np.full((3, 23), 10.0)  # (N, Q): every quantile at 10
    y = np.array([10.0, 4.0, 25.0])
    np.testing.assert_allclose(scoring.wis_array(values, y), [0.0, 6.0, 15.0])


def test_wis_equals_scaled_pinball_loss():
    rng = np.random.default_rng(0)
    values = np.sort(rng.gamma(2.0, 20.0, size=(200, 23)), axis=1)  # (N, Q)
    y = rng.gamma(2.0, 20.0, size=200)
    tau = np.asarray(hub.QUANTILES)
    pinball = ((y[:, None] < values) - tau) * (values - y[:, None])  # (N, Q)
    np.testing.assert_allclose(scoring.wis_array(values, y), 2 / 23 * pinball.sum(axis=1), rtol=1e-12)


def test_coverage_includes_bounds_and_propagates_missing():
    values = np.tile(np.arange(23, dtype=float), (4, 1))  # q0.25 at index 6, q0.75 at 16
    y = np.array([6.0, 16.0, 16.5, np.nan])
    np.testing.assert_array_equal(scoring.coverage_array(values, y, 0.5)[:3], [1, 1, 0])
    assert np.isnan(scoring.coverage_array(values, y, 0.5)[3])
    with pytest.raises(SmartcareError, match="needs levels"):
        scoring.coverage_array(values, y, 0.33)


def test_relative_wis_arguments(scores):
    ens, base = _split(scores[("2024-25", "head")])
    with pytest.raises(SmartcareError, match="scale"):
        scoring.relative_wis(ens, base, scale="log")
    with pytest.raises(SmartcareError, match="more than one model"):
        scoring.relative_wis(scores[("2024-25", "head")], base)
    with pytest.raises(SmartcareError, match="share no scored forecast"):
        scoring.relative_wis(ens[ens["location"] == "01"], base[base["location"] == "02"])
    assert scoring.relative_wis(base, base) == 1.0


# ----------------------------------------------------------------------------- acceptance
def test_published_2023_24_ensemble_relative_wis_is_0_71(scores):
    paper = scoring.select(scores[("2023-24", "archive")], PAPER_2023_24)
    ens, base = _split(paper)
    assert len(ens.dropna(subset=["wis"])) == len(base.dropna(subset=["wis"])) == 5716
    rel = scoring.relative_wis(ens, base, scale="log1p")
    assert round(rel, 2) == 0.71  # published_FluSight2023-24_table1.csv
    assert rel == pytest.approx(0.70968, abs=1e-5)  # reference_wis_summary replication
    # published coverage: ensemble 51.7% / 92.67%, baseline 28.17% / 88.79%
    assert 100 * ens["cov50"].mean() == pytest.approx(51.7, abs=0.1)
    assert 100 * ens["cov95"].mean() == pytest.approx(92.67, abs=0.05)
    assert 100 * base["cov50"].mean() == pytest.approx(28.17, abs=0.01)
    assert 100 * base["cov95"].mean() == pytest.approx(88.79, abs=0.01)


SUBSETS = {"states+DC+PR (no US)": lambda s: s[s["location"] != "US"],
           "US national": lambda s: s[s["location"] == "US"],
           "all locations": lambda s: s}


def test_reference_wis_summary_every_row(flusight, scores):
    ref = pd.read_csv(flusight / "reference_wis_summary_2023-24_2024-25.csv")
    assert len(ref) == 9
    for _, r in ref.iterrows():
        archive = r["truth"].startswith("archive")
        s = scores[(r["season"], "archive" if archive else "head")]
        if archive:
            s = scoring.select(s, scoring.EvaluationSubset((), "2024-05-01", (("25", "2023-12-09"),)))
        s = SUBSETS[r["subset"]](s)
        summary = scoring.summarize(s, s[s["model_id"] == "FluSight-baseline"]).set_index("model_id")
        ens, base = summary.loc["FluSight-ensemble"], summary.loc["FluSight-baseline"]
        assert ens["n_common"] == r["n_common"]
        got = {"rel_wis_ens_vs_base": ens["rel_wis"], "rel_wis_log1p_ens_vs_base": ens["rel_wis_log1p"]}
        for prefix, row in (("ens", ens), ("base", base)):
            for col in ("mean_wis", "mean_wis_log1p", "mae", "cov50", "cov95"):
                got[f"{prefix}_{col}"] = row[col]
        for col, value in got.items():
            assert value == pytest.approx(r[col], rel=1e-5, abs=1e-5), (r["season"], r["subset"], col)


def test_reference_scores_every_row(flusight, scores):
    ref = pd.read_csv(flusight / "reference_scores_FluSight-ensemble_baseline_2023-24_2024-25.csv",
                      dtype={"location": str}, parse_dates=["reference_date", "target_end_date"])
    ours = pd.concat([scores[("2023-24", "head")], scores[("2024-25", "head")]])
    keys = ["model_id", "reference_date", "location", "horizon", "target_end_date"]
    merged = ref.rename(columns={"model": "model_id"}).merge(ours, on=keys, suffixes=("_ref", ""))
    assert len(merged) == len(ref) == 24168
    observed = merged["observed_ref"].notna()
    assert (merged["observed"].notna() == observed).all()
    for col in ("observed", "wis", "wis_log1p", "ae_median", "cov50", "cov95"):
        ours_col, ref_col = merged.loc[observed, col], merged.loc[observed, f"{col}_ref"]
        np.testing.assert_allclose(ours_col, ref_col, rtol=0, atol=1e-6)


def test_reference_wis_by_horizon(flusight, scores):
    ref = pd.read_csv(flusight / "reference_wis_by_horizon_2023-24_2024-25.csv")
    for _, r in ref.iterrows():
        s = scoring.select(scores[(r["season"], "head")], STATES)
        ens, base = _split(s[s["horizon"] == int(r["horizon"])])
        assert scoring.relative_wis(ens, base) == pytest.approx(r["rel_wis"], abs=1e-5)


def test_season_numbers_states(scores):
    """States + DC + PR, HEAD truth (MANIFEST): 2023-24 0.742 / 0.732, 2024-25 0.690 / 0.636."""
    expected = {"2023-24": (0.742, 0.732), "2024-25": (0.690, 0.636)}
    for season, (natural, log1p) in expected.items():
        ens, base = _split(scoring.select(scores[(season, "head")], STATES))
        assert scoring.relative_wis(ens, base, "natural") == pytest.approx(natural, abs=5e-4)
        assert scoring.relative_wis(ens, base, "log1p") == pytest.approx(log1p, abs=5e-4)


# ----------------------------------------------------------------------------- CLI and HTTP
def test_cli_score(flusight, tmp_path):
    out = tmp_path / "scores.csv"
    args = ["score", "--forecasts", str(flusight / "forecasts_FluSight-ensemble_baseline_2024-25.csv"),
            "--targets", str(flusight / HEAD), "--baseline-model", "FluSight-baseline",
            "--exclude-location", "US", "--out", str(out)]
    res = CliRunner().invoke(cli_app, args)
    assert res.exit_code == 0, res.output
    assert "0.6902" in res.output and "0.6360" in res.output
    assert len(pd.read_csv(out)) == 2 * 5616


def test_cli_score_with_baseline_file(forecasts, flusight, tmp_path):
    fc = forecasts["2024-25"]
    fc = fc[fc["reference_date"] <= "2024-12-21"]  # first 5 rounds
    expected = scoring.evaluate(fc, hub.read_targets(flusight / HEAD), baseline_model="FluSight-baseline")[1]
    rel = expected.set_index("model_id").loc["FluSight-ensemble", "rel_wis"]
    hub.write_forecasts(fc[fc["model_id"] == "FluSight-ensemble"], tmp_path / "ens.csv")
    base = fc[fc["model_id"] == "FluSight-baseline"].drop(columns="model_id")
    hub.write_forecasts(base, tmp_path / "b.csv")
    res = CliRunner().invoke(cli_app, ["score", "--forecasts", str(tmp_path / "ens.csv"), "--targets",
                                       str(flusight / HEAD), "--baseline", str(tmp_path / "b.csv"),
                                       "--out", str(tmp_path / "s.csv")])
    assert res.exit_code == 0, res.output
    assert f"{rel:.4f}" in res.output


def test_cli_score_rejects_bad_forecasts(flusight, tmp_path):
    wide = pd.read_csv(flusight / "forecasts_FluSight-ensemble_baseline_2024-25.csv", nrows=4)
    wide.loc[2, "q0.5"] = wide.loc[2, "q0.99"] + 1
    wide.to_csv(tmp_path / "bad.csv", index=False)
    res = CliRunner().invoke(cli_app, ["score", "--forecasts", str(tmp_path / "bad.csv"), "--targets",
                                       str(flusight / HEAD), "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "decrease" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o.csv").exists()


def test_http_score_json_and_multipart(client, forecasts, flusight):
    fc = forecasts["2024-25"]
    fc = fc[fc["reference_date"] == "2025-01-04"]
    truth = pd.read_csv(flusight / HEAD, dtype={"location": str})
    truth = truth[truth["date"].between("2025-01-04", "2025-01-25")]
    local = scoring.evaluate(fc, truth, baseline_model="FluSight-baseline")[1].set_index("model_id")
    rows = fc.astype({"reference_date": str, "target_end_date": str}).to_dict("records")
    payload = {"forecasts": rows, "targets": truth.to_dict("records"), "baseline_model": "FluSight-baseline"}
    r = client.post("/api/publichealth/score", json=payload)
    assert r.status_code == 200, r.text
    summary = {row["model_id"]: row for row in r.json()["summary"]}
    assert summary["FluSight-ensemble"]["rel_wis"] == pytest.approx(local.loc["FluSight-ensemble", "rel_wis"])
    assert len(r.json()["scores"]) == len(fc) // 23
    files = {"forecasts": ("f.csv", fc.to_csv(index=False), "text/csv"),
             "targets": ("t.csv", truth.to_csv(index=False), "text/csv")}
    r = client.post("/api/publichealth/score", files=files,
                    data={"baseline_model": "FluSight-baseline", "exclude_locations": "US"})
    assert r.status_code == 200, r.text
    assert all(row["location"] != "US" for row in r.json()["scores"])


def test_http_score_missing_quantiles_is_422(client, forecasts, flusight):
    fc = forecasts["2024-25"].head(46).iloc[:-1]  # the second forecast lacks q0.99
    truth = pd.read_csv(flusight / HEAD, dtype={"location": str}).head(5)
    files = {"forecasts": ("f.csv", fc.to_csv(index=False), "text/csv"),
             "targets": ("t.csv", truth.to_csv(index=False), "text/csv")}
    r = client.post("/api/publichealth/score", files=files)
    assert r.status_code == 422 and "lacks 1 of the 23 quantiles" in r.json()["detail"]
