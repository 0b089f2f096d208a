"""The FHIR resource store: create, read, vread, update, patch, delete and history (FHIR R4 http.html).

Every write bumps ``meta.versionId``, sets ``meta.lastUpdated``, appends a row to
``fhir_history`` and re-indexes the resource. Updates are optimistic: the row is updated only if
its version is still the one that was read, so concurrent writers with the same ``If-Match``
produce exactly one winner and one 412. Methods never commit; the caller (one HTTP interaction,
one Bundle, one loader batch) calls :meth:`FhirStore.commit` or :meth:`FhirStore.rollback`.
Creations with a server id (POST), history rows and index rows are buffered and written in bulk
(:mod:`bulk`) before any read that needs them and on commit, so a Bundle costs a few statements per
table rather than several per resource; primary keys still follow the order of the writes.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import delete, false, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartcare.hospital.fhir import bulk, indexer, search
from smartcare.hospital.fhir.db import INDEX_TABLES, history, resources
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.patch import apply_patch
from smartcare.hospital.fhir.records import Stored, WriteResult, parse_etag
from smartcare.hospital.fhir.terminology import SearchContext
from smartcare.hospital.fhir.validation import ID_RE, validate
from smartcare.hospital.fhir.values import instant, now, parse_instant

_INSERT_ONE = insert(resources).returning(resources.c.pk)


class FhirStore:
    """Resource persistence on one SQLAlchemy session (SQLite or PostgreSQL)."""

    def __init__(self, session: Session, *, validate_resources: bool = True) -> None:
        self.session = session
        self.validate_resources = validate_resources
        self._buffer = bulk.WriteBuffer()

    # -- transactions -------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write buffered resource/history/index rows (before any query that reads them, and on commit)."""
        self._buffer.flush(self.session.connection)

    def commit(self) -> None:
        self.flush()
        self.session.commit()

    def rollback(self) -> None:
        self.discard()
        self.session.rollback()

    def discard(self) -> None:
        """Drop buffered rows (after a failed savepoint in a batch)."""
        self._buffer.discard()

    # -- reads --------------------------------------------------------------------------------------
    def _row(self, rtype: str, rid: str):
        if self._buffer.new:  # keeps pks in write order and makes buffered creations visible
            self.flush()
        return self.session.execute(
            select(resources).where(resources.c.res_type == rtype, resources.c.res_id == rid)
        ).first()

    @staticmethod
    def _stored(row) -> Stored:
        return Stored(row.res_type, row.res_id, row.version, row.last_updated, row.deleted, row.content)

    def read(self, rtype: str, rid: str) -> Stored:
        """The current version; 404 if never stored, 410 if deleted."""
        row = self._row(rtype, rid)
        if row is None:
            raise FhirError(404, f"Resource {rtype}/{rid} is not known", expression=[rtype])
        if row.deleted:
            raise FhirError(410, f"Resource {rtype}/{rid} was deleted (version {row.version})")
        return self._stored(row)

    def vread(self, rtype: str, rid: str, vid: str) -> Stored:
        """One historical version; 404 if absent, 410 if that version is a deletion."""
        self.flush()
        if not vid.isdigit():
            raise FhirError(404, f"Version {vid!r} of {rtype}/{rid} is not known")
        row = self.session.execute(
            select(history).where(history.c.res_type == rtype, history.c.res_id == rid, history.c.version == int(vid))
        ).first()
        if row is None:
            raise FhirError(404, f"Version {vid} of {rtype}/{rid} is not known")
        if row.deleted:
            raise FhirError(410, f"Version {vid} of {rtype}/{rid} is a deletion")
        return self._stored(row)

    def find(self, rtype: str, query: str, *, limit: int = 2) -> list[Stored]:
        """Live resources matching a search query string (for conditional interactions)."""
        self.flush()
        items = parse_qsl(query.lstrip("?"), keep_blank_values=True)
        if not items:
            raise FhirError(412, "A conditional interaction needs search criteria")
        stmt = search.build_query(rtype, items, SearchContext(self.session))
        pks = self.session.execute(stmt.limit(limit)).scalars().all()
        rows = self.session.execute(select(resources).where(resources.c.pk.in_(pks))).all()
        return [self._stored(r) for r in rows]

    # -- writes -------------------------------------------------------------------------------------
    def _prepare(self, resource: Any, rtype: str | None, owned: bool = False) -> dict[str, Any]:
        if self.validate_resources:
            validate(resource, rtype)
        elif not isinstance(resource, dict) or "resourceType" not in resource:
            raise FhirError(400, "A resource must be a JSON object with a resourceType", code="structure")
        if owned:  # already a private copy of parsed JSON (Bundle entries)
            return resource
        return json.loads(json.dumps(resource))  # a private copy; faster than deepcopy for JSON

    def _stamp(self, content: dict[str, Any], rid: str, version: int, when: datetime) -> None:
        content["id"] = rid
        meta = dict(content.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = instant(when)
        content["meta"] = meta

    def _index(self, pk: int | None, content: dict[str, Any], *, fresh: bool) -> list[dict[str, Any]]:
        """Buffer the index rows of ``content``; returns them (``res_pk`` is None until the resource
        row of a buffered creation is inserted)."""
        if not fresh:
            self._unindex(pk)
        rtype = content["resourceType"]
        out: list[dict[str, Any]] = []
        for ptype, rows in indexer.extract(content).items():
            if rows:
                for row in rows:
                    row["res_pk"] = pk
                    row["res_type"] = rtype
                self._buffer.add(INDEX_TABLES[ptype], rows)
                out += rows
        return out

    def _unindex(self, pk: int) -> None:
        self.flush()
        for table in INDEX_TABLES.values():
            self.session.execute(delete(table).where(table.c.res_pk == pk))

    def _history(self, stored: Stored, method: str) -> None:
        row = {
            "res_type": stored.res_type,
            "res_id": stored.res_id,
            "version": stored.version,
            "last_updated": stored.last_updated,
            "method": method,
            "deleted": stored.deleted,
            "content": stored.content,
        }
        self._buffer.add_history(row)

    def create(
        self,
        resource: Any,
        *,
        rid: str | None = None,
        if_none_exist: str | None = None,
        owned: bool = False,
        new_id: bool = False,
    ) -> WriteResult:
        """POST: store with a server id (any client id is replaced); conditional with ``If-None-Exist``.

        ``owned=True`` says ``resource`` is a private copy of parsed JSON that the store may keep and
        modify (otherwise it is copied); ``new_id=True`` says ``rid`` is a uuid the caller just made,
        so the insert may be buffered like one with a generated id."""
        content = self._prepare(resource, None, owned)
        rtype = content["resourceType"]
        if if_none_exist:
            found = self.find(rtype, if_none_exist)
            if len(found) > 1:
                raise FhirError(412, f"If-None-Exist '{if_none_exist}' matches more than one {rtype}")
            if found:
                return WriteResult(found[0], created=False, changed=False)
        return self._insert(content, rid or str(uuid.uuid4()), "POST", defer=rid is None or new_id)

    def _insert(self, content: dict[str, Any], rid: str, method: str, *, defer: bool = False) -> WriteResult:
        when = now()
        rtype = content["resourceType"]
        self._stamp(content, rid, 1, when)
        row = {"res_type": rtype, "res_id": rid, "version": 1, "last_updated": when, "deleted": False}
        row["content"] = content
        stored = Stored(rtype, rid, 1, when, False, content)
        if method == "POST" and defer and (rtype, rid) not in self._buffer.new_ids:  # fresh uuid: on flush
            self._history(stored, method)
            self._buffer.add_new(row, self._index(None, content, fresh=True))
        elif method == "POST":  # an id given by the caller: insert now, so a clash raises here
            if self._buffer.new:
                self.flush()
            pk = self.session.execute(_INSERT_ONE, row).scalar_one()
            self._history(stored, method)
            self._index(pk, content, fresh=True)
        else:
            pk = self._guarded_insert(row, rtype, rid)
            self._history(stored, method)
            self._index(pk, content, fresh=True)
        return WriteResult(stored, created=True)

    def _guarded_insert(self, row: dict[str, Any], rtype: str, rid: str) -> int:
        if self._buffer.new:
            self.flush()
        try:
            with self.session.begin_nested():
                return self.session.execute(_INSERT_ONE, row).scalar_one()
        except IntegrityError:
            raise FhirError(409, f"Resource {rtype}/{rid} was created concurrently") from None

    def update(
        self,
        rtype: str,
        rid: str,
        resource: Any,
        *,
        if_match: str | None = None,
        method: str = "PUT",
        owned: bool = False,
    ) -> WriteResult:
        """PUT: new version of ``rtype/rid`` (create-on-update when absent or deleted); ``owned`` as in
        :meth:`create`."""
        if not ID_RE.match(rid):
            raise FhirError(400, f"Invalid resource id {rid!r}", expression=[f"{rtype}.id"])
        content = self._prepare(resource, rtype, owned)
        body_id = content.get("id")
        if body_id is None:
            raise FhirError(400, "The resource in an update must carry an id", expression=[f"{rtype}.id"])
        if body_id != rid:
            raise FhirError(
                400, f"Resource id {body_id!r} does not match the URL id {rid!r}", expression=[f"{rtype}.id"]
            )
        expected = parse_etag(if_match)
        row = self._row(rtype, rid)
        if row is None:
            if expected is not None:
                raise FhirError(412, f"If-Match given but {rtype}/{rid} does not exist")
            return self._insert(content, rid, method)
        if expected is not None and expected != row.version:
            raise FhirError(412, f"Version conflict on {rtype}/{rid}: If-Match {expected}, current {row.version}")
        return self._new_version(row, content, method, expected is not None)

    def _new_version(self, row, content: dict[str, Any] | None, method: str, matched: bool) -> WriteResult:
        when = now()
        version = row.version + 1
        deleted = content is None
        if content is not None:
            self._stamp(content, row.res_id, version, when)
        result = self.session.execute(
            update(resources)
            .where(resources.c.pk == row.pk, resources.c.version == row.version)
            .values(version=version, last_updated=when, deleted=deleted, content=content)
        )
        if result.rowcount != 1:
            status = 412 if matched else 409
            raise FhirError(status, f"{row.res_type}/{row.res_id} was changed concurrently; retry with If-Match")
        stored = Stored(row.res_type, row.res_id, version, when, deleted, content)
        self._history(stored, method)
        if deleted:
            self._unindex(row.pk)
        else:
            self._index(row.pk, content, fresh=False)
        return WriteResult(stored, created=bool(row.deleted))

    def conditional_update(
        self, rtype: str, query: str, resource: Any, *, if_match: str | None = None, owned: bool = False
    ) -> WriteResult:
        """PUT ``Type?criteria``: update the single match, create when none, 412 when several."""
        found = self.find(rtype, query)
        if len(found) > 1:
            raise FhirError(412, f"Conditional update criteria '{query}' match more than one {rtype}")
        body_id = resource.get("id") if isinstance(resource, dict) else None
        if not found:
            rid = body_id or str(uuid.uuid4())
            content = dict(resource) if isinstance(resource, dict) else resource
            if isinstance(content, dict):
                content["id"] = rid
            return self.update(rtype, rid, content, if_match=if_match, owned=owned)
        if body_id and body_id != found[0].res_id:
            raise FhirError(
                400,
                f"Resource id {body_id!r} does not match the matched {rtype}/{found[0].res_id}",
                expression=[f"{rtype}.id"],
            )
        content = dict(resource)
        content["id"] = found[0].res_id
        return self.update(rtype, found[0].res_id, content, if_match=if_match, owned=owned)

    def patch(self, rtype: str, rid: str, ops: Any, *, if_match: str | None = None) -> WriteResult:
        """PATCH with a JSON Patch document."""
        current = self.read(rtype, rid)
        patched = apply_patch(current.content or {}, ops)
        return self.update(rtype, rid, patched, if_match=if_match or current.etag, method="PATCH")

    def delete(self, rtype: str, rid: str, *, if_match: str | None = None) -> Stored | None:
        """DELETE: records a deletion version; deleting an absent or deleted resource is a no-op."""
        row = self._row(rtype, rid)
        expected = parse_etag(if_match)
        if row is None or row.deleted:
            return None
        if expected is not None and expected != row.version:
            raise FhirError(412, f"Version conflict on {rtype}/{rid}: If-Match {expected}, current {row.version}")
        return self._new_version(row, None, "DELETE", expected is not None).stored

    def conditional_delete(self, rtype: str, query: str) -> Stored | None:
        """DELETE ``Type?criteria``: deletes the single match; 412 when several match."""
        found = self.find(rtype, query)
        if len(found) > 1:
            raise FhirError(412, f"Conditional delete criteria '{query}' match more than one {rtype}")
        return self.delete(rtype, found[0].res_id) if found else None

    # -- history ------------------------------------------------------------------------------------
    def history(
        self,
        rtype: str | None = None,
        rid: str | None = None,
        *,
        since: str | None = None,
        at: str | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> tuple[list[Stored], bool]:
        """Versions newest first (instance, type or system level) and whether more follow."""
        self.flush()
        q = select(history)
        if rtype:
            q = q.where(history.c.res_type == rtype)
        if rid:
            if self._row(rtype, rid) is None:
                raise FhirError(404, f"Resource {rtype}/{rid} is not known")
            q = q.where(history.c.res_id == rid)
        try:
            if since:
                q = q.where(history.c.last_updated >= parse_instant(since))
            if at:
                q = q.where(history.c.last_updated <= parse_instant(at))
        except ValueError as err:
            raise FhirError(400, f"Invalid _since/_at: {err}", expression=["_since"]) from None
        rows = self.session.execute(
            q.order_by(history.c.last_updated.desc(), history.c.hpk.desc()).offset(offset).limit(count + 1)
        ).all()
        return [self._stored(r) for r in rows[:count]], len(rows) > count

    def everything_pks(self, rid: str) -> list[int]:
        """Keys of the Patient and every live resource in its compartment (CompartmentDefinition-patient)."""
        from smartcare.hospital.fhir.compartment import patient_compartment_query

        self.read("Patient", rid)
        return list(self.session.execute(patient_compartment_query(rid)).scalars())

    def live_count(self) -> int:
        from sqlalchemy import func

        return self.session.execute(
            select(func.count()).select_from(resources).where(resources.c.deleted == false())
        ).scalar_one()
