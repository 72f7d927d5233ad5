"""The checkpoint store: input snapshots, offset frontiers and operator states, committed in
two phases.

Layout under the backend's root::

    chunks/<input dir>/<checkpoint number>.ipc     rows one input committed (Arrow IPC)
    chunks/<operator dir>/<checkpoint number>.ipc  entries of an operator's state that changed
    checkpoints/<checkpoint number>.json           the manifest (written last)

Phase one writes the chunks of a checkpoint; phase two writes its manifest, which lists, for
every persisted input, all the chunks that make up its snapshot and its offset frontier. Only a
checkpoint whose manifest exists is ever loaded, so a run killed between the two phases leaves
files nobody reads (the next checkpoint with that number overwrites them).

A chunk holds delta rows: ``_id``, the input's columns, ``_diff`` and ``_source`` (the encoded
key of the source part — file, object — the row came from, or null). Columns Arrow cannot hold
(``pl.Object``: Json, Python objects, tuples) are stored pickled in a binary column.

An operator's state (``deduplicate``) is a mapping; each chunk holds the entries (``key``,
``entry``, both pickled) that changed since the previous checkpoint, so applying the chunks in
order rebuilds the mapping.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import pickle
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from deltaflow.engine.batch import DIFF, ID, value_hashes
from deltaflow.errors import PersistenceError
from deltaflow.io._core.offsets import merge_frontiers
from deltaflow.persistence.storage import Storage

logger = logging.getLogger("deltaflow.persistence")

FORMAT_VERSION = 1
SOURCE = "_source"
_MANIFESTS = "checkpoints/"
_MANIFEST_NAME = re.compile(r"^checkpoints/(\d+)\.json$")


class CheckpointError(PersistenceError, RuntimeError):
    """A checkpoint cannot be used by this pipeline (the message says why and what to do)."""


# --- offsets and source keys as JSON ------------------------------------------------------
def encode_value(value: Any) -> Any:
    """A JSON form of an offset key/value or a source key (tuples and bytes are tagged)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        return {"t": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode("ascii")}
    raise TypeError(
        f"an offset or source key of type {type(value).__name__} ({value!r}) "
        f"cannot be stored in a checkpoint"
    )


def decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "t" in value:
            return tuple(decode_value(v) for v in value["t"])
        if "b" in value:
            return base64.b64decode(value["b"])
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def encode_key(key: Hashable | None) -> str | None:
    """A source key as the text stored in the ``_source`` column."""
    return None if key is None else json.dumps(encode_value(key), separators=(",", ":"))


def decode_key(text: str | None) -> Hashable | None:
    return None if text is None else decode_value(json.loads(text))


def _encode_frontier(frontier: Mapping[Any, Any]) -> list[list[Any]]:
    return [[encode_value(k), encode_value(v)] for k, v in frontier.items()]


def _decode_frontier(pairs: list[list[Any]]) -> dict[Any, Any]:
    return {decode_value(k): decode_value(v) for k, v in pairs}


# --- chunks -----------------------------------------------------------------------------------
def serialize_chunk(frame: pl.DataFrame) -> tuple[bytes, list[str]]:
    """Arrow IPC bytes of ``frame`` and the names of the columns stored pickled."""
    pickled = [name for name, dtype in frame.schema.items() if dtype == pl.Object]
    if pickled:
        frame = frame.with_columns(
            pl.Series(name, [pickle.dumps(v) for v in frame[name].to_list()], dtype=pl.Binary)
            for name in pickled
        )
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="lz4")
    return buffer.getvalue(), pickled


def deserialize_chunk(data: bytes, pickled: list[str]) -> pl.DataFrame:
    frame = pl.read_ipc(io.BytesIO(data))
    if pickled:
        frame = frame.with_columns(
            pl.Series(
                name,
                [
                    None if v is None else pickle.loads(v)  # noqa: S301 - own data
                    for v in frame[name].to_list()
                ],
                dtype=pl.Object,
            )
            for name in pickled
        )
    return frame


def current_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows alive after applying the deltas of ``frame`` in order (diff = multiplicity).

    An input may hold several rows under one id at once, with different values: the same
    primary key in two files, or twice in one file (a multiset, as in Pathway). Rows are
    therefore told apart by id, by the source part they came from and by their values (a
    hash of them); each distinct row alive at the end is kept once, as last inserted, with
    its net multiplicity. Values that cannot be hashed (Python objects) are told apart by id
    and source part only: deltas retract exactly what they inserted before, so the last
    inserted row is then the alive one.
    """
    if frame.height == 0:
        return frame
    keys = [ID] + ([SOURCE] if SOURCE in frame.columns else [])
    indexed = frame.select(*keys, DIFF).with_row_index("_row")
    values = value_hashes(frame, [c for c in frame.columns if c not in (ID, DIFF, SOURCE)])
    if values is not None:
        indexed = indexed.with_columns(values.alias("_values"))
        keys.append("_values")
    alive = (
        indexed.group_by(keys)
        .agg(
            pl.col(DIFF).sum().alias("_net"),
            pl.col("_row").filter(pl.col(DIFF) > 0).last().alias("_last"),
        )
        .filter((pl.col("_net") > 0) & pl.col("_last").is_not_null())
        .sort("_last")
    )
    rows = frame[alive["_last"].to_list()]
    return rows.with_columns(alive["_net"].cast(pl.Int64).alias(DIFF))


# --- manifests --------------------------------------------------------------------------------
@dataclass
class ChunkRef:
    key: str
    rows: int
    pickled: list[str] = field(default_factory=list)
    # SHA-256 of the stored bytes: a damaged or partly written chunk is recognised before it
    # is parsed (None in checkpoints written before checksums were recorded).
    digest: str | None = None

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"key": self.key, "rows": self.rows, "pickled": self.pickled}
        if self.digest is not None:
            document["sha256"] = self.digest
        return document

    @staticmethod
    def from_json(document: dict[str, Any]) -> ChunkRef:
        return ChunkRef(
            document["key"],
            int(document["rows"]),
            list(document["pickled"]),
            document.get("sha256"),
        )


@dataclass
class InputState:
    """What a checkpoint holds for one input: its snapshot chunks and its frontier."""

    columns: list[str]
    chunks: list[ChunkRef] = field(default_factory=list)
    frontier: dict[Any, Any] = field(default_factory=dict)
    # On several workers, the frontiers of the workers other than 0 (``frontier`` is worker
    # 0's): the manifest keeps one per worker, a restart merges them.
    others: list[dict[Any, Any]] = field(default_factory=list)


@dataclass
class OperatorState:
    """What a checkpoint holds for one operator: what its state must match to be restored
    (``layout``) and the chunks of changed entries, oldest first."""

    layout: list[str]
    chunks: list[ChunkRef] = field(default_factory=list)


@dataclass
class Checkpoint:
    number: int
    time: int | None
    inputs: dict[str, InputState]
    operators: dict[str, OperatorState] = field(default_factory=dict)
    # Per output, where it stood at the checkpointed time (a writer-specific JSON value, e.g.
    # the length of an output file): a restart puts the output back there before writing.
    sinks: dict[str, Any] = field(default_factory=dict)
    final: bool = False  # written when the run ended normally (not after a crash)

    def states(self) -> list[InputState | OperatorState]:
        """The inputs' states, then the operators' (each lists its chunks)."""
        return [*self.inputs.values(), *self.operators.values()]


def chunk_keys(checkpoint: Checkpoint | None) -> set[str]:
    """Every chunk a checkpoint uses."""
    if checkpoint is None:
        return set()
    return {c.key for s in checkpoint.states() for c in s.chunks}


def fallback_for(
    keys: set[str], last: Checkpoint | None, fallback: Checkpoint | None
) -> Checkpoint | None:
    """Which checkpoint to keep as a fallback next to a new one using chunks ``keys``.

    Normally the last one. But a checkpoint that added no chunk (a final checkpoint with
    nothing new, one where only offsets moved) shares all its chunks with the last one, which
    is then no fallback at all: a damaged chunk would break both. The last one's own fallback
    is kept instead.
    """
    if last is None:
        return None
    return fallback if keys == chunk_keys(last) else last


def input_directory(persistent_id: str) -> str:
    """A storage-safe directory name for an input (ids may hold ``/`` or ``:``)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", persistent_id)[:40]
    digest = hashlib.sha256(persistent_id.encode()).hexdigest()[:16]
    return f"{readable}-{digest}"


class CheckpointStore:
    """Reads and writes checkpoints in a :class:`Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._loaded: dict[str, pl.DataFrame] = {}
        # The checkpoint kept as a fallback next to the one load_latest returned.
        self.fallback: Checkpoint | None = None

    def _manifest_numbers(self) -> list[int]:
        numbers = []
        for key in self.storage.list(_MANIFESTS):
            match = _MANIFEST_NAME.match(key)
            if match:
                numbers.append(int(match.group(1)))
        return sorted(numbers)

    def load_latest(self, number: int | None = None) -> Checkpoint | None:
        """The newest usable checkpoint, or None when the store holds none (with ``number``,
        that checkpoint, which another worker found usable).

        A checkpoint is usable when its manifest parses and every chunk it names exists, has
        the recorded checksum and can be decoded. An unusable one is skipped with a warning in
        favour of the one before it (the previous checkpoint is always kept for that). When
        checkpoints exist but none is usable, restarting from nothing would output everything
        again, so that is an error instead.
        """
        stored = set(self.storage.list("chunks/"))
        numbers = self._manifest_numbers()
        problems: list[str] = []
        wanted = numbers if number is None else [n for n in numbers if n <= number]
        for number in reversed(wanted):
            raw = self.storage.get(f"{_MANIFESTS}{number:012d}.json")
            try:
                checkpoint = self._parse(number, raw)
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"checkpoint {number}: unreadable manifest ({exc})")
                logger.warning(
                    "persistence: checkpoint %d in %s is unreadable (%s); trying the previous one",
                    number,
                    self.storage.describe(),
                    exc,
                )
                continue
            missing = [c.key for s in checkpoint.states() for c in s.chunks if c.key not in stored]
            if missing:
                problems.append(f"checkpoint {number}: missing {', '.join(missing)}")
                logger.warning(
                    "persistence: checkpoint %d in %s lacks %s; trying the previous one",
                    number,
                    self.storage.describe(),
                    ", ".join(missing),
                )
                continue
            damaged = self._load_chunks(checkpoint)
            if damaged is not None:
                problems.append(f"checkpoint {number}: {damaged}")
                logger.warning(
                    "persistence: checkpoint %d in %s is damaged (%s); falling "
                    "back to the previous one",
                    number,
                    self.storage.describe(),
                    damaged,
                )
                continue
            self.fallback = self._older_checkpoint(numbers, number)
            return checkpoint
        if numbers:
            raise CheckpointError(
                f"persistence: no usable checkpoint in {self.storage.describe()} ("
                + "; ".join(problems)
                + "). Restore the store from a backup, or remove it to "
                "start over (everything is then read and output again)"
            )
        return None

    def _older_checkpoint(self, numbers: list[int], number: int) -> Checkpoint | None:
        """The newest checkpoint before ``number`` (the fallback kept next to it), parsed but
        not verified; None if there is none or it cannot be read."""
        older = [n for n in numbers if n < number]
        if not older:
            return None
        try:
            return self._parse(older[-1], self.storage.get(f"{_MANIFESTS}{older[-1]:012d}.json"))
        except (ValueError, KeyError, TypeError):
            return None

    def _load_chunks(self, checkpoint: Checkpoint) -> str | None:
        """Read and decode every chunk of ``checkpoint`` into the cache the replay then
        uses; what is wrong with the first bad chunk, or None when all are fine."""
        self._loaded = {}
        for state in checkpoint.states():
            for chunk in state.chunks:
                if chunk.key in self._loaded:
                    continue
                data = self.storage.get(chunk.key)
                if data is None:
                    return f"chunk {chunk.key} vanished"
                if chunk.digest is not None and hashlib.sha256(data).hexdigest() != chunk.digest:
                    return f"chunk {chunk.key} does not match its checksum"
                try:
                    frame = deserialize_chunk(data, chunk.pickled)
                except Exception as exc:  # noqa: BLE001 - any decoding failure means damage
                    return f"chunk {chunk.key} cannot be decoded ({type(exc).__name__}: {exc})"
                if frame.height != chunk.rows:
                    return (
                        f"chunk {chunk.key} holds {frame.height} rows, the manifest says "
                        f"{chunk.rows}"
                    )
                self._loaded[chunk.key] = frame
        return None

    def release_loaded(self) -> None:
        """Forget the chunks :meth:`load_latest` read that the run did not use."""
        self._loaded = {}

    def _chunk_frame(self, chunk: ChunkRef) -> pl.DataFrame:
        """A chunk's rows: from the cache filled by :meth:`load_latest`, else from the store."""
        frame = self._loaded.pop(chunk.key, None)
        if frame is not None:
            return frame
        data = self.storage.get(chunk.key)
        if data is None:
            raise CheckpointError(
                f"persistence: the chunk {chunk.key} of a complete "
                f"checkpoint vanished from {self.storage.describe()}"
            )
        return deserialize_chunk(data, chunk.pickled)

    @staticmethod
    def _parse(number: int, raw: bytes | None) -> Checkpoint:
        if raw is None:
            raise ValueError("the manifest vanished")
        document = json.loads(raw)
        if document.get("format") != FORMAT_VERSION:
            raise ValueError(f"unknown format {document.get('format')!r}")
        inputs = {}
        for name, entry in document["inputs"].items():
            frontiers = [_decode_frontier(f) for f in entry["frontiers"]]
            inputs[name] = InputState(
                columns=list(entry["columns"]),
                chunks=[ChunkRef.from_json(c) for c in entry["chunks"]],
                # One frontier per worker that wrote this input; a restart needs their merge.
                frontier=merge_frontiers(frontiers),
            )
        operators = {
            name: OperatorState(
                layout=list(entry["layout"]),
                chunks=[ChunkRef.from_json(c) for c in entry["chunks"]],
            )
            for name, entry in document.get("operators", {}).items()
        }
        sinks = dict(document.get("sinks", {}))
        return Checkpoint(
            number,
            document.get("time"),
            inputs,
            operators,
            sinks,
            bool(document.get("final", False)),
        )

    def read_rows(self, state: InputState) -> pl.DataFrame | None:
        """All the delta rows of an input's snapshot, in commit order (None if none)."""
        frames = [self._chunk_frame(chunk) for chunk in state.chunks]
        if not frames:
            return None
        return pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]

    def read_operator_state(self, state: OperatorState) -> dict[Any, Any]:
        """An operator's saved mapping: its chunks applied in order."""
        entries: dict[Any, Any] = {}
        for chunk in state.chunks:
            frame = self._chunk_frame(chunk)
            entries.update(zip(frame["key"].to_list(), frame["entry"].to_list(), strict=True))
        return entries

    def write_operator_chunk(
        self, persistent_id: str, number: int, entries: Mapping[Any, Any], suffix: str = ""
    ) -> ChunkRef:
        """Phase one: store changed entries of one operator's state for checkpoint
        ``number``."""
        frame = pl.DataFrame(
            [
                pl.Series("key", list(entries), dtype=pl.Object),
                pl.Series("entry", list(entries.values()), dtype=pl.Object),
            ]
        )
        return self.write_chunk(f"operator:{persistent_id}", number, frame, suffix)

    def write_chunk(
        self, persistent_id: str, number: int, frame: pl.DataFrame, suffix: str = ""
    ) -> ChunkRef:
        """Phase one: store rows of one input for checkpoint ``number``."""
        key = f"chunks/{input_directory(persistent_id)}/{number:012d}{suffix}.ipc"
        data, pickled = serialize_chunk(frame)
        self.storage.put(key, data)
        return ChunkRef(key, frame.height, pickled, hashlib.sha256(data).hexdigest())

    def commit(
        self,
        number: int,
        time: int | None,
        inputs: Mapping[str, InputState],
        previous: Checkpoint | None,
        operators: Mapping[str, OperatorState] | None = None,
        sinks: Mapping[str, Any] | None = None,
        *,
        final: bool = False,
    ) -> Checkpoint:
        """Phase two: write the manifest of checkpoint ``number``; then drop every other
        checkpoint but ``previous`` (kept as a fallback: see :func:`fallback_for`) and every
        chunk neither uses."""
        document = {
            "format": FORMAT_VERSION,
            "number": number,
            "time": time,
            "inputs": {
                name: {
                    "columns": state.columns,
                    "chunks": [c.as_json() for c in state.chunks],
                    "frontiers": [
                        _encode_frontier(frontier) for frontier in [state.frontier, *state.others]
                    ],
                }
                for name, state in inputs.items()
            },
            "operators": {
                name: {"layout": state.layout, "chunks": [c.as_json() for c in state.chunks]}
                for name, state in (operators or {}).items()
            },
            "sinks": dict(sinks or {}),
            "final": final,
        }
        self.storage.put(
            f"{_MANIFESTS}{number:012d}.json", json.dumps(document, separators=(",", ":")).encode()
        )
        checkpoint = Checkpoint(
            number, time, dict(inputs), dict(operators or {}), dict(sinks or {}), final
        )
        self._collect_garbage(checkpoint, previous)
        return checkpoint

    def _collect_garbage(self, current: Checkpoint, previous: Checkpoint | None) -> None:
        keep_numbers = {current.number} | ({previous.number} if previous else set())
        used = {
            c.key
            for cp in (current, previous)
            if cp is not None
            for s in cp.states()
            for c in s.chunks
        }
        for number in self._manifest_numbers():
            if number not in keep_numbers and number < current.number:
                self.storage.delete(f"{_MANIFESTS}{number:012d}.json")
        for key in self.storage.list("chunks/"):
            match = re.search(r"/(\d+)[^/]*\.ipc$", key)
            # Chunks newer than the current checkpoint belong to a later, unfinished one.
            if key not in used and match and int(match.group(1)) <= current.number:
                self.storage.delete(key)
