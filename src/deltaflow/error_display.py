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
import functools
import linecache
import os
import sys
import types
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Literal, TypeVar

#: The environment variable that keeps deltaflow's frames in tracebacks.
FULL_TRACEBACK_VARIABLE = "DELTAFLOW_FULL_TRACEBACK"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# Python's standard library (threading, asyncio, contextlib ... between deltaflow's frames),
# without the third-party packages that may be installed below it.
_STDLIB_DIR = os.path.dirname(os.path.abspath(contextlib.__file__)) + os.sep
#: Marks the notes this module adds, so that an exception crossing two run boundaries (a
#: run inside a run, ``pw.run`` around the engine's own boundary) is annotated once.
_NOTE_PREFIX = "deltaflow: "
#: The attribute that holds, on an exception leaving deltaflow, where in the user's program it
#: arose, in the layout Pathway programs and tools read under this name: a header line, then
#: ``Line: <source>`` and ``File: <path>:<lineno>``, each indented by four spaces. The layout
#: is a format (like a log format), the same one the ``trace`` column of the error logs uses;
#: the note printed with the traceback says it in deltaflow's own words.
TRACE_ATTRIBUTE = "_pathway_trace_note"
_TRACE_HEADER = "Occurred here:"

_Callable = TypeVar("_Callable", bound=Callable[..., Any])


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


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by the caller point at the innermost
    frame outside deltaflow (the user's line, however many of our frames, the
    :func:`user_call` wrappers included, lie between)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def trace_text(filename: str, lineno: int, line: str) -> str:
    """The source location ``filename:lineno`` (whose text is ``line``) in the layout of
    :data:`TRACE_ATTRIBUTE`."""
    return f"{_TRACE_HEADER}\n    Line: {line}\n    File: {filename}:{lineno}"


def _set_trace(error: BaseException, filename: str, lineno: int, line: str) -> None:
    """Record on ``error`` where the user's program raised it (the first record wins)."""
    if getattr(error, TRACE_ATTRIBUTE, None) is not None:
        return
    with contextlib.suppress(AttributeError, TypeError):  # an exception without a __dict__
        setattr(error, TRACE_ATTRIBUTE, trace_text(filename, lineno, line))


def _user_frame(frame: FrameType | None) -> FrameType | None:
    """``frame`` when it runs the user's code, else the user's frame that reached it through
    Python's standard library (``functools``, ``contextlib`` ...); None when deltaflow itself
    made the call."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if not is_internal_file(filename):
            return frame
        if os.path.abspath(filename).startswith(_PACKAGE_DIR):
            return None
        frame = frame.f_back
    return None


def note_user_call(error: BaseException, caller: FrameType | None) -> None:
    """Mark ``error``, leaving a public API call that the frame ``caller`` made, with that
    call's line: the :data:`TRACE_ATTRIBUTE` and a note printed with the traceback. Nothing
    happens when deltaflow made the call (an outer call of the user's will mark it) or when
    the error is marked already (an inner call, e.g. a ``select`` in an ``iterate`` body,
    names the more precise line)."""
    if not isinstance(error, Exception) or getattr(error, TRACE_ATTRIBUTE, None) is not None:
        return
    frame = _user_frame(caller)
    if frame is None:
        return
    filename, lineno = frame.f_code.co_filename, frame.f_lineno
    line = linecache.getline(filename, lineno).strip()
    _set_trace(error, filename, lineno, line)
    if not _has_our_note(error):
        note = f"{_NOTE_PREFIX}raised by the call at {filename}:{lineno}"
        _add_note(error, f"{note}:\n    {line}" if line else note)


def user_call(function: _Callable) -> _Callable:
    """Decorate a public API function so that an exception it raises, including a
    ``TypeError`` about its arguments, names the user's line that called it (see
    :func:`note_user_call`). The wrapper keeps the function's name, docstring and signature."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as error:
            note_user_call(error, sys._getframe(1))
            raise

    call.__deltaflow_user_call__ = True  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]


#: The special methods that user code calls through syntax (``table.col``, ``table[...]``,
#: ``a + b``, ``pw.this()``): wrapped like the public methods by :func:`user_calls`.
_SYNTAX_METHODS = frozenset({"__getattr__", "__getitem__", "__add__", "__iadd__", "__call__"})

_Class = TypeVar("_Class", bound=type)


def user_calls(cls: _Class) -> _Class:
    """Decorate a class of the public API: its public methods (including class and static
    methods) and the special methods of :data:`_SYNTAX_METHODS` defined in it become
    :func:`user_call` functions."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") and name not in _SYNTAX_METHODS:
            continue
        if isinstance(member, (classmethod, staticmethod)):
            inner = member.__func__
            if not getattr(inner, "__deltaflow_user_call__", False):
                setattr(cls, name, type(member)(user_call(inner)))
        elif (
            callable(member)
            and not isinstance(member, type)
            and not getattr(member, "__deltaflow_user_call__", False)
        ):
            setattr(cls, name, user_call(member))
    return cls


def named_as_own_methods(cls: type) -> None:
    """The methods ``cls`` takes from its mixins name themselves as its own (``Table.flatten()``
    in a TypeError about their arguments), as the user called them: the mixins are how the
    code is split, not something a user should read about."""
    for base in cls.__mro__[1:-1]:
        for name, member in vars(base).items():
            if name.startswith("__"):
                continue
            function = member.__func__ if isinstance(member, classmethod | staticmethod) else member
            while isinstance(function, types.FunctionType):
                function.__qualname__ = f"{cls.__name__}.{name}"
                function = getattr(function, "__wrapped__", None)


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
        origin = getattr(node, "origin", None)
        filename, _, lineno = getattr(origin, "location", "").rpartition(":")
        if lineno.isdigit():
            _set_trace(error, filename, int(lineno), getattr(origin, "line", ""))
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
