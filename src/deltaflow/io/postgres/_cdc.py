"""Connections, catalog checks and replication slots for ``pw.io.postgres.read``.

Change data capture reads a logical replication slot through the SQL interface of logical
decoding with the built-in ``pgoutput`` plugin (psycopg 3 has no streaming replication
protocol; the SQL interface needs none). The slot is created over a *replication* connection
(``replication=database``) with ``CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export')``: that
returns the name of a snapshot showing exactly the transactions committed before the slot's
starting point, so the initial read of the table (in a transaction importing that snapshot)
and the changes decoded from the slot neither overlap nor leave a gap.

Either way, a permanent *anchor* slot keeps the WAL needed to resume, and a temporary *cursor*
slot copied from it (``pg_copy_logical_replication_slot``) is what is consumed, with
``pg_logical_slot_get_binary_changes``; a lost connection resumes from a new copy of the
anchor (see ``docs/postgres_read.md``):

* **persisted** (``pw.persistence.Config``): the anchor is named after the connector and kept
  across runs; it is advanced (``pg_replication_slot_advance``) only to positions a checkpoint
  holds, so a crash at any moment resumes from the checkpoint without losing or repeating a
  transaction.
* **not persisted**: the anchor belongs to one run (``deltaflow_run_...``), is advanced to what
  the run handed on and dropped at its end; a killed run's anchor is dropped by the next run
  of the same connector, unless its run lock (an advisory lock) shows the run alive.
"""

from __future__ import annotations

import hashlib
import logging
import time as _time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from deltaflow import _types as t
from deltaflow.io._core.retry import Outage, OutageTooLong, policy_for
from deltaflow.io.postgres._connection import hide, retry_seconds
from deltaflow.io.postgres._decode import PgType, decoder_for
from deltaflow.io.postgres._pgoutput import format_lsn, parse_lsn
from deltaflow.io.postgres._types import quote_ident  # the writer's: one quoting rule

if TYPE_CHECKING:
    from typing_extensions import LiteralString

logger = logging.getLogger("deltaflow.io.postgres")

# Literal strings: they are formatted into SQL text (psycopg's types check it).
SESSION_SETTINGS: dict[LiteralString, LiteralString] = {
    "DateStyle": "ISO",
    "TimeZone": "UTC",
    "IntervalStyle": "iso_8601",
    "extra_float_digits": "3",
}
"""Fixed on every connection: the text output of values depends on them (see _decode)."""

CONNECTION_DEFAULTS = {
    "connect_timeout": "10",
    "application_name": "deltaflow",
    # A server that vanishes without closing the connection is noticed within about a minute
    # (keepalives on an idle connection, tcp_user_timeout on a poll waiting for an answer).
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}
"""libpq settings added to ``postgres_settings`` when they are not given."""

_FATAL_CONNECT_ERRORS = (
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "SSL",
)


RUN_SLOT_PREFIX = "deltaflow_run_"
"""Slots of runs without persistence: ``deltaflow_run_<12 hex: connector>_<12 hex: run>``."""

RUN_SLOT_LENGTH = len(RUN_SLOT_PREFIX) + 12 + 1 + 12


class PostgresReadError(RuntimeError):
    """The table or the server cannot be read as asked (wrong table, columns, key, slot ...)."""


@dataclass(frozen=True)
class Target:
    """Everything a reader needs to know, fixed when the pipeline is defined."""

    connector: str
    settings: Mapping[str, str] = field(repr=False)  # holds the password
    schema_name: str
    table_name: str
    columns: Mapping[str, t.DType]
    primary_key: tuple[str, ...]
    publication: str | None
    append_only: bool
    identity: str  # names the persistent slot: stable across runs of the same program

    @property
    def address(self) -> str:
        """``host:port/dbname`` for messages (never the password)."""
        host = self.settings.get("host") or self.settings.get("hostaddr") or "localhost"
        port = self.settings.get("port") or "5432"
        return f"{host}:{port}/{self.settings.get('dbname', '')}"

    @property
    def qualified(self) -> str:
        return f"{self.schema_name}.{self.table_name}"

    def _digest(self) -> str:
        seed = "|".join(
            [str(self.settings.get("dbname", "")), self.schema_name, self.table_name, self.identity]
        )
        return hashlib.sha1(seed.encode()).hexdigest()

    def anchor_slot(self) -> str:
        """The persistent slot of this connector (at most 63 characters, PostgreSQL's limit)."""
        return "deltaflow_" + self._digest()[:24]

    def run_slot_prefix(self) -> str:
        """What the names of this connector's per-run slots (no persistence) start with."""
        return RUN_SLOT_PREFIX + self._digest()[:12] + "_"

    def run_slot(self) -> str:
        """A fresh name for the slot of one run without persistence (39 characters)."""
        return self.run_slot_prefix() + uuid.uuid4().hex[:12]


def connect_retry_seconds() -> float:
    """How long a connection is retried at start (the writer's setting, the same variable)."""
    return retry_seconds("pw.io.postgres.read")


def connect(
    target: Target,
    *,
    replication: bool = False,
    autocommit: bool = True,
    retry_s: float | None = None,
) -> Any:
    """A psycopg connection with :data:`SESSION_SETTINGS`, retried while the server is
    unreachable (``retry_s``, default :func:`connect_retry_seconds`), then a
    ``ConnectionError`` naming the connector and the address."""
    import psycopg

    params = dict(target.settings)
    for key, value in CONNECTION_DEFAULTS.items():
        params.setdefault(key, value)
    if replication:
        params["replication"] = "database"
    budget = connect_retry_seconds() if retry_s is None else retry_s
    outage = Outage(
        policy_for("postgres", target.connector).with_max_outage(budget),
        what=f"{target.connector}: PostgreSQL at {target.address}",
    )
    while True:
        try:
            connection = psycopg.connect(
                **params,  # type: ignore[arg-type]  # libpq keywords
                autocommit=True,
            )
            if replication:  # prepared statements use the extended protocol: refused there
                connection.prepare_threshold = None
            break
        except psycopg.OperationalError as exc:
            reason = hide(
                str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__,
                target.settings,
            )
            fatal = any(marker in str(exc) for marker in _FATAL_CONNECT_ERRORS)
            try:
                # The shared retry policy (docs/retries.md) spaces the attempts.
                wait = None if fatal else outage.failed(reason)
            except OutageTooLong:
                wait = None
            if wait is None:
                waited = "" if fatal else f" (retried for {budget:g} s, {outage.failures} attempts)"
                raise ConnectionError(
                    f"{target.connector}: cannot connect to PostgreSQL at "
                    f"{target.address}{waited}: {reason}"
                ) from None
            logger.warning(
                "%s: PostgreSQL at %s unreachable (%s); retrying",
                target.connector,
                target.address,
                reason,
            )
            _time.sleep(wait)
    for name, value in SESSION_SETTINGS.items():
        connection.execute(f"SET {name} = '{value}'")
    connection.autocommit = autocommit
    return connection


def execute(connection: Any, query: LiteralString, params: tuple[Any, ...] = ()) -> Any:
    """Run ``query`` with ``params`` (``%s`` placeholders) inlined as SQL literals: a
    replication connection only takes the simple query protocol, so no bound parameters."""
    from psycopg import sql

    if not params:
        return connection.execute(query)
    composed = sql.SQL(query.replace("{", "{{").replace("}", "}}").replace("%s", "{}"))
    return connection.execute(
        composed.format(*(sql.Literal(p) for p in params)).as_string(connection)
    )


def qualified_sql(target: Target) -> str:
    return f"{quote_ident(target.schema_name)}.{quote_ident(target.table_name)}"


# --- the catalog ------------------------------------------------------------------------------
@dataclass
class TableInfo:
    """What the catalog says about the table, checked against the schema."""

    oid: int
    kind: str  # pg_class.relkind
    replica_identity: str  # pg_class.relreplident
    types: dict[str, PgType]  # column name -> type (domains resolved to their base type)
    key_sets: list[frozenset[str]] = field(default_factory=list)  # PK and unique indexes
    identity_columns: frozenset[str] = frozenset()  # what an old key tuple holds


_TYPE_SQL: Final = """
SELECT t.oid, t.typname, t.typcategory, e.typname, e.typcategory
FROM pg_type t LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE t.oid = %s
"""


def pg_type(connection: Any, oid: int) -> PgType:
    """The :class:`PgType` of type ``oid`` (a domain is its base type)."""
    row = execute(
        connection, "SELECT typtype, typbasetype FROM pg_type WHERE oid = %s", (oid,)
    ).fetchone()
    if row is not None and row[0] == "d":
        oid = row[1]
    found = execute(connection, _TYPE_SQL, (oid,)).fetchone()
    if found is None:
        return PgType(f"oid {oid}", "X")
    element = PgType(found[3], found[4]) if found[3] is not None else None
    return PgType(found[1], found[2], element)


def inspect_table(connection: Any, target: Target, *, streaming: bool) -> TableInfo:
    """Check the table against the schema (and, streaming, the publication and the replica
    identity); a :class:`PostgresReadError` says what does not fit and how to fix it."""
    where = f"{target.connector}: table {target.qualified!r} at {target.address}"
    row = connection.execute(
        "SELECT c.oid, c.relkind, c.relreplident FROM pg_class c JOIN pg_namespace n ON "
        "n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (target.schema_name, target.table_name),
    ).fetchone()
    if row is None:
        raise PostgresReadError(f"{where} does not exist (names are case-sensitive)")
    oid, kind, identity = row
    columns = connection.execute(
        "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        (oid,),
    ).fetchall()
    types = {name: pg_type(connection, type_oid) for name, type_oid in columns}
    missing = [c for c in target.columns if c not in types]
    if missing:
        raise PostgresReadError(
            f"{where} has no column(s) {missing}; its columns are {list(types)}"
        )
    for name, dtype in target.columns.items():
        if decoder_for(types[name], dtype) is None:
            raise PostgresReadError(
                f"{where}: column {name!r} of type "
                f"{types[name].describe()} cannot be read as {dtype!r}"
            )
    info = TableInfo(oid, kind, identity, types)
    for attnames, primary, replident in connection.execute(
        "SELECT array_agg(a.attname::text), i.indisprimary, i.indisreplident "
        "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s AND i.indisunique "
        "AND i.indpred IS NULL GROUP BY i.indexrelid, i.indisprimary, i.indisreplident",
        (oid,),
    ).fetchall():
        key = frozenset(attnames)
        info.key_sets.append(key)
        if (identity == "d" and primary) or (identity == "i" and replident):
            info.identity_columns = key
    if identity == "f":
        info.identity_columns = frozenset(types)
    key = frozenset(target.primary_key)
    if key and kind in ("r", "p") and key not in info.key_sets:
        raise PostgresReadError(
            f"{where}: the schema's primary key {list(target.primary_key)} is not the "
            f"table's PRIMARY KEY or a UNIQUE index (the table has {sorted_sets(info)}), so "
            "rows sharing a key would be confused; declare the table's key in the schema"
        )
    if streaming:
        _check_streaming(connection, target, info, where)
    return info


def sorted_sets(info: TableInfo) -> list[list[str]]:
    return sorted(sorted(s) for s in info.key_sets) or [[]]


def _check_streaming(connection: Any, target: Target, info: TableInfo, where: str) -> None:
    if info.kind not in ("r", "p"):
        raise PostgresReadError(
            f"{where} is not a table (relkind {info.kind!r}); only tables "
            "can be read with mode='streaming'"
        )
    publication = target.publication
    found = connection.execute(
        "SELECT pubinsert, pubupdate, pubdelete, pubtruncate, pubviaroot FROM pg_publication "
        "WHERE pubname = %s",
        (publication,),
    ).fetchone()
    if found is None:
        raise PostgresReadError(
            f"{where}: publication {publication!r} does not exist; create "
            f"it with CREATE PUBLICATION {quote_ident(publication or '')} "
            f"FOR TABLE {qualified_sql(target)}"
        )
    if info.kind == "p" and not found[4]:
        raise PostgresReadError(
            f"{where} is partitioned: its changes are published under its "
            "partitions' names unless the publication is created WITH "
            "(publish_via_partition_root = true)"
        )
    covered = connection.execute(
        "SELECT attnames FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s "
        "AND tablename = %s",
        (publication, target.schema_name, target.table_name),
    ).fetchone()
    if covered is None:
        raise PostgresReadError(
            f"{where}: publication {publication!r} does not cover the "
            f"table; ALTER PUBLICATION {quote_ident(publication or '')} "
            f"ADD TABLE {qualified_sql(target)}"
        )
    published = set(covered[0] or info.types)
    unpublished = [c for c in target.columns if c not in published]
    if unpublished:
        raise PostgresReadError(
            f"{where}: publication {publication!r} leaves out column(s) {unpublished} of the schema"
        )
    skipped = [
        op
        for op, on in zip(("insert", "update", "delete", "truncate"), found[:4], strict=True)
        if not on
    ]
    if skipped:
        logger.warning(
            "%s: publication %r does not publish %s; such changes of %s will not be seen",
            target.connector,
            publication,
            ", ".join(skipped),
            target.qualified,
        )
    if target.append_only:
        return
    if info.replica_identity == "n":
        raise PostgresReadError(
            f"{where} has REPLICA IDENTITY NOTHING, so updates and deletes "
            "do not say which row they change; ALTER TABLE ... REPLICA "
            "IDENTITY DEFAULT (with a primary key) or FULL"
        )
    key = frozenset(target.primary_key)
    if info.replica_identity != "f" and key != info.identity_columns:
        what = "its primary key" if info.replica_identity == "d" else "its replica identity index"
        have = sorted(info.identity_columns) or "none"
        raise PostgresReadError(
            f"{where}: updates and deletes identify rows by {what} ({have}), but the schema's "
            f"primary key is {list(target.primary_key)}; declare those columns with "
            "pw.column_definition(primary_key=True), or ALTER TABLE ... REPLICA IDENTITY FULL"
        )


# --- slots -----------------------------------------------------------------------------------
@dataclass
class Snapshot:
    """The initial read, in a transaction importing the slot's exported snapshot ``name``
    (None: the table as it is, for a static read); ``delivered`` counts the rows handed on."""

    connection: Any
    cursor: Any
    start_lsn: int
    name: str | None = None
    delivered: int = 0


def create_slot(replication: Any, slot: str, *, temporary: bool) -> tuple[int, str]:
    """Create a ``pgoutput`` slot exporting a snapshot: its starting LSN and the snapshot's
    name (valid until the next command on ``replication``)."""
    kind = "TEMPORARY " if temporary else ""
    command = (
        f"CREATE_REPLICATION_SLOT {quote_ident(slot)} {kind}LOGICAL pgoutput (SNAPSHOT 'export')"
    )
    result = replication.pgconn.exec_(command.encode())
    if result.status != 2:  # TUPLES_OK
        message = (result.error_message or b"").decode(errors="replace").strip()
        raise PostgresReadError(f"creating the replication slot {slot!r} failed: {message}")
    return parse_lsn(result.get_value(0, 1).decode()), result.get_value(0, 2).decode()


def open_snapshot(
    target: Target,
    snapshot_name: str | None,
    start_lsn: int,
    columns: list[str],
    *,
    skip: int = 0,
    retry_s: float = 0,
) -> Snapshot:
    """Start reading the table as ``snapshot_name`` shows it (the current state if None),
    after its first ``skip`` rows.

    Skipping is exact because two reads of the same snapshot return the rows in the same
    order: the query is a plain sequential scan (cursors never run parallel plans) and
    synchronized scans, which start a big table's scan where another scan stands, are off.
    """
    connection = connect(target, autocommit=False, retry_s=retry_s)
    try:
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if snapshot_name is not None:
            connection.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_name}'")
        connection.execute("SET LOCAL synchronize_seqscans = off")
        select = ", ".join(f"{quote_ident(c)}::text" for c in columns) or "NULL"
        cursor = connection.cursor(name="deltaflow_snapshot_" + uuid.uuid4().hex[:8])
        cursor.itersize = 10_000
        cursor.execute(f"SELECT {select} FROM {qualified_sql(target)}")
        if skip:
            cursor.scroll(skip)  # MOVE on the server: the skipped rows are not sent
    except BaseException:
        connection.close()
        raise
    return Snapshot(connection, cursor, start_lsn, snapshot_name, skip)


def slot_state(connection: Any, slot: str) -> tuple[int | None, bool, str] | None:
    """``(confirmed_flush_lsn, active, database)`` of ``slot``, or None if it does not exist."""
    row = execute(
        connection,
        "SELECT confirmed_flush_lsn::text, active, database, plugin FROM "
        "pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    if row is None:
        return None
    if row[3] != "pgoutput":
        raise PostgresReadError(f"replication slot {slot!r} exists but uses plugin {row[3]!r}")
    return (parse_lsn(row[0]) if row[0] else None), bool(row[1]), row[2]


def copy_slot(connection: Any, source: str, copy: str) -> None:
    """A temporary copy of ``source`` starting where it stands, owned by ``connection``."""
    execute(connection, "SELECT pg_copy_logical_replication_slot(%s, %s, true)", (source, copy))


def advance_slot(connection: Any, slot: str, lsn: int) -> None:
    execute(
        connection, "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, format_lsn(lsn))
    )


def drop_slot(connection: Any, slot: str) -> None:
    execute(connection, "SELECT pg_drop_replication_slot(%s)", (slot,))


def drop_run_slot(target: Target, slot: str, connection: Any = None) -> None:
    """Drop the per-run slot ``slot`` at the end of a run, on ``connection`` if it still
    works, else on a new one; a slot that cannot be dropped is logged with the SQL that drops
    it (the next run of the same connector drops it too, see :func:`drop_leftover_run_slots`)."""
    import psycopg

    usable = connection is not None and not (connection.closed or connection.broken)
    error: Exception | None = None
    for given in (True, False) if usable else (False,):
        try:
            # given only when usable, so never None (a checker keeps the None of usable's test)
            current: Any = connection if given else connect(target, retry_s=5.0)
            try:
                execute(
                    current,
                    "SELECT pg_drop_replication_slot(slot_name) FROM "
                    "pg_replication_slots WHERE slot_name = %s",
                    (slot,),
                )
            finally:
                if not given:
                    current.close()
            logger.info("%s: dropped replication slot %r", target.connector, slot)
            return
        except (psycopg.Error, ConnectionError) as exc:
            error = exc
    logger.warning(
        "%s: could not drop replication slot %r at %s (%s); it keeps WAL until "
        "dropped: SELECT pg_drop_replication_slot('%s')",
        target.connector,
        slot,
        target.address,
        hide(str(error).strip(), target.settings),
        slot,
    )


def hold_run_lock(connection: Any, slot: str) -> None:
    """Take the session advisory lock that says "the run of ``slot`` is alive" (released by
    PostgreSQL when ``connection`` ends, however it ends)."""
    execute(connection, "SELECT pg_advisory_lock(hashtextextended(%s, 0))", (slot,))


def drop_leftover_run_slots(connection: Any, target: Target) -> list[str]:
    """Drop the per-run slots of this connector that a killed run left behind: those that no
    connection uses, that have no temporary cursor copy and whose run lock
    (:func:`hold_run_lock`) is free. A running run holds its lock from before its slot exists,
    except while it reconnects."""
    prefix = target.run_slot_prefix()
    rows = execute(
        connection,
        "SELECT s.slot_name FROM pg_replication_slots s WHERE starts_with(s.slot_name, %s) "
        "AND length(s.slot_name) = %s AND NOT s.active AND NOT s.temporary "
        "AND s.database = current_database() AND NOT EXISTS (SELECT 1 FROM "
        "pg_replication_slots c WHERE starts_with(c.slot_name, s.slot_name || '_'))",
        (prefix, RUN_SLOT_LENGTH),
    ).fetchall()
    dropped = []
    for (slot,) in rows:
        (free,) = execute(
            connection, "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (slot,)
        ).fetchone()
        if not free:
            continue  # its run is alive (reading its snapshot)
        try:
            drop_slot(connection, slot)
        except Exception as exc:  # noqa: BLE001 - taken in the meantime: not a leftover
            logger.debug("leftover slot %r not dropped: %s", slot, exc)
            continue
        finally:
            execute(connection, "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (slot,))
        logger.warning(
            "%s: dropped replication slot %r left by a run that did not end cleanly",
            target.connector,
            slot,
        )
        dropped.append(slot)
    return dropped


def fetch_changes(connection: Any, slot: str, publication: str, limit: int) -> list[bytes]:
    """Consume the next whole transactions of ``slot`` (about ``limit`` changes at most;
    PostgreSQL never stops inside a transaction) as raw pgoutput messages."""
    rows = execute(
        connection,
        "SELECT data FROM pg_logical_slot_get_binary_changes(%s, NULL, %s, "
        "'proto_version', '1', 'publication_names', %s)",
        (slot, limit, quote_ident(publication)),
    ).fetchall()
    return [bytes(row[0]) for row in rows]
