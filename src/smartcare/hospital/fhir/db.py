"""Tables, engines and migrations of the FHIR store (SQLAlchemy 2 Core; SQLite or PostgreSQL).

One generic table holds the current version of every resource of every type; ``fhir_history`` keeps
every version; one index table per search-parameter type holds the values extracted on write.
JSON columns are ``JSONB`` on PostgreSQL. The schema is created by the Alembic migrations in
``migrations/`` (:func:`init_db`); ``METADATA`` mirrors them for queries.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB

JSONType = JSON().with_variant(JSONB(), "postgresql")
METADATA = MetaData()
VERSION_TABLE = "fhir_alembic_version"

resources = Table(
    "fhir_resource",
    METADATA,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", JSONType),
    UniqueConstraint("res_type", "res_id", name="uq_fhir_resource_type_id"),
    Index("ix_fhir_resource_updated", "last_updated"),
)

history = Table(
    "fhir_history",
    METADATA,
    Column("hpk", Integer, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("method", String(8), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", JSONType),
    UniqueConstraint("res_type", "res_id", "version", name="uq_fhir_history_version"),
    Index("ix_fhir_history_updated", "last_updated"),
)


def _index_table(name: str, *cols: Column, indexes: tuple[tuple[str, ...], ...] = ()) -> Table:
    return Table(
        name,
        METADATA,
        Column("res_pk", Integer, ForeignKey("fhir_resource.pk", ondelete="CASCADE"), nullable=False),
        Column("res_type", String(64), nullable=False),
        Column("param", String(64), nullable=False),
        *cols,
        Index(f"ix_{name}_pk", "res_pk"),
        *(Index(f"ix_{name}_{'_'.join(ix)}", "res_type", "param", *ix) for ix in indexes),
    )


idx_string = _index_table("fhir_idx_string", Column("value", String(255)), Column("exact", Text), indexes=(("value",),))
idx_token = _index_table(
    "fhir_idx_token",
    Column("system", String(255)),
    Column("code", String(255)),
    Column("text", Text),
    indexes=(("code", "system"),),
)
idx_reference = _index_table(
    "fhir_idx_reference",
    Column("target_type", String(64)),
    Column("target_id", String(255)),
    Column("url", Text),
    Column("ident_system", String(255)),
    Column("ident_value", String(255)),
    indexes=(("target_id", "target_type"),),
)
idx_date = _index_table("fhir_idx_date", Column("low", Float), Column("high", Float), indexes=(("low",),))
idx_number = _index_table("fhir_idx_number", Column("value", Float), indexes=(("value",),))
idx_quantity = _index_table(
    "fhir_idx_quantity",
    Column("value", Float),
    Column("system", String(255)),
    Column("code", String(255)),
    indexes=(("value",),),
)
idx_uri = _index_table("fhir_idx_uri", Column("value", Text))

# Two-component composites (token|reference $ token|quantity|date|string|number), one row per
# combination of component values taken from the same base element.
idx_composite = _index_table(
    "fhir_idx_composite",
    Column("c1_system", String(255)),
    Column("c1_code", String(255)),
    Column("c2_system", String(255)),
    Column("c2_code", String(255)),
    Column("c2_value", Float),
    Column("c2_low", Float),
    Column("c2_high", Float),
    indexes=(("c1_code",),),
)

# Snapshot of a search's ordered result keys, so paging links stay stable and never re-count.
searches = Table(
    "fhir_search",
    METADATA,
    Column("search_id", String(36), primary_key=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("res_type", String(64)),
    Column("params", JSONType),
    Column("pks", JSONType),
    Column("total", Integer),
)

INDEX_TABLES = {
    "string": idx_string,
    "token": idx_token,
    "reference": idx_reference,
    "date": idx_date,
    "number": idx_number,
    "quantity": idx_quantity,
    "uri": idx_uri,
    "composite": idx_composite,
}

_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def init_db(engine_or_url: Engine | str) -> Engine:
    """Bring the FHIR schema to the newest migration (idempotent) and return the engine."""
    from alembic import command
    from alembic.config import Config

    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return engine


def engine_for(url: str) -> Engine:
    """The process-wide engine for ``url``, migrated on first use."""
    with _LOCK:
        if url not in _ENGINES:
            _ENGINES[url] = init_db(make_engine(url))
        return _ENGINES[url]


def analyze(connection) -> None:
    """Refresh planner statistics after a bulk load (PostgreSQL plans the index subqueries badly
    on fresh tables until autovacuum gets to them)."""
    for table in (resources, history, *INDEX_TABLES.values()):
        connection.exec_driver_sql(f"ANALYZE {table.name}")


def dangling_references(session) -> int:
    """Index rows of local references whose target resource is not stored (0 after a complete load)."""
    target = (select(resources.c.pk)
              .where(resources.c.res_type == idx_reference.c.target_type,
                     resources.c.res_id == idx_reference.c.target_id)
              .exists())
    query = (select(func.count()).select_from(idx_reference)
             .where(idx_reference.c.target_id.is_not(None), ~target))
    return int(session.execute(query).scalar_one())


def reset_db(url: str) -> None:
    """Drop every FHIR table and the migration marker, then migrate an empty schema again."""
    with _LOCK:
        cached = _ENGINES.pop(url, None)
    if cached is not None:
        cached.dispose()
    engine = make_engine(url)
    with engine.begin() as conn:
        METADATA.drop_all(conn)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {VERSION_TABLE}")
    init_db(engine)
    engine.dispose()


from smartcare.hospital.fhir import candidate_table as _candidate_table  # noqa: E402,F401  (on METADATA)
from smartcare.hospital.fhir import embedding_table as _embedding_table  # noqa: E402,F401  (on METADATA)
