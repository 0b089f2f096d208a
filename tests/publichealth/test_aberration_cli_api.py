"""`smartcare publichealth detect` and POST /api/publichealth/detect."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from smartcare.cli import app as root_app


@pytest.fixture(scope="module")
def campy_csv(shared_data, tmp_path_factory):
    d = pd.read_csv(shared_data / "publichealth" / "r_reference_outputs" / "input_series_campyDE.csv")
    path = tmp_path_factory.mktemp("detect") / "campy.csv"
    d[["date", "observed"]].to_csv(path, index=False)
    return path


def test_cli_detect_matches_r_and_plots(campy_csv, shared_data, tmp_path):
    out, png = tmp_path / "alarms.csv", tmp_path / "curve.png"
    res = CliRunner().invoke(root_app, ["publichealth", "detect", "--method", "farrington-noufaily",
                                        "--input", str(campy_csv), "--out", str(out), "--from", "2011-01-03",
                                        "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert "8 alarm(s) in 52 judged week(s)" in res.output
    got = pd.read_csv(out)
    assert list(got.columns) == ["date", "location", "observed", "upperbound", "alarm", "score"]
    ref = pd.read_csv(shared_data / "publichealth" / "r_reference_outputs"
                      / "ref_farringtonFlexible_noufaily_last52.csv").query("series == 'campyDE'")
    assert got["date"].tolist() == ref["date"].tolist()
    assert got["upperbound"].tolist() == ref["upperbound"].tolist()
    assert got["alarm"].tolist() == ref["alarm"].tolist()
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_cli_bad_input_is_a_named_smartcare_error(tmp_path):
    """The command raises SmartcareError naming the problem; ``smartcare.cli.main`` prints it, exits 2."""
    bad = tmp_path / "bad.csv"
    bad.write_text("date,observed\n2024-01-01,3\n2024-01-08,-1\n")
    out = tmp_path / "o.csv"
    res = CliRunner().invoke(root_app, ["publichealth", "detect", "--method", "ears-c1", "--input", str(bad),
                                        "--out", str(out)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "negative count -1 at row 2" in res.output
    assert not out.exists()


def test_api_detect_json_and_csv(campy_csv, client):
    rows = pd.read_csv(campy_csv).to_dict("records")
    r = client.post("/api/publichealth/detect", json={"method": "cusum", "series": rows, "from": "2010-01-04"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["alarms"][0]["date"] == "2010-01-04" and len(body["alarms"]) == 104
    r2 = client.post("/api/publichealth/detect", data={"method": "ears-c2"},
                     files={"series": ("s.csv", campy_csv.read_bytes(), "text/csv")})
    assert r2.status_code == 200 and r2.json()["n_alarms"] == 51  # R: campyDE C2 51 alarms
    r3 = client.post("/api/publichealth/detect", json={"method": "farrington", "series": rows[:100]})
    assert r3.status_code == 422 and "history too short" in r3.json()["detail"]
