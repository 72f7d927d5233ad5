"""Connections, identifier quoting, path checks and table introspection for SQLite."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from os import PathLike, fspath
from typing import Any

from deltaflow.io.sqlite import _settings
from deltaflow.io.sqlite._settings import _SQLITE_HEADER


def quote(identifier: str) -> str:
    """``identifier`` as an SQL quoted identifier (embedded double quotes doubled)."""
    if "\x00" in identifier:
        raise ValueError(f"identifier {identifier!r} contains a NUL character")
    return '"' + identifier.replace('"', '""') + '"'


def _is_busy(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _check_path(connector: str, path: PathLike | str, *, must_exist: bool) -> str:
    if not isinstance(path, str | PathLike):
        raise TypeError(
            f"{connector}: path must be a str or os.PathLike, got {type(path).__name__}"
        )
    path_str = fspath(path)
    if path_str in ("", ":memory:"):
        raise ValueError(f"{connector}: path must name a database file, got {path_str!r}")
    if os.path.isdir(path_str):
        raise ValueError(
            f"{connector}: path {path_str!r} is a directory, not an SQLite "
            "database file; pass the path of a file"
        )
    if os.path.exists(path_str):
        try:
            with open(path_str, "rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise ValueError(f"{connector}: cannot open {path_str!r}: {exc}") from None
        if header and header != _SQLITE_HEADER:
            raise ValueError(
                f"{connector}: {path_str!r} is not an SQLite database (its first "
                "bytes are not the SQLite header)"
            )
    elif must_exist:
        raise ValueError(f"{connector}: database file {path_str!r} does not exist")
    else:
        parent = os.path.dirname(os.path.abspath(path_str))
        if not os.path.isdir(parent):
            raise ValueError(
                f"{connector}: directory {parent!r} of {path_str!r} does not exist; create it first"
            )
    return path_str


def _connect(path: str, *, create: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are begun explicitly)."""
    uri = "file:" + _uri_path(path) + ("?mode=rwc" if create else "?mode=rw")
    connection = sqlite3.connect(
        uri,
        uri=True,
        timeout=_settings.BUSY_TIMEOUT_S,
        isolation_level=None,
        check_same_thread=False,
    )
    connection.execute(f"PRAGMA busy_timeout = {int(_settings.BUSY_TIMEOUT_S * 1000)}")
    return connection


def _uri_path(path: str) -> str:
    from urllib.parse import quote as url_quote

    return url_quote(os.path.abspath(path))


@dataclass
class _TableInfo:
    kind: str  # "table" or "view"
    name: str
    columns: list[dict[str, Any]]  # PRAGMA table_xinfo rows as dicts
    unique_sets: list[frozenset[str]]  # lower-cased column sets of PRIMARY KEY/UNIQUE
    without_rowid: bool


def _other_object_kind(connection: sqlite3.Connection, name: str) -> str | None:
    """The kind of schema object other than a table or view (``index``, ``trigger``) named
    ``name`` (as SQLite resolves names: case-insensitively), or None."""
    row = connection.execute(
        "SELECT type FROM sqlite_master WHERE type NOT IN ('table', 'view') "
        "AND name = ? COLLATE NOCASE",
        (name,),
    ).fetchone()
    return None if row is None else str(row[0])


def _table_info(connection: sqlite3.Connection, table_name: str) -> _TableInfo | None:
    row = connection.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name = ? COLLATE NOCASE",
        (table_name,),
    ).fetchone()
    if row is None:
        return None
    kind, name, sql = row
    cursor = connection.execute(f"PRAGMA table_xinfo({quote(name)})")
    names = [d[0] for d in cursor.description]
    columns = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    columns = [c for c in columns if c.get("hidden", 0) in (0, 2, 3)]
    unique_sets: list[frozenset[str]] = []
    pk = [c["name"].lower() for c in sorted(columns, key=lambda c: c["pk"]) if c["pk"]]
    if pk:
        unique_sets.append(frozenset(pk))
    if kind == "table":
        for index in connection.execute(f"PRAGMA index_list({quote(name)})").fetchall():
            if index[2]:  # unique
                members = connection.execute(f"PRAGMA index_info({quote(index[1])})").fetchall()
                if all(m[2] is not None for m in members):
                    unique_sets.append(frozenset(m[2].lower() for m in members))
    without_rowid = kind == "table" and "WITHOUT ROWID" in (sql or "").upper().replace("\n", " ")
    return _TableInfo(kind, name, columns, unique_sets, without_rowid)
