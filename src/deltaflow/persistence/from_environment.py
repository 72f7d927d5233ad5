"""Persistence settings from the environment, as ``deltaflow spawn --record`` and
``deltaflow replay`` (and Pathway's ``pathway spawn``/``replay``) pass them to a program.

When ``pw.run`` gets no ``persistence_config`` and ``PATHWAY_REPLAY_STORAGE`` names a
directory, the run records into it (``PATHWAY_SNAPSHOT_ACCESS=record``) or replays it
(``replay``). ``PATHWAY_CONTINUE_AFTER_REPLAY=true`` goes on reading live data after the replay;
``PATHWAY_PERSISTENCE_MODE`` (``batch`` or ``speedrun``) says how to replay: deltaflow replays
the recorded rows as one batch in both modes (the recording keeps rows, not their original
minibatch boundaries) and says so once for ``speedrun``.
"""

from __future__ import annotations

import logging
import os

from deltaflow.persistence.config import Backend, Config, SnapshotAccess

logger = logging.getLogger("deltaflow.persistence")

_ACCESS = {
    "record": SnapshotAccess.RECORD,
    "replay": SnapshotAccess.REPLAY,
    "full": SnapshotAccess.FULL,
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def config_from_environment() -> Config | None:
    """The persistence config the environment asks for, or None."""
    path = os.environ.get("PATHWAY_REPLAY_STORAGE")
    if not path:
        return None
    access_name = os.environ.get("PATHWAY_SNAPSHOT_ACCESS", "full").strip().lower()
    if access_name not in _ACCESS:
        raise ValueError(
            f"PATHWAY_SNAPSHOT_ACCESS={access_name!r}: expected one of {', '.join(sorted(_ACCESS))}"
        )
    access = _ACCESS[access_name]
    continue_value = os.environ.get("PATHWAY_CONTINUE_AFTER_REPLAY", "").strip().lower()
    if continue_value not in _TRUE | _FALSE:
        raise ValueError(
            f"PATHWAY_CONTINUE_AFTER_REPLAY={continue_value!r}: expected true or false"
        )
    # Recording goes on with live data by definition; a replay stops after the recording
    # unless asked to continue.
    continue_after_replay = continue_value in _TRUE or access is not SnapshotAccess.REPLAY
    mode = os.environ.get("PATHWAY_PERSISTENCE_MODE", "batch").strip().lower()
    if mode not in ("batch", "speedrun"):
        raise ValueError(f"PATHWAY_PERSISTENCE_MODE={mode!r}: expected batch or speedrun")
    if mode == "speedrun" and access is SnapshotAccess.REPLAY:
        logger.warning(
            "replay mode speedrun: deltaflow replays the recording as one batch, as in batch mode"
        )
    if access is SnapshotAccess.REPLAY and not os.path.isdir(path):
        raise FileNotFoundError(
            f"replay: no recording at {path!r} (record one with "
            f"'deltaflow spawn --record --record-path {path} ...')"
        )
    logger.info("persistence from the environment: %s %s", access.name.lower(), path)
    return Config(
        Backend.filesystem(path),
        snapshot_access=access,
        continue_after_replay=continue_after_replay,
    )
