"""The official R4 examples: each one is stored, read back unchanged (apart from meta), and found
by ``_id`` and by one of its own search parameters, whose query is built from the index row."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from smartcare.hospital.fhir.db import INDEX_TABLES, resources


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("$", "\\$").replace("|", "\\|")


def _query(ptype: str, row) -> str | None:
    """A search value that must match the indexed ``row``; None if the row cannot be expressed."""
    if ptype == "string":
        return f":exact={quote(_esc(row.exact))}" if row.exact else None
    if ptype == "token":
        if row.code is None:
            return None
        return "=" + quote((_esc(row.system) + "|" if row.system else "") + _esc(row.code))
    if ptype == "reference":
        if row.target_type and row.target_id:
            return "=" + quote(f"{row.target_type}/{row.target_id}")
        return None
    if ptype == "date":
        if not -1e11 < row.low < 1e11:
            return None
        return "=" + quote("ge" + datetime.fromtimestamp(int(row.low), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if ptype in ("number", "quantity"):
        return f"={row.value!r}" if row.value is not None else None
    if ptype == "uri":
        return "=" + quote(row.value) if row.value else None
    return None


def _strip_meta(res: dict) -> dict:
    out = dict(res)
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k not in ("versionId", "lastUpdated")}
    return {**out, "meta": meta} if meta else out


@pytest.fixture(scope="module")
def examples(examples_dir) -> list[dict]:
    files = sorted(p for p in examples_dir.glob("*.json") if p.name != "package.json")
    assert len(files) == 564  # 565 files in the folder include the npm package.json
    return [json.loads(p.read_text()) for p in files]


def test_examples_round_trip_and_search(client, engine, examples):
    stored_ok, failures = 0, []
    for res in examples:
        r = client.put(f"/fhir/{res['resourceType']}/{res['id']}", json=res)
        if r.status_code not in (200, 201):
            failures.append((res["resourceType"], res["id"], r.status_code, r.text[:200]))
            continue
        back = client.get(f"/fhir/{res['resourceType']}/{res['id']}").json()
        assert _strip_meta(back) == _strip_meta(res), f"{res['resourceType']}/{res['id']} changed"
        stored_ok += 1
    assert failures == []
    assert stored_ok == 564

    by_id = by_param = 0
    not_found = []
    with Session(engine) as session:
        pks = dict(session.execute(select(resources.c.res_type + "/" + resources.c.res_id, resources.c.pk)).all())
        for res in examples:
            key = f"{res['resourceType']}/{res['id']}"
            b = client.get(f"/fhir/{res['resourceType']}?_id={quote(res['id'])}").json()
            by_id += [e["resource"]["id"] for e in b["entry"]] == [res["id"]]
            found = False
            for ptype, table in INDEX_TABLES.items():
                rows = session.execute(select(table).where(table.c.res_pk == pks[key]).limit(5)).all()
                for row in rows:
                    value = _query(ptype, row)
                    if value is None:
                        continue
                    resp = client.get(f"/fhir/{res['resourceType']}?{row.param}{value}&_count=1000&_elements=id")
                    assert resp.status_code == 200, (key, row.param, value, resp.text[:300])
                    if res["id"] in {e["resource"]["id"] for e in resp.json().get("entry", [])}:
                        found = True
                        break
                    not_found.append((key, row.param, value))
                if found:
                    break
            by_param += found
    print(f"examples: stored+read back {stored_ok}/564, by _id {by_id}/564, by own parameter {by_param}/564")
    assert by_id == 564
    assert not_found == []
    assert by_param == 564
