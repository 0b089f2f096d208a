"""smartcare FHIR store: Synthea ingest, search latency, and the raw-insert ceiling, one run per database.

For SQLite (a temporary file) and PostgreSQL (``SMARTCARE_TEST_PG_URL``, a temporary schema):

- ingest throughput: all 48 Synthea transaction Bundles (+ 2 org/practitioner Bundles) through
  ``load_bundle`` with validation, resources/s (wall and process CPU);
- the ceiling ("peer"): the same stored JSON rows inserted into a plain one-table schema with one
  executemany in one transaction, rows/s;
- p50/p95 latency (ms) of 10 typical searches, each with and without ``_include``, run in-process
  through ``search_bundle`` (no HTTP).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.orm import Session

from smartcare.core.data import dataset_path
from smartcare.hospital.fhir.db import JSONType, analyze, init_db, make_engine, resources
from smartcare.hospital.fhir.loader import json_files, load_bundle
from smartcare.hospital.fhir.searchset import search_bundle

NAME = "hospital_fhir"
TITLE = "Hospital FHIR store: Synthea ingest, search p50/p95, raw insert ceiling (SQLite, PostgreSQL)"
REPEATS = 15  # timed runs per search
SEARCHES = [  # (type, query, include)
    ("Patient", "gender=female", "Patient:general-practitioner"),
    ("Patient", "name=ma", "Patient:organization"),
    ("Observation", "code=http://loinc.org|8302-2", "Observation:subject"),
    ("Observation", "category=vital-signs&date=ge2015-01-01", "Observation:patient"),
    ("Observation", "value-quantity=gt100", "Observation:subject"),
    ("Observation", "subject:Patient.gender=male&code=8302-2", "Observation:subject"),
    ("Encounter", "date=ge2018-01-01&_sort=-date", "Encounter:patient"),
    ("Condition", "clinical-status=active", "Condition:subject"),
    ("Immunization", "vaccine-code=140", "Immunization:patient"),
    ("Claim", "use=claim&_count=50", "Claim:patient"),
]


def _engine(kind: str):
    if kind == "sqlite":
        return init_db(make_engine(f"sqlite:///{tempfile.mkdtemp()}/bench.db")), None
    url = os.environ.get("SMARTCARE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"fhir_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    return init_db(make_engine(url, connect_args={"options": f"-csearch_path={schema}"})), (admin, schema)


def _ingest(engine, files: list[Path]) -> dict[str, float]:
    bundles = [json.loads(f.read_text()) for f in files]
    n = 0
    wall, cpu = time.perf_counter(), time.process_time()
    with Session(engine) as session:
        for b in bundles:
            n += sum(load_bundle(session, b).values())
        analyze(session.connection())  # what fhir-load does after a bulk load
        session.commit()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"resources": n, "ingest_per_s": n / wall, "ingest_per_cpu_s": n / cpu}


def _raw_ceiling(engine) -> float:
    with Session(engine) as session:
        rows = [
            {"res_type": t, "content": c} for t, c in session.execute(select(resources.c.res_type, resources.c.content))
        ]
    meta = MetaData()
    raw = Table(
        "bench_raw",
        meta,
        Column("pk", Integer, primary_key=True),
        Column("res_type", String(64)),
        Column("content", JSONType),
    )
    meta.create_all(engine)
    t = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(raw), rows)
    return len(rows) / (time.perf_counter() - t)


def _latencies(engine) -> list[dict[str, float | str]]:
    out = []
    with Session(engine) as session:
        for rtype, query, include in SEARCHES:
            items = [tuple(p.split("=", 1)) for p in query.split("&")]
            for label, extra in (("plain", []), ("_include", [("_include", include)])):
                times, total = [], 0
                for _ in range(REPEATS):
                    t = time.perf_counter()
                    total = search_bundle(session, rtype, items + extra, "").get("total", 0)
                    times.append((time.perf_counter() - t) * 1000)
                    session.commit()
                times.sort()
                out.append(
                    {
                        "search": f"{rtype}?{query}",
                        "variant": label,
                        "total": total,
                        "p50_ms": statistics.median(times),
                        "p95_ms": times[int(0.95 * (len(times) - 1))],
                    }
                )
    return out


def ingest_only(kind: str = "sqlite") -> dict[str, float]:
    """Just the ingest and the raw-insert ceiling on one database (no searches, writes no results):
    ``python -c "from benchmarks.hospital_fhir import ingest_only; print(ingest_only('sqlite'))"``."""
    files = json_files([dataset_path("hospital/synthea-r4-smart-sample") / "bundles"])
    engine, cleanup = _engine(kind)
    try:
        ing = _ingest(engine, files)
        ing["raw_insert_rows_per_s"] = _raw_ceiling(engine)
    finally:
        engine.dispose()
        if cleanup:
            admin, schema = cleanup
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    ing["ceiling_over_ingest"] = ing["raw_insert_rows_per_s"] / ing["ingest_per_s"]
    return ing


def run() -> dict:
    folder = dataset_path("hospital/synthea-r4-smart-sample") / "bundles"
    files = json_files([folder])
    metrics, peer, ratios, tables = {}, {}, {}, {}
    for kind in ("sqlite", "postgres"):
        try:
            engine, cleanup = _engine(kind)
        except Exception as err:  # PostgreSQL absent: report it, keep SQLite
            metrics[f"{kind}_error"] = type(err).__name__
            continue
        try:
            ing = _ingest(engine, files)
            ceiling = _raw_ceiling(engine)
            lat = _latencies(engine)
        finally:
            engine.dispose()
            if cleanup:
                admin, schema = cleanup
                with admin.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()
        metrics[f"{kind}_resources"] = ing["resources"]
        metrics[f"{kind}_ingest_resources_per_s"] = ing["ingest_per_s"]
        metrics[f"{kind}_ingest_resources_per_cpu_s"] = ing["ingest_per_cpu_s"]
        metrics[f"{kind}_search_p95_ms_max"] = max(r["p95_ms"] for r in lat)
        metrics[f"{kind}_search_p50_ms_median"] = statistics.median(r["p50_ms"] for r in lat)
        peer[f"{kind}_raw_insert_rows_per_s"] = ceiling
        ratios[f"{kind}_ceiling_over_ingest"] = ceiling / ing["ingest_per_s"]
        rows = ["| search | variant | total | p50 ms | p95 ms |", "|---|---|---|---|---|"]
        rows += [
            f"| `{r['search']}` | {r['variant']} | {r['total']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |" for r in lat
        ]
        tables[f"{kind} search latency"] = "\n".join(rows)
    notes = (
        "Goals: ingest >= 1,000 resources/s on SQLite on 2 cores; search p95 < 50 ms; ingest within 3x of the "
        "raw insert ceiling. Ingest includes structural validation (fhir.resources R4B models), FHIRPath "
        "indexing of every official search parameter, history rows and urn:uuid resolution. Wall-clock "
        "rates depend on machine load; the per-CPU-second rate is reported beside them."
    )
    return {"metrics": metrics, "peer": peer, "ratios": ratios, "tables": tables, "notes": notes}
