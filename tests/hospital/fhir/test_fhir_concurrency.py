"""Lost updates: two processes update one resource with the same If-Match; one wins, one gets 412."""

from __future__ import annotations

import multiprocessing as mp

from sqlalchemy.orm import Session

from smartcare.hospital.fhir.db import make_engine
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.store import FhirStore


def _writer(url: str, connect_args: dict, rid: str, family: str, barrier, results) -> None:
    engine = make_engine(url, connect_args=connect_args) if connect_args else make_engine(url)
    with Session(engine) as session:
        store = FhirStore(session)
        current = store.read("Patient", rid)  # both processes read version 1 ...
        barrier.wait(timeout=30)  # ... then race to write it
        try:
            store.update(
                "Patient",
                rid,
                {"resourceType": "Patient", "id": rid, "name": [{"family": family}]},
                if_match=current.etag,
            )
            store.commit()
            results.put((family, 200))
        except FhirError as err:
            store.rollback()
            results.put((family, err.status))
    engine.dispose()


def test_two_processes_same_if_match(engine):
    url = engine.url.render_as_string(hide_password=False)
    connect_args = {}
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        connect_args = {"options": f"-csearch_path={schema}"}
    ctx = mp.get_context("fork")
    for round_no in range(3):
        rid = f"race-{round_no}"
        with Session(engine) as session:
            store = FhirStore(session)
            store.update("Patient", rid, {"resourceType": "Patient", "id": rid})
            store.commit()
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [
            ctx.Process(target=_writer, args=(url, connect_args, rid, fam, barrier, results))
            for fam in ("Alpha", "Beta")
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        outcome = dict(results.get(timeout=5) for _ in procs)
        assert sorted(outcome.values()) == [200, 412], outcome
        winner = next(f for f, s in outcome.items() if s == 200)
        with Session(engine) as session:
            final = FhirStore(session).read("Patient", rid)
        assert final.version == 2 and final.content["name"][0]["family"] == winner
