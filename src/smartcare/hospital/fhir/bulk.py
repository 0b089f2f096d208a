"""Bulk inserts of the rows a :class:`~smartcare.hospital.fhir.store.FhirStore` buffers.

Resource rows are inserted with ``RETURNING pk`` in parameter order, history and index rows with one
executemany per table. On PostgreSQL this is SQLAlchemy's ``insertmanyvalues``. On SQLite the rows go
straight to the driver: each value is converted by the column type's own SQLAlchemy bind processor
(so the stored values are exactly what SQLAlchemy would store), skipping its per-row statement
machinery, and a resource's JSON text is serialised once for its ``fhir_resource`` and
``fhir_history`` rows (the same dict object, unchanged while a flush runs).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, insert

from smartcare.hospital.fhir.db import resources

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


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]], texts: dict[int, Any]) -> None:
    """Insert history or index rows (one executemany)."""
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), rows)
        return
    conn.exec_driver_sql(_sql(table.name, tuple(rows[0]), False), _tuples(conn, table, rows, texts))
