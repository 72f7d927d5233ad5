"""``pw.demo``: small live streams for trying pipelines without an external source.

Each function returns a table fed by a :class:`deltaflow.io.python.ConnectorSubject` on its
own thread: rows are produced at ``input_rate`` rows per second (or, for
:func:`replay_csv_with_time`, at the pace of a time column) and committed in minibatches. A
stream with a finite number of rows finishes, and so does the run once every input has;
``generate_custom_stream(..., nb_rows=None)`` goes on until the run is stopped.
"""

from __future__ import annotations

import csv
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from deltaflow import io
from deltaflow.schema import Schema, column_definition

__all__ = [
    "generate_custom_stream",
    "noisy_linear_stream",
    "range_stream",
    "replay_csv",
    "replay_csv_with_time",
]

#: Seconds per unit of a :func:`replay_csv_with_time` time column.
_UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


class _PacedSubject(io.python.ConnectorSubject):
    """Sends the rows of ``rows`` (dicts), each once ``wait(row)`` seconds have passed (a
    function called just before sending it), and stops early when the run ends."""

    def __init__(
        self,
        datasource_name: str,
        rows: Callable[[], Iterator[dict[str, Any]]],
        wait: Callable[[dict[str, Any]], float],
    ) -> None:
        super().__init__(datasource_name)
        self._rows = rows
        self._wait = wait
        self._halt = threading.Event()

    def run(self) -> None:
        for row in self._rows():
            seconds = self._wait(row)
            if self._halt.wait(seconds) if seconds > 0 else self._halt.is_set():
                return
            self.next_json(row)

    def on_stop(self) -> None:
        self._halt.set()


def _every(seconds: float) -> Callable[[dict[str, Any]], float]:
    """Waits of ``seconds`` between rows (none before the first)."""
    started: list[bool] = []

    def wait(_: dict[str, Any]) -> float:
        if not started:
            started.append(True)
            return 0.0
        return seconds

    return wait


def _check_rate(input_rate: float, function: str) -> None:
    if (
        isinstance(input_rate, bool)
        or not isinstance(input_rate, int | float)
        or not input_rate > 0
    ):
        raise ValueError(
            f"demo.{function}: input_rate must be a number of rows per second "
            f"greater than zero, got {input_rate!r}"
        )


def _check_count(nb_rows: int | None, function: str, *, allow_none: bool) -> None:
    if nb_rows is None and allow_none:
        return
    if isinstance(nb_rows, bool) or not isinstance(nb_rows, int):
        raise TypeError(f"demo.{function}: nb_rows must be an int, got {nb_rows!r}")
    if nb_rows < 0:
        raise ValueError(f"demo.{function}: nb_rows must not be negative, got {nb_rows}")


def generate_custom_stream(
    value_generators: dict[str, Any],
    *,
    schema: type[Schema],
    nb_rows: int | None = None,
    autocommit_duration_ms: int = 1000,
    input_rate: float = 1.0,
    name: str | None = None,
) -> Any:
    """A stream whose row number ``i`` (from 0) holds ``value_generators[col](i)`` in each
    column ``col``; ``nb_rows`` rows (``None``: without end), ``input_rate`` per second."""
    _check_count(nb_rows, "generate_custom_stream", allow_none=True)
    _check_rate(input_rate, "generate_custom_stream")
    if not isinstance(value_generators, Mapping):
        raise TypeError(
            "demo.generate_custom_stream: value_generators must map column names "
            "to functions of the row number"
        )
    for column, generator in value_generators.items():
        if not callable(generator):
            raise TypeError(
                f"demo.generate_custom_stream: the generator of {column!r} is not callable"
            )
    generators = dict(value_generators)

    def rows() -> Iterator[dict[str, Any]]:
        index = 0
        while nb_rows is None or index < nb_rows:
            yield {column: generator(index) for column, generator in generators.items()}
            index += 1

    subject = _PacedSubject("demo.custom-stream", rows, _every(1.0 / input_rate))
    return io.python.read(
        subject,
        schema=schema,
        format="json",
        autocommit_duration_ms=autocommit_duration_ms,
        name=name,
    )


def noisy_linear_stream(nb_rows: int = 10, input_rate: float = 1.0) -> Any:
    """``nb_rows`` points near the line y = x: ``x`` = 0.0, 1.0, ... (the primary key) and
    ``y`` = x plus noise drawn uniformly from [-0.1, 0.1) (the same in every run)."""
    _check_count(nb_rows, "noisy_linear_stream", allow_none=False)
    noise = random.Random(0)

    class Points(Schema):
        x: float = column_definition(primary_key=True)
        y: float

    return generate_custom_stream(
        {"x": float, "y": lambda i: float(i + (2 * noise.random() - 1) / 10)},
        schema=Points,
        nb_rows=nb_rows,
        input_rate=input_rate,
        autocommit_duration_ms=1000,
    )


def range_stream(
    nb_rows: int = 30, offset: int = 0, input_rate: float = 1.0, autocommit_duration_ms: int = 1000
) -> Any:
    """``nb_rows`` rows with one float column ``value``: offset, offset + 1, ..."""
    _check_count(nb_rows, "range_stream", allow_none=False)

    class Values(Schema):
        value: float

    return generate_custom_stream(
        {"value": lambda i: float(i + offset)},
        schema=Values,
        nb_rows=nb_rows,
        input_rate=input_rate,
        autocommit_duration_ms=autocommit_duration_ms,
    )


def _csv_rows(
    path: str | os.PathLike[str], columns: list[str]
) -> Callable[[], Iterator[dict[str, Any]]]:
    def rows() -> Iterator[dict[str, Any]]:
        with open(path, newline="") as handle:
            for record in csv.DictReader(handle):
                missing = [c for c in columns if c not in record]
                if missing:
                    raise KeyError(
                        f"demo: the CSV file {os.fspath(path)!r} has no column {missing[0]!r}"
                    )
                yield {column: record[column] for column in columns}

    return rows


def _as_text_then_typed(
    subject: io.python.ConnectorSubject, schema: type[Schema], autocommit_ms: int
) -> Any:
    """Read the CSV strings as they are, then convert each column to the schema's type."""
    names = schema.column_names()
    text = schema.with_types(**dict.fromkeys(names, str))
    table = io.python.read(
        subject, schema=text, format="json", autocommit_duration_ms=autocommit_ms
    )
    return table.cast_to_types(**schema.typehints())


def replay_csv(
    path: str | os.PathLike[str], *, schema: type[Schema], input_rate: float = 1.0
) -> Any:
    """The rows of a CSV file (the ``schema``'s columns) replayed at ``input_rate`` rows per
    second."""
    _check_rate(input_rate, "replay_csv")
    rows = _csv_rows(path, schema.column_names())
    subject = _PacedSubject("demo.replay-csv", rows, _every(1.0 / input_rate))
    return _as_text_then_typed(subject, schema, int(1000.0 / input_rate))


def replay_csv_with_time(
    path: str,
    *,
    schema: type[Schema],
    time_column: str,
    unit: str = "s",
    autocommit_ms: int = 100,
    speedup: float = 1,
) -> Any:
    """The rows of a CSV file replayed at the pace of ``time_column`` (an int or float
    column in ``unit``: ``s``, ``ms``, ``us`` or ``ns``), ``speedup`` times faster: a row comes
    when as much wall time has passed since the first row as its time says."""
    if schema.typehints().get(time_column) not in (int, float):
        raise ValueError(
            f"demo.replay_csv_with_time: Invalid schema. Time columns must be int "
            f"or float, and {time_column!r} is "
            f"{schema.typehints().get(time_column, 'not a column')!r}"
        )
    if unit not in _UNIT_SECONDS:
        raise ValueError(
            f"demo.replay_csv_with_time: unit must be 's', 'ms', 'us' or 'ns', got {unit!r}"
        )
    if isinstance(speedup, bool) or not isinstance(speedup, int | float) or not speedup > 0:
        raise ValueError(
            f"demo.replay_csv_with_time: speedup must be greater than zero, got {speedup!r}"
        )
    seconds_per_unit = _UNIT_SECONDS[unit] / speedup
    rows = _csv_rows(path, schema.column_names())
    clock: dict[str, float] = {}

    def wait(row: dict[str, Any]) -> float:
        # Measured from the first row's time and the wall clock when it was sent, so that
        # delays in sending do not add up.
        moment = float(row[time_column])
        if "first" not in clock:
            clock["first"], clock["start"] = moment, time.monotonic()
            return 0.0
        due = clock["start"] + (moment - clock["first"]) * seconds_per_unit
        return due - time.monotonic()

    subject = _PacedSubject("demo.replay-csv-with-time", rows, wait)
    return _as_text_then_typed(subject, schema, autocommit_ms)
