"""Buffered writes of a :class:`~smartcare.hospital.fhir.store.FhirStore` and their bulk inserts.

Resources created by POST with a fresh server id (no clash possible), history rows and index rows
wait in a :class:`WriteBuffer` until a read needs them or the transaction commits; then each table
gets one bulk statement, so a Bundle costs a few statements per table rather than several per resource.
Primary keys still follow the order of the writes.

On PostgreSQL with psycopg every table is loaded with ``COPY ... FROM STDIN``, with the values
SQLAlchemy's bind processors make (``Jsonb`` for JSONB columns); resource rows get their keys from
the table's sequence first. Elsewhere resource rows are inserted with ``RETURNING pk`` in parameter
order (SQLAlchemy's ``insertmanyvalues``) and other rows with one executemany. On
SQLite the rows go straight to the driver: each value is converted by the column type's own
SQLAlchemy bind processor (so the stored values are exactly what SQLAlchemy would store), skipping
its per-row statement machinery, and a resource's JSON text is serialised once for its
``fhir_resource`` and ``fhir_history`` rows (the same dict object, unchanged while a flush runs).
Index rows hold only strings, None and floats, which need no conversion (the
``Float`` processor is ``float()``), so their parameter tuples are taken with one ``itemgetter``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Float, Table, insert

from smartcare.hospital.fhir.db import history, resources

# executemany with RETURNING in parameter order (SQLAlchemy "insertmanyvalues").
_INSERT_MANY = insert(resources).returning(resources.c.pk, sort_by_parameter_order=True)


@cache
def _sql(table: str, cols: tuple[str, ...], returning: bool) -> str:
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    return sql + " RETURNING pk" if returning else sql


def _processors(conn: Connection, table: Table, cols: tuple[str, ...]) -> list[Callable[[Any], Any] | None]:
    dialect = conn.dialect
    return [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in cols]


def _tuples(conn: Connection, table: Table, rows: list[dict[str, Any]], texts: dict[int, Any]) -> list[tuple]:
    """Driver parameters of ``rows``; JSON texts are memoised in ``texts`` by object id for this flush."""
    cols = tuple(rows[0])
    procs = _processors(conn, table, cols)
    if all(p is None or isinstance(table.c[c].type, Float) for c, p in zip(cols, procs, strict=True)):
        return list(map(itemgetter(*cols), rows)) if len(cols) > 1 else [(r[cols[0]],) for r in rows]
    out = []
    for r in rows:
        values = []
        for c, proc in zip(cols, procs, strict=True):
            v = r[c]
            if proc is not None and v is not None:
                if c == "content":
                    key = id(v)
                    text = texts.get(key)
                    if text is None:
                        text = texts[key] = proc(v)
                    v = text
                else:
                    v = proc(v)
            elif proc is not None:
                v = proc(v)
            values.append(v)
        out.append(tuple(values))
    return out


def insert_resources(conn: Connection, rows: list[dict[str, Any]], texts: dict[int, Any]) -> list[int]:
    """Insert ``fhir_resource`` rows; their new primary keys in row order."""
    if _copies(conn):
        return _copy_resources(conn, rows, texts)
    if conn.dialect.name != "sqlite":
        return list(conn.execute(_INSERT_MANY, rows).scalars().all())
    sql = _sql(resources.name, tuple(rows[0]), True)
    cursor = conn.connection.cursor()
    try:
        pks = []
        for params in _tuples(conn, resources, rows, texts):
            cursor.execute(sql, params)
            pks.append(cursor.fetchone()[0])
        return pks
    finally:
        cursor.close()


def _copies(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def _copy(conn: Connection, table: Table, cols: tuple[str, ...], params: list[tuple]) -> None:
    with conn.connection.cursor() as cursor:
        with cursor.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in params:
                copy.write_row(row)


def _copy_resources(conn: Connection, rows: list[dict[str, Any]], texts: dict[int, Any]) -> list[int]:
    """PostgreSQL: take the keys from the table's own sequence (ascending, so in write order), then COPY
    the rows with them. Buffered resources carry fresh ids, so the unique (type, id) cannot clash."""
    pks = sorted(
        conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%(t)s, 'pk')) FROM generate_series(1, %(n)s)",
            {"t": resources.name, "n": len(rows)},
        ).scalars()
    )
    cols = ("pk", *rows[0])
    params = [(pk, *values) for pk, values in zip(pks, _tuples(conn, resources, rows, texts), strict=True)]
    _copy(conn, resources, cols, params)
    return pks


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]], texts: dict[int, Any]) -> None:
    """Insert history or index rows: one ``COPY`` on PostgreSQL with psycopg, one executemany elsewhere."""
    if _copies(conn):
        _copy(conn, table, tuple(rows[0]), _tuples(conn, table, rows, texts))
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), rows)
        return
    conn.exec_driver_sql(_sql(table.name, tuple(rows[0]), False), _tuples(conn, table, rows, texts))


class WriteBuffer:
    """Rows waiting to be written in bulk: new resources (with their index rows, whose ``res_pk`` is
    filled in when the resource rows are inserted), history rows and index rows by table."""

    def __init__(self) -> None:
        self.new: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        self.new_ids: set[tuple[str, str]] = set()
        self.pending: dict[Table, list[dict[str, Any]]] = {}

    def add_new(self, row: dict[str, Any], index_rows: list[dict[str, Any]]) -> None:
        self.new_ids.add((row["res_type"], row["res_id"]))
        self.new.append((row, index_rows))

    def add(self, table: Table, rows: list[dict[str, Any]]) -> None:
        self.pending.setdefault(table, []).extend(rows)

    def add_history(self, row: dict[str, Any]) -> None:
        self.pending.setdefault(history, []).append(row)

    def discard(self) -> None:
        self.new, self.new_ids, self.pending = [], set(), {}

    def flush(self, conn_of: Callable[[], Connection]) -> None:
        """Insert everything buffered (``conn_of`` gives the session's connection) and empty the buffer."""
        if not self.new and not any(self.pending.values()):
            self.pending = {}
            return
        conn = conn_of()
        texts: dict[int, Any] = {}  # JSON text per content object, shared by resource and history rows
        new, pending = self.new, self.pending
        self.discard()
        if new:
            pks = insert_resources(conn, [row for row, _ in new], texts)
            for pk, (_, index_rows) in zip(pks, new, strict=True):
                for row in index_rows:
                    row["res_pk"] = pk
        for table, rows in pending.items():
            if rows:
                insert_rows(conn, table, rows, texts)
