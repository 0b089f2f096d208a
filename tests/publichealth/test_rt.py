"""Rt (Cori et al. 2013) against R EpiEstim 2.2-4 estimate_R reference outputs, plus bad input, CLI, HTTP."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smartcare.core.errors import SmartcareError
from smartcare.publichealth import rt
from smartcare.publichealth.cli import app as cli_app

# run label in ref_epiestim_estimate_R.csv -> (dataset, estimate_r keyword arguments; "si" = dataset si_distr)
RUNS = {
    "Flu2009_parametric_si_mean2.6_sd1.5": (
        "Flu2009", {"method": "parametric_si", "mean_si": 2.6, "std_si": 1.5}),
    "Flu2009_non_parametric_si": ("Flu2009", {"method": "non_parametric_si", "si": "Flu2009"}),
    "SARS2003_non_parametric_si": ("SARS2003", {"method": "non_parametric_si", "si": "SARS2003"}),
    "Measles1861_parametric_si_mean14.9_sd3.9": (
        "Measles1861", {"method": "parametric_si", "mean_si": 14.9, "std_si": 3.9}),
    "Smallpox1972_non_parametric_si": ("Smallpox1972", {"method": "non_parametric_si", "si": "Smallpox1972"}),
    "MERS2014_15_parametric_si_local_imported": (
        "mers_2014_15", {"method": "parametric_si", "mean_si": 6.8, "std_si": 4.1}),
}
REF_COLUMNS = ["Mean.R.", "Std.R.", "Quantile.0.025.R.", "Quantile.0.05.R.", "Quantile.0.25.R.", "Median.R.",
               "Quantile.0.75.R.", "Quantile.0.95.R.", "Quantile.0.975.R."]
OUR_COLUMNS = ["mean", "std", "q0.025", "q0.05", "q0.25", "q0.5", "q0.75", "q0.95", "q0.975"]


@pytest.fixture(scope="module")
def ee(shared_data):
    return shared_data / "publichealth" / "epiestim_datasets"


@pytest.fixture(scope="module")
def ref_dir(shared_data):
    return shared_data / "publichealth" / "r_reference_outputs"


def _run(ee, run: str):
    dataset, kwargs = RUNS[run]
    kwargs = dict(kwargs)
    if "si" in kwargs:
        kwargs["si_distr"] = pd.read_csv(ee / f"{kwargs.pop('si')}_si_distr.csv")["w"].to_numpy()
    inc = pd.read_csv(ee / f"{dataset}_incidence.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rt.RtWarning)
        return rt.estimate_r(inc, **kwargs), kwargs, len(inc)


@pytest.mark.parametrize("run", list(RUNS))
def test_matches_epiestim_every_row(ee, ref_dir, run):
    ref = pd.read_csv(ref_dir / "ref_epiestim_estimate_R.csv")
    ref = ref[ref["run"] == run].reset_index(drop=True)
    ours, _, _ = _run(ee, run)
    assert len(ref) > 0 and len(ours) == len(ref)
    np.testing.assert_array_equal(ours["t_start"], ref["t_start"])
    np.testing.assert_array_equal(ours["t_end"], ref["t_end"])
    a, b = ref[REF_COLUMNS].to_numpy(float), ours[OUR_COLUMNS].to_numpy(float)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))  # windows ending before the mean SI
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6, equal_nan=True)


def test_reference_has_all_729_rows(ref_dir):
    ref = pd.read_csv(ref_dir / "ref_epiestim_estimate_R.csv")
    assert len(ref) == 729 and set(ref["run"]) == set(RUNS)


@pytest.mark.parametrize("run", list(RUNS))
def test_si_distribution_matches_epiestim(ee, ref_dir, run):
    _, kwargs, n_days = _run(ee, run)
    ref = pd.read_csv(ref_dir / f"ref_epiestim_si_distr_{run}.csv")
    ours = rt.si_distribution(kwargs["method"], n_days, kwargs.get("mean_si"), kwargs.get("std_si"),
                              kwargs.get("si_distr"))
    assert len(ours) == len(ref)
    np.testing.assert_allclose(ours, ref["w"], rtol=1e-6, atol=1e-12)


def test_flu2009_published_first_window(ee):
    est, _, _ = _run(ee, "Flu2009_parametric_si_mean2.6_sd1.5")
    first = est.iloc[0]
    assert (first["t_start"], first["t_end"]) == (2, 8)
    assert first["mean"] == pytest.approx(1.736, abs=5e-4)
    assert first["q0.025"] == pytest.approx(1.029, abs=5e-4)
    assert first["q0.975"] == pytest.approx(2.625, abs=5e-4)
    assert str(first["date_start"].date()) == "2009-04-28"


def test_discr_si_is_a_distribution():
    w = rt.discr_si(np.arange(60), 6.8, 4.1)
    assert w[0] == 0 and (w >= 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-6)
    assert (w * np.arange(60)).sum() == pytest.approx(6.8, abs=1e-3)


def test_first_day_local_cases_become_imported():
    with pytest.warns(rt.RtWarning, match="first day"):
        inc = rt.make_incidence(None, local=[3, 1, 2], imported=[0, 0, 1])
    np.testing.assert_array_equal(inc.local, [0, 1, 2])
    np.testing.assert_array_equal(inc.imported, [3, 0, 1])


def test_imported_cases_raise_infectivity_but_not_the_numerator():
    local = np.array([0, 2, 3, 5, 4, 6, 8, 7, 9, 10])
    kw = {"mean_si": 3, "std_si": 1.5, "window": 3, "cv_posterior": 1.0}
    only_local = rt.estimate_r(pd.DataFrame({"local": local, "imported": 0}), **kw)
    more = rt.estimate_r(pd.DataFrame({"local": local, "imported": 2}), **kw)
    assert (more["mean"] < only_local["mean"]).all()


def test_custom_windows_and_prior():
    inc = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    est = rt.estimate_r(inc, mean_si=2.0, std_si=1.0, t_start=[2, 5], t_end=[4, 10],
                        mean_prior=1, std_prior=10)
    assert list(est["t_end"]) == [4, 10] and est["mean"].notna().all()
    assert (est["q0.025"] < est["q0.5"]).all() and (est["q0.5"] < est["q0.975"]).all()


def test_early_window_warns_about_posterior_cv():
    with pytest.warns(rt.RtWarning, match="posterior CV"):
        rt.estimate_r([0, 1, 0, 1, 0, 1, 0, 1, 0], mean_si=2.6, std_si=1.5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"incidence": [1, 2, -1, 3, 4, 5, 6, 7, 8]}, "non-negative"),
        ({"incidence": [1, 2, np.nan, 3, 4, 5, 6, 7, 8]}, "missing"),
        ({"incidence": [1, 2, 1.5, 3, 4, 5, 6, 7, 8]}, "whole"),
        ({"incidence": [1, 2, 3]}, "at least 8"),
        ({"si_distr": [0.0, 0.5, 0.3]}, "sum to 1"),
        ({"si_distr": [0.2, 0.5, 0.3]}, "P\\(SI = 0\\) = 0"),
        ({"si_distr": [0.0, 1.2, -0.2]}, "non-negative"),
        ({"t_start": [1], "t_end": [5]}, "at least 2"),
        ({"t_start": [2], "t_end": [20]}, "at most"),
        ({"t_start": [6], "t_end": [4]}, "must not exceed"),
        ({"t_start": [2, 3], "t_end": [5]}, "same length"),
        ({"mean_si": 0.5}, "greater than 1"),
        ({"std_si": 0.0}, "positive standard deviation"),
        ({"std_prior": -1.0}, "std_prior"),
        ({"method": "uncertain_si"}, "unknown method"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    args = {"incidence": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "mean_si": 2.6, "std_si": 1.5}
    args.update(kwargs)
    if "si_distr" in kwargs:
        args["method"] = "non_parametric_si"
    incidence = args.pop("incidence")
    with pytest.raises(SmartcareError, match=match):
        rt.estimate_r(incidence, **args)


def test_cli_rt_writes_csv_and_plot(ee, tmp_path):
    out, png = tmp_path / "rt.csv", tmp_path / "rt.png"
    res = CliRunner().invoke(cli_app, ["rt", "--incidence", str(ee / "Flu2009_incidence.csv"),
                                       "--si-mean", "2.6", "--si-sd", "1.5", "--out", str(out),
                                       "--plot", str(png)])
    assert res.exit_code == 0, res.output
    est = pd.read_csv(out)
    assert len(est) == 25 and est["mean"].iloc[0] == pytest.approx(1.73579766369495, rel=1e-9)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = CliRunner().invoke(cli_app, ["rt", "--incidence", str(ee / "SARS2003_incidence.csv"),
                                       "--si-distr", str(ee / "SARS2003_si_distr.csv"), "--window", "14",
                                       "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out)) == 107 - 14


def test_cli_rt_bad_input_raises_clear_error(tmp_path):
    bad = tmp_path / "inc.csv"
    bad.write_text("I\n1\n2\n-3\n4\n5\n6\n7\n8\n9\n")
    res = CliRunner().invoke(cli_app, ["rt", "--incidence", str(bad), "--si-mean", "2.6", "--si-sd", "1.5",
                                       "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "non-negative" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o.csv").exists()


def test_http_rt_json_and_csv(client, ee):
    inc = pd.read_csv(ee / "Flu2009_incidence.csv")
    payload = {"incidence": inc["I"].tolist(), "dates": inc["dates"].tolist(), "mean_si": 2.6, "std_si": 1.5}
    r = client.post("/api/publichealth/rt", json=payload)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "parametric_si" and len(body["estimates"]) == 25
    assert body["estimates"][0]["mean"] == pytest.approx(1.73579766369495, rel=1e-12)
    assert body["estimates"][0]["date_end"] == "2009-05-04"
    files = {"incidence": ("inc.csv", (ee / "mers_2014_15_incidence.csv").read_bytes(), "text/csv")}
    r = client.post("/api/publichealth/rt", files=files, data={"mean_si": "6.8", "std_si": "4.1"})
    assert r.status_code == 200, r.text
    assert len(r.json()["estimates"]) == 488
    si = ",".join(map(str, pd.read_csv(ee / "SARS2003_si_distr.csv")["w"]))
    r = client.post("/api/publichealth/rt", content=(ee / "SARS2003_incidence.csv").read_bytes(),
                    headers={"content-type": "text/csv"}, params={"si_distr": si, "window": 14})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "non_parametric_si" and len(r.json()["estimates"]) == 93


def test_http_rt_bad_input_is_problem_json(client):
    payload = {"incidence": [1, 2, 3, 4, 5, 6, 7, 8], "si_distr": [0.1, 0.9]}
    r = client.post("/api/publichealth/rt", json=payload)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "P(SI = 0) = 0" in r.json()["detail"]
