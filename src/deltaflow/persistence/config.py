"""The user-facing settings of persistence: ``pw.persistence.Config`` and ``Backend``.

Both are plain, validated value objects: every wrong argument fails when the object is built,
before ``pw.run`` starts anything. The storage itself lives in
:mod:`deltaflow.persistence.storage`.
"""

from __future__ import annotations

import enum
import os
import warnings
from typing import Any


class PersistenceMode(enum.Enum):
    """What a checkpoint keeps.

    * ``PERSISTING`` (and its older alias ``BATCH``): every input (its rows and offsets) and
      the state of every operator that keeps one across runs (``deduplicate``);
    * ``SELECTIVE_PERSISTING``: the same, but only for the inputs and operators given a
      ``name=``;
    * ``UDF_CACHING``: only the UDF disk caches.

    The other members exist for compatibility and are refused by :class:`Config`.
    """

    BATCH = "batch"
    PERSISTING = "persisting"
    SELECTIVE_PERSISTING = "selective_persisting"
    UDF_CACHING = "udf_caching"
    OPERATOR_PERSISTING = "operator_persisting"
    SPEEDRUN_REPLAY = "speedrun_replay"
    REALTIME_REPLAY = "realtime_replay"


class SnapshotAccess(enum.Enum):
    """Whether a run reads and/or writes snapshots.

    * ``FULL``: resume from the last checkpoint and keep writing new ones;
    * ``RECORD``: the same (what ``deltaflow spawn --record`` asks for);
    * ``REPLAY``: run the recorded inputs through the program, outputs included, and write
      nothing back (what ``deltaflow replay`` asks for);
    * ``OFFSETS_ONLY`` is not implemented.
    """

    FULL = "full"
    RECORD = "record"
    REPLAY = "replay"
    OFFSETS_ONLY = "offsets_only"


_SUPPORTED_MODES = (
    PersistenceMode.PERSISTING,
    PersistenceMode.BATCH,
    PersistenceMode.SELECTIVE_PERSISTING,
    PersistenceMode.UDF_CACHING,
)  # UDF_CACHING: only UDF disk caches


class Backend:
    """Where checkpoints are stored: build it with :meth:`filesystem` or :meth:`s3`."""

    def __init__(
        self,
        kind: str,
        *,
        path: str | None = None,
        root_path: str | None = None,
        bucket_settings: Any = None,
    ) -> None:
        self.kind = kind
        self.path = path
        self.root_path = root_path
        self.bucket_settings = bucket_settings

    @classmethod
    def filesystem(cls, path: str | os.PathLike[str]) -> Backend:
        """Checkpoints in the local directory ``path`` (created if missing)."""
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"pw.persistence.Backend.filesystem: path must be a string or a "
                f"path, got {type(path).__name__}"
            )
        text = os.fspath(path)
        if not text:
            raise ValueError("pw.persistence.Backend.filesystem: path must not be empty")
        if os.path.exists(text) and not os.path.isdir(text):
            raise NotADirectoryError(
                f"pw.persistence.Backend.filesystem: {text!r} exists and is not a directory"
            )
        return cls("filesystem", path=text)

    @classmethod
    def s3(cls, root_path: str, bucket_settings: Any) -> Backend:
        """Checkpoints under ``root_path`` (``s3://bucket/prefix`` or a prefix inside
        ``bucket_settings.bucket_name``) of an S3 bucket reached with ``bucket_settings``
        (``pw.io.s3.AwsS3Settings``, or MinIO/other settings that convert to it)."""
        from deltaflow.io.s3 import AwsS3Settings, resolve_location

        if not isinstance(root_path, str) or not root_path.strip("/"):
            raise ValueError(
                f"pw.persistence.Backend.s3: root_path must be a non-empty "
                f"string, got {root_path!r}"
            )
        convert = getattr(bucket_settings, "create_aws_settings", None)
        if convert is None:
            raise TypeError(
                f"pw.persistence.Backend.s3: bucket_settings must be a "
                f"pw.io.s3.AwsS3Settings, got {type(bucket_settings).__name__}"
            )
        settings = convert()
        if not isinstance(settings, AwsS3Settings):
            raise TypeError(
                "pw.persistence.Backend.s3: bucket_settings did not convert to "
                "pw.io.s3.AwsS3Settings"
            )
        # The connectors' own parsing: same schemes, same errors (no bucket, two buckets).
        resolve_location(root_path, settings, connector="pw.persistence.Backend.s3")
        return cls("s3", root_path=root_path, bucket_settings=settings)

    def __repr__(self) -> str:
        if self.kind == "filesystem":
            return f"Backend.filesystem({self.path!r})"
        return f"Backend.s3({self.root_path!r}, {self.bucket_settings!r})"


class Config:
    """Persistence settings for ``pw.run(persistence_config=...)``.

    ``snapshot_interval_ms`` is the least time between two checkpoints (0: after every
    processed time); a final checkpoint is always written when the run ends normally.
    ``continue_after_replay=False`` ends the run right after the checkpointed data was
    replayed, without reading anything new.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        snapshot_interval_ms: int = 0,
        snapshot_access: SnapshotAccess = SnapshotAccess.FULL,
        persistence_mode: PersistenceMode = PersistenceMode.PERSISTING,
        continue_after_replay: bool = True,
        worker_scaling_enabled: bool = False,
        workload_tracking_window_ms: int = 120000,
    ) -> None:
        label = "pw.persistence.Config"
        if not isinstance(backend, Backend):
            raise TypeError(
                f"{label}: backend must be a pw.persistence.Backend (use "
                f"Backend.filesystem(path) or Backend.s3(...)), got "
                f"{type(backend).__name__}"
            )
        if (
            isinstance(snapshot_interval_ms, bool)
            or not isinstance(snapshot_interval_ms, int)
            or snapshot_interval_ms < 0
        ):
            raise ValueError(
                f"{label}: snapshot_interval_ms must be a non-negative integer, "
                f"got {snapshot_interval_ms!r}"
            )
        mode = _enum_member(PersistenceMode, persistence_mode, "persistence_mode")
        if mode not in _SUPPORTED_MODES:
            raise NotImplementedError(
                f"{label}: persistence_mode={mode.name} is not "
                f"supported; use PersistenceMode.PERSISTING, "
                f"SELECTIVE_PERSISTING or UDF_CACHING"
            )
        access = _enum_member(SnapshotAccess, snapshot_access, "snapshot_access")
        if access is SnapshotAccess.OFFSETS_ONLY:
            raise NotImplementedError(
                f"{label}: snapshot_access=OFFSETS_ONLY is not "
                f"supported; use FULL, RECORD or REPLAY"
            )
        if not isinstance(continue_after_replay, bool):
            raise TypeError(f"{label}: continue_after_replay must be a bool")
        self.backend = backend
        self.snapshot_interval_ms = snapshot_interval_ms
        self.snapshot_access = access
        self.persistence_mode = mode
        self.continue_after_replay = continue_after_replay
        # Accepted, no effect: a restart on another number of workers always re-partitions
        # (docs/scaling.md, "Persistence"), as Pathway 0.33 restarts a file input across
        # worker counts without it.
        self.worker_scaling_enabled = bool(worker_scaling_enabled)
        self.workload_tracking_window_ms = workload_tracking_window_ms

    @classmethod
    def simple_config(
        cls,
        backend: Backend,
        snapshot_interval_ms: int = 0,
        snapshot_access: SnapshotAccess = SnapshotAccess.FULL,
        persistence_mode: PersistenceMode = PersistenceMode.PERSISTING,
        continue_after_replay: bool = True,
    ) -> Config:
        """The older way to build a :class:`Config` (deprecated: call the constructor)."""
        warnings.warn(
            "pw.persistence.Config.simple_config is deprecated; build the settings "
            "with pw.persistence.Config(backend, ...) instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return cls(
            backend,
            snapshot_interval_ms=snapshot_interval_ms,
            snapshot_access=snapshot_access,
            persistence_mode=persistence_mode,
            continue_after_replay=continue_after_replay,
        )

    @property
    def persists_only_named(self) -> bool:
        """Whether only the inputs and operators given a ``name=`` are persisted."""
        return self.persistence_mode is PersistenceMode.SELECTIVE_PERSISTING

    def __repr__(self) -> str:
        return (
            f"Config({self.backend!r}, snapshot_interval_ms={self.snapshot_interval_ms}, "
            f"persistence_mode={self.persistence_mode.name})"
        )


def _enum_member(enum_type: type[enum.Enum], value: Any, parameter: str) -> Any:
    """Accept our enum members, or members of another enum with the same name (so that
    code written against Pathway's ``pw.PersistenceMode`` keeps working)."""
    if isinstance(value, enum_type):
        return value
    name = getattr(value, "name", value)
    if isinstance(name, str) and name.upper() in enum_type.__members__:
        return enum_type[name.upper()]
    raise ValueError(
        f"pw.persistence.Config: {parameter} must be one of "
        f"{', '.join(enum_type.__members__)}, got {value!r}"
    )
