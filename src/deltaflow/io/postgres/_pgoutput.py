"""A parser of the messages of PostgreSQL's built-in ``pgoutput`` logical decoding plugin.

The change data capture of ``pw.io.postgres.read`` reads a replication slot through the SQL
interface of logical decoding (``pg_logical_slot_get_binary_changes``); each returned row
holds one message of the *logical replication message formats* chapter of the PostgreSQL
manual, protocol version 1, with column values in text format. This module turns those bytes
into small dataclasses; it knows nothing about schemas or types (see ``_decode.py``).

Only the messages protocol version 1 can produce are understood; anything else is a
:class:`PgOutputError` (the reader reports it and stops rather than guess).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "UNCHANGED",
    "Begin",
    "Column",
    "Commit",
    "Delete",
    "Insert",
    "Message",
    "PgOutputError",
    "Relation",
    "Truncate",
    "Update",
    "format_lsn",
    "parse_lsn",
    "parse_message",
]


class PgOutputError(ValueError):
    """A message that is not a well-formed pgoutput (protocol 1) message."""


class _Unchanged:
    """The value of a TOASTed column an UPDATE did not change (PostgreSQL does not send it)."""

    _instance: _Unchanged | None = None

    def __new__(cls) -> _Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()
"""Marks a column value PostgreSQL left out of a tuple because it did not change."""

TupleValues = tuple["str | _Unchanged | None", ...]
"""A tuple's column values in the relation's column order: text, None (NULL) or UNCHANGED."""


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int
    part_of_key: bool


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    commit_time_us: int
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    commit_time_us: int


@dataclass(frozen=True)
class Relation:
    relation_id: int
    namespace: str
    name: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Insert:
    relation_id: int
    new: TupleValues


@dataclass(frozen=True)
class Update:
    relation_id: int
    #: The old row: its key columns ('K', when the key changed) or all of it ('O',
    #: REPLICA IDENTITY FULL); None when PostgreSQL did not send it.
    old: TupleValues | None
    old_is_key_only: bool
    new: TupleValues


@dataclass(frozen=True)
class Delete:
    relation_id: int
    old: TupleValues
    old_is_key_only: bool


@dataclass(frozen=True)
class Truncate:
    relation_ids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True)
class Other:
    """A message the reader does not act on (origin, type, logical message)."""

    kind: str


Message = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Other

_INT8 = struct.Struct("!q")
_INT32 = struct.Struct("!i")
_UINT32 = struct.Struct("!I")
_INT16 = struct.Struct("!h")


class _Cursor:
    __slots__ = ("data", "position")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def _need(self, size: int) -> None:
        if self.position + size > len(self.data):
            raise PgOutputError(
                f"message truncated at byte {self.position} "
                f"(wanted {size} more of {len(self.data)})"
            )

    def byte(self) -> str:
        self._need(1)
        value = chr(self.data[self.position])
        self.position += 1
        return value

    def int8(self) -> int:
        self._need(1)
        value = self.data[self.position]
        self.position += 1
        return value

    def int16(self) -> int:
        self._need(2)
        (value,) = _INT16.unpack_from(self.data, self.position)
        self.position += 2
        return int(value)

    def int32(self) -> int:
        self._need(4)
        (value,) = _INT32.unpack_from(self.data, self.position)
        self.position += 4
        return int(value)

    def uint32(self) -> int:
        self._need(4)
        (value,) = _UINT32.unpack_from(self.data, self.position)
        self.position += 4
        return int(value)

    def int64(self) -> int:
        self._need(8)
        (value,) = _INT8.unpack_from(self.data, self.position)
        self.position += 8
        return int(value)

    def string(self) -> str:
        end = self.data.find(b"\x00", self.position)
        if end < 0:
            raise PgOutputError(f"unterminated string at byte {self.position}")
        value = self.data[self.position : end].decode("utf-8")
        self.position = end + 1
        return value

    def text(self, size: int) -> str:
        self._need(size)
        value = self.data[self.position : self.position + size].decode("utf-8")
        self.position += size
        return value

    def tuple_data(self) -> TupleValues:
        count = self.int16()
        values: list[str | _Unchanged | None] = []
        for _ in range(count):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind == "t":
                values.append(self.text(self.int32()))
            else:  # 'b' (binary) is only sent when asked for; we never ask
                raise PgOutputError(f"unsupported tuple value kind {kind!r}")
        return tuple(values)


def parse_message(data: bytes) -> Message:
    """The message encoded in ``data`` (one row of ``pg_logical_slot_*_binary_changes``)."""
    if not data:
        raise PgOutputError("empty message")
    cursor = _Cursor(bytes(data))
    kind = cursor.byte()
    if kind == "B":
        return Begin(cursor.int64(), cursor.int64(), cursor.uint32())
    if kind == "C":
        cursor.int8()  # flags, unused
        return Commit(cursor.int64(), cursor.int64(), cursor.int64())
    if kind == "R":
        relation_id = cursor.uint32()
        namespace = cursor.string()
        name = cursor.string()
        identity = cursor.byte()
        columns = []
        for _ in range(cursor.int16()):
            flags = cursor.int8()
            columns.append(
                Column(cursor.string(), cursor.uint32(), cursor.int32(), bool(flags & 1))
            )
        return Relation(relation_id, namespace, name, identity, tuple(columns))
    if kind == "I":
        relation_id = cursor.uint32()
        if cursor.byte() != "N":
            raise PgOutputError("insert without a new tuple")
        return Insert(relation_id, cursor.tuple_data())
    if kind == "U":
        relation_id = cursor.uint32()
        marker = cursor.byte()
        old = None
        key_only = False
        if marker in ("K", "O"):
            key_only = marker == "K"
            old = cursor.tuple_data()
            marker = cursor.byte()
        if marker != "N":
            raise PgOutputError(f"update without a new tuple (marker {marker!r})")
        return Update(relation_id, old, key_only, cursor.tuple_data())
    if kind == "D":
        relation_id = cursor.uint32()
        marker = cursor.byte()
        if marker not in ("K", "O"):
            raise PgOutputError(f"delete without an old tuple (marker {marker!r})")
        return Delete(relation_id, cursor.tuple_data(), marker == "K")
    if kind == "T":
        count = cursor.int32()
        options = cursor.int8()
        ids = tuple(cursor.uint32() for _ in range(count))
        return Truncate(ids, bool(options & 1), bool(options & 2))
    if kind in ("O", "Y", "M"):
        return Other(kind)
    raise PgOutputError(f"unknown message type {kind!r}")


def parse_lsn(text: str) -> int:
    """The integer position of an LSN written as PostgreSQL prints it (``16/B374D848``)."""
    high, _, low = text.partition("/")
    if not low:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(position: int) -> str:
    """The LSN ``position`` as PostgreSQL prints it."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"
