"""CLI commands (fhir-load, fhir-reset), migrations, and the provenance of the derived tables."""

from __future__ import annotations

import json

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from smartcare.hospital.cli import app
from smartcare.hospital.fhir import searchparams
from smartcare.hospital.fhir.db import init_db, make_engine, resources
from smartcare.hospital.fhir.searchparams import build_table, params_for


def test_fhir_load_and_reset(tmp_path, synthea_dir, examples_dir):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    bundle = sorted((synthea_dir / "bundles").glob("*_*.json"))[0]
    folder = tmp_path / "res"
    folder.mkdir()
    (folder / "p.json").write_text((examples_dir / "Patient-example.json").read_text())
    r = runner.invoke(app, ["fhir-load", str(bundle), str(folder), "--database-url", url])
    assert r.exit_code == 0, r.output
    index = {e["file"]: e for e in json.loads((synthea_dir / "index.json").read_text())}
    expected = sum(index[bundle.name]["resource_counts"].values()) + 1
    assert f"loaded {expected} resources" in r.output
    engine = make_engine(url)
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(resources)).scalar_one() == expected
    r = runner.invoke(app, ["fhir-load", str(tmp_path / "missing.json"), "--database-url", url])
    assert r.exit_code != 0
    r = runner.invoke(app, ["fhir-reset", "--yes", "--database-url", url])
    assert r.exit_code == 0, r.output
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(resources)).scalar_one() == 0


def test_migrations_are_idempotent(tmp_path):
    engine = init_db(make_engine(f"sqlite:///{tmp_path / 'm.db'}"))
    init_db(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"fhir_resource", "fhir_history", "fhir_idx_token", "fhir_search", "fhir_alembic_version"} <= tables
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


def test_searchparam_table_is_derived_from_the_official_definitions(shared_data):
    table = build_table(shared_data / "hospital" / "fhir-r4-examples" / "definitions")
    shipped = json.loads(searchparams.TABLE_PATH.read_text())
    assert table == shipped
    assert "CC0" in shipped["_provenance"] and len(shipped["resourceTypes"]) == 145
    p = params_for("Observation")
    assert p["patient"].type == "reference" and "resolve()" not in p["patient"].expression
    assert p["value-quantity"].expression.startswith("Observation.valueQuantity")
    assert p["_lastUpdated"].expression == "Observation.meta.lastUpdated"


def test_fhir_load_reads_xml_and_refuses_empty_folders_and_bad_xml(tmp_path, examples_dir):
    from smartcare.hospital.fhir.xml import to_xml

    url = f"sqlite:///{tmp_path / 'x.db'}"
    runner = CliRunner()
    patient = json.loads((examples_dir / "Patient-example.json").read_text())
    (tmp_path / "p.xml").write_text(to_xml(patient))
    r = runner.invoke(app, ["fhir-load", str(tmp_path / "p.xml"), "--database-url", url])
    assert r.exit_code == 0 and "loaded 1 resources" in r.output, r.output
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["fhir-load", str(tmp_path / "empty"), "--database-url", url])
    assert r.exit_code == 2 and "holds no .json or .xml FHIR files" in r.output
    (tmp_path / "bad.xml").write_text('<Patient xmlns="http://hl7.org/fhir"><active value="true"></Patient>')
    r = runner.invoke(app, ["fhir-load", str(tmp_path / "bad.xml"), "--database-url", url])
    assert r.exit_code == 2 and "bad.xml" in r.output and "Traceback" not in r.output
