"""How a failed run is shown to the user: deltaflow's own frames left out of the traceback,
and a note naming the line of the user's program that defined the failing operation.

A failure deep in the engine travels through a dozen frames of the time loop, the operators
and the expression evaluator before it leaves ``pw.run()``; none of them tells the user what
to fix. When a run fails, :func:`explain_failure` (called where the run's error context ends)
adds a PEP 678 note naming where the failing table, expression or output was defined, and
:func:`trim_traceback` removes deltaflow's frames from the exception and from the exceptions
it was raised from. The user's frames (their UDF, their callback) stay, and so does the line
that raised when deltaflow raised something that is not a :class:`~deltaflow.errors.DeltaflowError`
(such an error may be a bug of deltaflow: its raise site helps the report).

``DELTAFLOW_FULL_TRACEBACK=1`` in the environment keeps every frame.

This module imports nothing from deltaflow at import time, so any module may use it.
"""

from __future__ import annotations

import contextlib
import os
from types import TracebackType
from typing import Any, Literal

#: The environment variable that keeps deltaflow's frames in tracebacks.
FULL_TRACEBACK_VARIABLE = "DELTAFLOW_FULL_TRACEBACK"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# Python's standard library (threading, asyncio, contextlib ... between deltaflow's frames),
# without the third-party packages that may be installed below it.
_STDLIB_DIR = os.path.dirname(os.path.abspath(contextlib.__file__)) + os.sep
#: Marks the notes this module adds, so that an exception crossing two run boundaries (a
#: run inside a run, ``pw.run`` around the engine's own boundary) is annotated once.
_NOTE_PREFIX = "deltaflow: "


def full_traceback_wanted() -> bool:
    """Whether ``DELTAFLOW_FULL_TRACEBACK`` asks for untrimmed tracebacks."""
    setting = os.environ.get(FULL_TRACEBACK_VARIABLE, "").strip().lower()
    return setting not in ("", "0", "false", "no", "off")


def is_internal_file(filename: str) -> bool:
    """Whether a frame running code from ``filename`` is left out of a trimmed traceback:
    deltaflow's package, Python's standard library (``contextlib``, ``threading``,
    ``asyncio`` ... that deltaflow's frames go through) and generated code (``<string>``)."""
    if filename.startswith("<"):
        return True
    path = os.path.abspath(filename)
    if path.startswith(_PACKAGE_DIR):
        return True
    return path.startswith(_STDLIB_DIR) and "-packages" + os.sep not in path


def _trimmed(tb: TracebackType | None, keep_raise_site: bool) -> tuple[TracebackType | None, bool]:
    """``tb`` without internal frames (the last one kept when ``keep_raise_site``), and
    whether any frame was dropped."""
    frames: list[TracebackType] = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    kept = [entry for entry in frames if not is_internal_file(entry.tb_frame.f_code.co_filename)]
    if keep_raise_site and frames and frames[-1] not in kept:
        kept.append(frames[-1])
    if len(kept) == len(frames):
        return (frames[0] if frames else None), False
    rebuilt: TracebackType | None = None
    for entry in reversed(kept):  # traceback objects are immutable in frame and line: rebuild
        rebuilt = TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt, True


def trim_traceback(error: BaseException) -> bool:
    """Remove deltaflow's frames from the traceback of ``error`` and of the exceptions in its
    ``__cause__``/``__context__`` chain (unless ``DELTAFLOW_FULL_TRACEBACK`` is set). Returns
    whether a frame was removed. ``KeyboardInterrupt`` and other non-``Exception`` errors are
    left alone."""
    if full_traceback_wanted():
        return False
    from deltaflow.errors import DeltaflowError

    dropped = False
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen or not isinstance(current, Exception):
            continue
        seen.add(id(current))
        keep_raise_site = not isinstance(current, DeltaflowError)
        tb, removed = _trimmed(current.__traceback__, keep_raise_site)
        if removed:
            current.__traceback__ = tb
            dropped = True
        pending.extend((current.__cause__, current.__context__))
    return dropped


def _has_our_note(error: BaseException) -> bool:
    return any(
        isinstance(note, str) and note.startswith(_NOTE_PREFIX)
        for note in getattr(error, "__notes__", ())
    )


def definition_note(node: Any) -> str | None:
    """The note naming where the plan node ``node`` was defined in the user's program, or
    None when that is unknown."""
    origin = getattr(node, "origin", None)
    location = getattr(origin, "location", "")
    if not location:
        return None
    describe = getattr(node, "describe", None)
    what = describe() if callable(describe) else type(node).__name__
    note = f"{_NOTE_PREFIX}the failure happened in {what}, defined at {location}"
    line = getattr(origin, "line", "")
    return f"{note}:\n    {line}" if line else note


def _add_note(error: BaseException, note: str) -> None:
    """PEP 678's ``add_note`` (Python 3.11+); on 3.10 the note is kept in ``__notes__``
    all the same, which tools reading notes understand, though 3.10 does not print it."""
    add_note = getattr(error, "add_note", None)
    if add_note is not None:
        add_note(note)
    else:
        notes = getattr(error, "__notes__", None)
        error.__notes__ = [*(notes or []), note]  # type: ignore[attr-defined]


def explain_failure(error: BaseException, node: Any) -> None:
    """Prepare ``error``, about to leave a run, for the user: a note naming where ``node``
    (the plan node whose operator was running, or None) was defined, and a trimmed
    traceback with a hint on how to get the full one."""
    if not isinstance(error, Exception) or _has_our_note(error):
        return
    note = definition_note(node) if node is not None else None
    if note is not None:
        _add_note(error, note)
    if trim_traceback(error):
        _add_note(
            error,
            f"{_NOTE_PREFIX}deltaflow's own frames are left out of this traceback; "
            f"{FULL_TRACEBACK_VARIABLE}=1 shows them",
        )


class UserFacingErrors:
    """A ``with`` block (around a public entry point such as ``pw.run``) whose escaping
    exception loses deltaflow's frames, including those of the entry point itself."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if error is not None:
            trim_traceback(error)
        return False  # the exception goes on, with its trimmed traceback
