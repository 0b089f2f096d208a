"""smartcare FHIR store: Synthea ingest, search latency, and the raw-insert ceiling, one run per database.

For SQLite (a temporary file) and PostgreSQL (``SMARTCARE_TEST_PG_URL``, a temporary schema):

- ingest throughput: all 48 Synthea transaction Bundles (+ 2 org/practitioner Bundles) through
  ``load_bundle`` with validation, resources/s (wall and process CPU);
- the ceiling ("peer"): the same stored JSON rows inserted into a plain one-table schema with one
  executemany in one transaction, rows/s, the best of three runs; on PostgreSQL also the same rows
  by ``COPY`` (the store writes its rows by COPY there), reported beside it;
- the written-rows floor: every row the ingest wrote (resource, history, index rows) inserted the
  ceiling's way into a fresh database, resources/s: the database share of the gap;
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
from smartcare.hospital.fhir.db import INDEX_TABLES, JSONType, analyze, history, init_db, make_engine, resources
from smartcare.hospital.fhir.loader import json_files, load_bundle
from smartcare.hospital.fhir.searchset import search_bundle

NAME = "hospital_fhir"
TITLE = "Hospital FHIR store: Synthea ingest, search p50/p95, raw insert ceiling (SQLite, PostgreSQL)"
REPEATS = 15  # timed runs per search
CEILING_REPEATS = 3  # raw-insert runs; the fastest one is the ceiling
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


def _raw_ceiling(engine) -> tuple[float, float]:
    """The ceiling: rows/s by wall clock and per CPU second of this process, each the best of
    ``CEILING_REPEATS`` runs into an empty table (which can only raise the ceiling)."""
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
    best_wall = best_cpu = 0.0
    for _ in range(CEILING_REPEATS):  # the best of a few runs: a short run on a shared machine is noisy
        meta.drop_all(engine)
        meta.create_all(engine)
        t, cpu = time.perf_counter(), time.process_time()
        with engine.begin() as conn:
            conn.execute(insert(raw), rows)
        best_wall = max(best_wall, len(rows) / (time.perf_counter() - t))
        best_cpu = max(best_cpu, len(rows) / (time.process_time() - cpu))
    return best_wall, best_cpu


def _written_rows_floor(engine, kind: str) -> tuple[float, int]:
    """Where the gap to the ceiling comes from: every row the ingest wrote (resource, history and
    index rows), read back and inserted the ceiling's way (one executemany per table, one
    transaction) into a fresh migrated database. Returns (resources/s, rows written)."""
    tables = [resources, history, *INDEX_TABLES.values()]
    with Session(engine) as session:
        data = {t: [dict(r._mapping) for r in session.execute(select(t))] for t in tables}
    n = len(data[resources])
    scratch, cleanup = _engine(kind)
    try:
        t = time.perf_counter()
        with scratch.begin() as conn:
            for table in tables:
                if data[table]:
                    conn.execute(insert(table), data[table])
        elapsed = time.perf_counter() - t
    finally:
        scratch.dispose()
        _drop(cleanup)
    return n / elapsed, sum(len(rows) for rows in data.values())


def _drop(cleanup) -> None:
    if cleanup:
        admin, schema = cleanup
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _raw_copy_ceiling(engine) -> float | None:
    """PostgreSQL only: the same JSON rows loaded with ``COPY ... FROM STDIN`` (psycopg), rows/s.

    The store writes its history and index rows with COPY, so this is the stricter ceiling for it;
    it is reported beside the executemany ceiling above, which stays the one the goal is judged on."""
    if engine.dialect.name != "postgresql":
        return None
    from psycopg.types.json import Jsonb

    with Session(engine) as session:
        rows = [(t, Jsonb(c)) for t, c in session.execute(select(resources.c.res_type, resources.c.content))]
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE bench_raw_copy (pk serial PRIMARY KEY, res_type varchar(64), content jsonb)")
    sql = "COPY bench_raw_copy (res_type, content) FROM STDIN"
    t = time.perf_counter()
    with engine.begin() as conn:
        with conn.connection.cursor() as cursor, cursor.copy(sql) as cp:
            for row in rows:
                cp.write_row(row)
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
        ing["raw_insert_rows_per_s"], ing["raw_insert_rows_per_cpu_s"] = _raw_ceiling(engine)
        copy_ceiling = _raw_copy_ceiling(engine)
        if copy_ceiling is not None:
            ing["raw_copy_rows_per_s"] = copy_ceiling
        ing["raw_insert_all_written_rows_resources_per_s"], ing["rows_written"] = _written_rows_floor(engine, kind)
    finally:
        engine.dispose()
        _drop(cleanup)
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
            ceiling, ceiling_cpu = _raw_ceiling(engine)
            copy_ceiling = _raw_copy_ceiling(engine)
            floor, written = _written_rows_floor(engine, kind)
            lat = _latencies(engine)
        finally:
            engine.dispose()
            _drop(cleanup)
        metrics[f"{kind}_resources"] = ing["resources"]
        metrics[f"{kind}_ingest_resources_per_s"] = ing["ingest_per_s"]
        metrics[f"{kind}_ingest_resources_per_cpu_s"] = ing["ingest_per_cpu_s"]
        metrics[f"{kind}_search_p95_ms_max"] = max(r["p95_ms"] for r in lat)
        metrics[f"{kind}_search_p50_ms_median"] = statistics.median(r["p50_ms"] for r in lat)
        peer[f"{kind}_raw_insert_rows_per_s"] = ceiling
        ratios[f"{kind}_ceiling_over_ingest"] = ceiling / ing["ingest_per_s"]
        if kind == "sqlite":  # all the work is in this process, so CPU seconds compare like for like
            peer["sqlite_raw_insert_rows_per_cpu_s"] = ceiling_cpu
            ratios["sqlite_ceiling_over_ingest_cpu"] = ceiling_cpu / ing["ingest_per_cpu_s"]
        metrics[f"{kind}_rows_written"] = written
        peer[f"{kind}_raw_insert_all_written_rows_resources_per_s"] = floor
        ratios[f"{kind}_written_rows_floor_over_ingest"] = floor / ing["ingest_per_s"]
        if copy_ceiling is not None:
            peer[f"{kind}_raw_copy_rows_per_s"] = copy_ceiling
            ratios[f"{kind}_copy_ceiling_over_ingest"] = copy_ceiling / ing["ingest_per_s"]
        rows = ["| search | variant | total | p50 ms | p95 ms |", "|---|---|---|---|---|"]
        rows += [
            f"| `{r['search']}` | {r['variant']} | {r['total']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |" for r in lat
        ]
        tables[f"{kind} search latency"] = "\n".join(rows)
    notes = (
        "Goals: ingest >= 1,000 resources/s on SQLite on 2 cores; search p95 < 50 ms; ingest within 3x of the "
        "raw insert ceiling. Ingest includes structural validation (fhir.resources R4B models), FHIRPath "
        "indexing of every official search parameter, history rows and urn:uuid resolution, and starts "
        "cold (the R4B model classes are imported during the first Bundles). The goal ratio uses the "
        "executemany ceiling, the best of 3 runs (it was one run, whose rate swung 3x with machine load); "
        "on PostgreSQL the COPY ceiling is reported too, since the store itself writes its rows by COPY "
        "there. The written-rows floor is the ceiling's own insert applied to every row the ingest writes "
        "(resource + history + ~13 index rows per resource): the part of the gap that is database work "
        "rather than Python. The goal ratio is by wall clock; on SQLite, where all the work is in-process, "
        "the same ratio by CPU seconds is given too. Wall-clock rates depend on machine load; the "
        "per-CPU-second rate is reported beside them."
    )
    return {"metrics": metrics, "peer": peer, "ratios": ratios, "tables": tables, "notes": notes}
