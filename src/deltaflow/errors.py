"""deltaflow's exceptions: one tree under :class:`DeltaflowError`.

::

    DeltaflowError
    ├── DefinitionError          the program is wrong; raised while the pipeline is defined
    │   ├── NoArgumentsError         (also AssertionError, TypeError)
    │   ├── ArgumentError            (also TypeError, ValueError)      deltaflow.argument_errors
    │   ├── ExpressionError          (also TypeError)                  deltaflow.expressions.base
    │   ├── ColumnNotFoundError      (also KeyError, AttributeError)   deltaflow.expressions.base
    │   ├── MissingIteratedTable     (also AttributeError, KeyError)   deltaflow.iterate
    │   ├── UnsupportedSqlError      (also NotImplementedError)        deltaflow.sql
    │   └── CorrelatedSubqueryError  (also SyntaxError)                deltaflow.sql
    ├── EngineError              (also RuntimeError) a run failed while computing
    │   ├── UdfError                 (also the raised type)            deltaflow.expressions.base
    │   └── InconsistentDataError    (also KeyError)
    ├── ConnectorError           (also RuntimeError) a connector failed; names it
    │   └── ConnectorOSError         (also OSError), and each connector's own errors
    ├── PersistenceError         a checkpoint cannot be used, read or written
    │   ├── CheckpointError          (also RuntimeError)               deltaflow.persistence
    │   └── StorageError             (also OSError)                    deltaflow.persistence
    └── ForkedAfterPolarsError   (also RuntimeError)                   deltaflow._fork

Each class is also the builtin exception Pathway raises in that situation, so code written for
Pathway (``except ValueError``) keeps working, and ``except DeltaflowError`` catches every
exception of deltaflow's own classes (many argument checks raise Python's ``TypeError`` or
``ValueError`` directly: those are not in the tree). The classes defined in other modules
are importable from there as before and, except those of ``pw.iterate`` and ``pw.sql``,
from here (see ``docs/errors.md``).

This module imports nothing from deltaflow when it is imported, so every module may use it.
It also gives access to the names of :mod:`deltaflow.error_values` and
:mod:`deltaflow.error_cells` (the errors-as-values machinery: ``ERROR``, ``global_error_log``,
``error_mask`` ...), which lived here before, so that existing ``from deltaflow.errors import
...`` keeps working.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the names re-exported lazily below, for type checkers
    from deltaflow._fork import ForkedAfterPolarsError  # noqa: F401
    from deltaflow.argument_errors import (  # noqa: F401
        ArgumentError,
        ColumnArgumentError,
        ContextError,
    )
    from deltaflow.error_cells import (  # noqa: F401
        CarriedErrors,
        clean_frame,
        drop_error_rows,
        error_columns,
        error_mask,
        frame_has_errors,
        restore_column_types,
        row_has_error_mask,
        squash_repeated_ids,
        unify_object_columns,
        with_errors,
        without_errors,
        without_unhandled_errors,
    )
    from deltaflow.error_values import (  # noqa: F401
        ERROR,
        ERROR_LOG_COLUMNS,
        ErrorContext,
        ErrorLogSource,
        ErrorValue,
        LocalErrorLog,
        NodeOrigin,
        active,
        capture_origin,
        errors_seen,
        exception_message,
        global_error_log,
        keeps_errors,
        local_error_log,
        mark_seen,
        on_failure,
        report,
        report_connector,
        resolve_terminate,
        run_context,
    )
    from deltaflow.expressions.base import (  # noqa: F401
        ColumnNotFoundError,
        ExpressionAttributeError,
        ExpressionError,
        UdfError,
    )
    from deltaflow.persistence.checkpoints import CheckpointError  # noqa: F401
    from deltaflow.persistence.storage import StorageError  # noqa: F401


class DeltaflowError(Exception):
    """The root of every exception deltaflow defines."""

    def __str__(self) -> str:
        # The message as given, also where a mixed-in base (KeyError) would quote it.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


# --- the program is wrong ---------------------------------------------------------------------


class DefinitionError(DeltaflowError):
    """A mistake in the program, reported when the pipeline is defined (before ``pw.run``).
    The concrete classes are also the ``TypeError``/``ValueError``/``KeyError`` ... Pathway
    raises for the same mistake. Many argument checks raise Python's builtin exceptions
    directly; those are not under this class."""


class NoArgumentsError(DefinitionError, AssertionError, TypeError):
    """``pw.apply(f)`` without any argument. Pathway raises an ``AssertionError`` there, so
    this is one (and a ``TypeError``, the natural type of a wrong call)."""


# --- the run failed -------------------------------------------------------------------------


class EngineError(DeltaflowError, RuntimeError):
    """The run failed while computing an operation; the message says what happened."""


class InconsistentDataError(EngineError, KeyError):
    """The data broke an invariant the engine relies on (a row id inserted again before its
    deletion, a row deleted more often than inserted). It stops the run even with
    ``terminate_on_error=False``, as in Pathway: no cell value could stand for it."""


# --- connectors -----------------------------------------------------------------------------


class ConnectorError(DeltaflowError, RuntimeError):
    """A connector failed. ``ConnectorError(connector, message)`` names the connector in the
    message (``connector 'csv:in': ...``) and keeps it as :attr:`connector`;
    ``ConnectorError(message)`` takes a message that names it already. The original error,
    if any, is ``__cause__``."""

    connector: str = ""

    def __init__(self, connector: str, message: str | None = None) -> None:
        if message is None:
            super().__init__(connector)
            return
        super().__init__(f"connector {connector!r}: {message}")
        self.connector = connector


class ConnectorOSError(ConnectorError, OSError):
    """A connector failed on an operating-system error (a missing directory, a refused
    connection ...): still an ``OSError``, as the failure is in Pathway."""


_E = TypeVar("_E", bound=BaseException)
_MIXED: dict[tuple[type[BaseException], type[BaseException]], Any] = {}


def _builtin_type(kind: type[BaseException]) -> type[Exception] | None:
    """The most specific of Python's builtin exception types that ``kind`` derives from
    (``ValueError`` for a library's ``ValueError`` subclass), if more specific than
    ``Exception``; None for ``KeyboardInterrupt`` and the like."""
    if not issubclass(kind, Exception):
        return None
    for ancestor in kind.__mro__:
        if ancestor is Exception:
            return None
        if ancestor.__module__ == "builtins" and issubclass(ancestor, Exception):
            return ancestor
    return None


def mixed_class(base: type[_E], kind: type[BaseException]) -> type[_E] | None:
    """A subclass of both ``base`` (one of deltaflow's errors) and the builtin exception type
    behind ``kind`` (the type of the error it reports), named ``Base[Builtin]``, so that
    ``except ValueError`` still catches the report of a ``ValueError``; None when there is
    no such type or the two cannot be combined. Only builtin types are mixed in: a library's
    exception class may need constructor arguments and attributes that a deltaflow error does
    not have. ``KeyboardInterrupt`` and the like, which a run treats as a request to stop, are
    never mixed in."""
    builtin = _builtin_type(kind)
    if builtin is None:
        return None
    if issubclass(base, builtin):
        return base
    key = (base, builtin)
    if key not in _MIXED:
        try:
            # pyright orders the declared bases (BaseException, Exception) and finds no MRO;
            # the real ones are a deltaflow error and a builtin it does not derive from.
            _MIXED[key] = type(  # pyright: ignore[reportGeneralTypeIssues]
                f"{base.__name__}[{builtin.__name__}]",
                (base, builtin),
                {"__module__": base.__module__},
            )
        except TypeError:  # incompatible layouts (e.g. UnicodeDecodeError's)
            _MIXED[key] = None
    return _MIXED[key]


def connector_error(
    connector: str, error: BaseException, message: str | None = None
) -> ConnectorError:
    """``error``, raised by the connector named ``connector`` (or by a user callback it
    called), as a :class:`ConnectorError` naming it; an error that is one already is
    returned as it is. The result is also an instance of the builtin exception type of the
    original (``except ValueError`` catches a ``ValueError`` a connector raised, as in
    Pathway; an ``OSError`` stays one, with its ``errno``), and the original error is its
    ``__cause__``.
    ``message`` defaults to ``ErrorType: text``. A connector's own error class (a
    :class:`ConnectorError` whose message names the connector) is returned as it is, and
    learns the connector's name (:attr:`ConnectorError.connector`) if it lacks it."""
    if isinstance(error, ConnectorError):
        if not error.connector:
            error.connector = connector
        return error
    base: type[ConnectorError] = ConnectorOSError if isinstance(error, OSError) else ConnectorError
    if message is None:
        message = f"{type(error).__name__}: {error}"
    wrapped: ConnectorError | None = None
    kind = mixed_class(base, type(error))
    if kind is not None:
        try:
            wrapped = kind(connector, message)
        except Exception:  # noqa: BLE001 - a mixed-in type with an unusual constructor
            wrapped = None
    if wrapped is None:
        wrapped = base(connector, message)
    if isinstance(error, OSError) and isinstance(wrapped, OSError):
        for name in ("errno", "strerror", "filename", "filename2"):
            setattr(wrapped, name, getattr(error, name))
    wrapped.__cause__ = error
    return wrapped


# --- persistence ----------------------------------------------------------------------------


class PersistenceError(DeltaflowError):
    """Persistence cannot go on: a checkpoint this pipeline cannot use, or a store that
    cannot be read or written (the message says which and what to do)."""


# --- members of the tree defined next to the code raising them, and the errors-as-values
# --- machinery formerly defined here: given on first use ----------------------------------

#: Classes of the tree defined in other modules (``pw.iterate``'s and ``pw.sql``'s are not
#: listed: importing those modules would shadow the functions of the same name in ``pw``).
_ELSEWHERE = {
    "ArgumentError": "deltaflow.argument_errors",
    "ColumnArgumentError": "deltaflow.argument_errors",
    "ContextError": "deltaflow.argument_errors",
    "ExpressionError": "deltaflow.expressions.base",
    "ExpressionAttributeError": "deltaflow.expressions.base",
    "ColumnNotFoundError": "deltaflow.expressions.base",
    "UdfError": "deltaflow.expressions.base",
    "CheckpointError": "deltaflow.persistence.checkpoints",
    "StorageError": "deltaflow.persistence.storage",
    "ForkedAfterPolarsError": "deltaflow._fork",
}
#: The errors-as-values modules, searched in this order for any other name.
_VALUES_MODULES = ("deltaflow.error_values", "deltaflow.error_cells")


def __getattr__(name: str) -> Any:
    """The classes of :data:`_ELSEWHERE` and the names of :data:`_VALUES_MODULES`,
    imported on first use (importing them here eagerly would make this module depend on the
    engine and the expressions), then kept as attributes."""
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    modules = (_ELSEWHERE[name],) if name in _ELSEWHERE else _VALUES_MODULES
    for module_name in modules:
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            value = getattr(module, name)
            break
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "ArgumentError",
    "CheckpointError",
    "ColumnArgumentError",
    "ColumnNotFoundError",
    "ConnectorError",
    "ConnectorOSError",
    "ContextError",
    "DefinitionError",
    "DeltaflowError",
    "EngineError",
    "ExpressionAttributeError",
    "ExpressionError",
    "ForkedAfterPolarsError",
    "InconsistentDataError",
    "NoArgumentsError",
    "PersistenceError",
    "StorageError",
    "UdfError",
    "connector_error",
    "mixed_class",
]
