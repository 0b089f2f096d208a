"""CLI smoke test, run in a subprocess as a user would."""

from __future__ import annotations

import json
import subprocess
import sys

SMARTCARE = [sys.executable, "-c", "from smartcare.cli import main; main()"]


def run(*args, **kw):
    return subprocess.run([*SMARTCARE, *args], capture_output=True, text=True, timeout=120, **kw)


def test_help_shows_the_four_domains():
    out = run("--help")
    assert out.returncode == 0
    for name in ("imaging", "genomics", "hospital", "publichealth", "serve", "models", "data"):
        assert name in out.stdout


def test_models_list_with_no_models(tmp_path):
    import os

    env = {**os.environ, "SMARTCARE_WEIGHTS": str(tmp_path)}
    out = run("models", "list", "--json", env=env)
    assert out.returncode == 0
    assert json.loads(out.stdout) == []


def test_unknown_model_is_a_clear_error(tmp_path):
    import os

    env = {**os.environ, "SMARTCARE_WEIGHTS": str(tmp_path)}
    out = run("models", "show", "nope", env=env)
    assert out.returncode == 2
    assert "no shipped model named 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


def test_data_check_lists_present_datasets(shared_data):
    import os

    out = run("data", "check", env={**os.environ, "SMARTCARE_DATA": str(shared_data)})
    assert out.returncode == 0
    assert "publichealth/flusight_hosp" in out.stdout
