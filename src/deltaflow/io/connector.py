"""Write your own connector: the public connector SDK (see ``docs/custom_connectors.md``).

Three levels, from the least to the most code:

* **One method.** Subclass :class:`PollingSource` and implement ``poll(offset)`` returning
  the new rows (and, with :class:`Polled`, the offset after them); :func:`read_polling` makes
  it a table. Subclass :class:`BatchWriter` and implement ``write_batch(time, changes)``;
  :func:`write_batches` sends a table's changes to it, one call per time.
* **Common arguments.** :func:`check_read_options` and :func:`check_write_options` check the
  arguments every connector shares (``schema``, ``mode``, ``autocommit_duration_ms``,
  ``max_backlog_size``, ``name``, ``sort_by``; unknown keywords are a ``TypeError``) when the
  pipeline is defined; :func:`input_table` and :func:`output_table` take their result.
* **The full contract.** A :class:`Reader` returns :class:`ReadEvent` s (``Data`` with a
  reader context and an offset, ``NewSource``/``FinishedSource`` around a block committed
  together, ``Commit``, ``Finished``) and can ``seek`` to a checkpointed offset frontier; a
  :class:`Parser` turns contexts into rows; a :class:`Formatter` turns each time's batch of
  changes into a payload for a :class:`Writer`, whose ``flush(time)`` makes that time durable.
  The shared parsers and formatters (CSV, JSON lines, typed rows ...) are here too.

Whichever level is used, the framework supplies the reading and writing threads, minibatches,
backpressure, row ids, bad-record reporting, statistics, failures reported as
:class:`ConnectorError` naming the connector, and persistence through the offsets.
"""

from __future__ import annotations

from deltaflow.errors import ConnectorError
from deltaflow.io._core.arguments import (
    ReadOptions,
    WriteOptions,
    check_read_options,
    check_write_options,
    input_table,
    output_table,
)
from deltaflow.io._core.base import (
    FLUSHED,
    BytesFormatter,
    Commit,
    Data,
    DictsContext,
    Finished,
    FinishedSource,
    Formatter,
    KeyValueContext,
    NewSource,
    OffsetAntichain,
    OffsetKey,
    OffsetValue,
    ParsedBlock,
    ParseError,
    Parser,
    RawContext,
    Reader,
    ReaderContext,
    ReadEvent,
    RowsContext,
    Writer,
)
from deltaflow.io._core.batch_writer import BatchWriter, Change, write_batches
from deltaflow.io._core.formats import (
    BinaryParser,
    ColumnSpec,
    CsvFormatter,
    CsvParser,
    CsvParserSettings,
    JsonLinesFormatter,
    JsonLinesParser,
    PlaintextParser,
    TypedRowsFormatter,
    TypedRowsParser,
    column_specs,
    parser_for_format,
)
from deltaflow.io._core.offsets import merge_frontiers
from deltaflow.io._core.polling import Polled, PollingSource, PollResult, read_polling

__all__ = [
    "FLUSHED",
    "BatchWriter",
    "BinaryParser",
    "BytesFormatter",
    "Change",
    "ColumnSpec",
    "Commit",
    "ConnectorError",
    "CsvFormatter",
    "CsvParser",
    "CsvParserSettings",
    "Data",
    "DictsContext",
    "Finished",
    "FinishedSource",
    "Formatter",
    "JsonLinesFormatter",
    "JsonLinesParser",
    "KeyValueContext",
    "NewSource",
    "OffsetAntichain",
    "OffsetKey",
    "OffsetValue",
    "ParseError",
    "ParsedBlock",
    "Parser",
    "PlaintextParser",
    "PollResult",
    "Polled",
    "PollingSource",
    "RawContext",
    "ReadEvent",
    "ReadOptions",
    "Reader",
    "ReaderContext",
    "RowsContext",
    "TypedRowsFormatter",
    "TypedRowsParser",
    "WriteOptions",
    "Writer",
    "check_read_options",
    "check_write_options",
    "column_specs",
    "input_table",
    "merge_frontiers",
    "output_table",
    "parser_for_format",
    "read_polling",
    "write_batches",
]
