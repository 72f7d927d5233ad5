"""Files: ``pw.io.fs.read`` / ``pw.io.fs.write`` (the CSV, JSON lines and plaintext connectors
are thin layers over these).

Reading: a file, a directory (recursively, files matching ``object_pattern``) or a glob, by
:class:`~deltaflow.io._file_reader.FileReader` (one source block per file; in streaming mode
it polls for new, modified and deleted files).

Writing: rows are appended to one file (created, or truncated, at the start of the run),
flushed once per time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, BinaryIO, Literal

from deltaflow.error_display import user_call
from deltaflow.io._core.arguments import (
    check_read_options,
    check_write_options,
    input_table,
    output_table,
)
from deltaflow.io._core.base import Formatter, Writer
from deltaflow.io._core.formats import (
    CsvFormatter,
    CsvParserSettings,
    JsonLinesFormatter,
    column_specs,
    parser_for_format,
)
from deltaflow.io._core.read_table import format_schema, with_metadata_column
from deltaflow.io._file_reader import FileReader as FileReader
from deltaflow.io._file_reader import missing_path as missing_path
from deltaflow.schema import Schema

logger = logging.getLogger("deltaflow.io.fs")

READ_FORMATS = ("csv", "json", "plaintext", "plaintext_by_file", "binary", "only_metadata")
#: Formats whose files may be read in pieces of whole lines (one row per line or record).
LINE_FORMATS = ("csv", "json", "plaintext")
#: The size of those pieces: a big file is never held in memory whole, and the engine works
#: on its first rows while the rest is read.
CHUNK_BYTES = 4 << 20
WRITE_FORMATS = ("csv", "json")


class FileWriter(Writer):
    """Appends payloads to one file; the file is (re)created when the run writes first."""

    def __init__(self, path: str, header: bytes | None = None) -> None:
        self.path = path
        self.header = header
        self._file: Any = None
        self._resume_at: int | None = None  # keep this many bytes of an earlier run's file

    def _open(self) -> Any:
        if self._file is None and self._resume_at is not None:
            self._file = self._reopen(self._resume_at)
        if self._file is None:
            try:
                self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close/abort
            except FileNotFoundError as exc:
                directory = os.path.dirname(os.path.abspath(self.path))
                raise OSError(
                    f"cannot create the output file {self.path}: the directory "
                    f"{directory} does not exist (create it first; the writer does "
                    f"not create directories)"
                ) from exc
            if self.header:
                self._file.write(self.header)
        return self._file

    def write(self, payload: bytes) -> None:
        self._open().write(payload)

    def stream(self) -> BinaryIO:
        return self._open()

    def flush(self, time: int) -> None:
        self._open().flush()

    def position(self) -> int:
        """The file's length after the last flush (what a checkpoint keeps of it). Flushed
        here too: the checkpoint a fresh run writes before its first output records the
        header, which must then be in the file (a run killed after that checkpoint would
        otherwise leave a file shorter than recorded, and its restart one without header)."""
        handle = self._open()
        handle.flush()
        return int(handle.tell())

    def resume(self, position: Any) -> None:
        """Continue the file of the run that wrote the checkpoint: what it wrote after
        ``position`` bytes is cut off when the file is opened (those changes are written again
        by this run). Without a position (it had written nothing) the file starts over."""
        self._resume_at = position if isinstance(position, int) and position > 0 else None

    def _reopen(self, keep: int) -> Any:
        self._resume_at = None
        try:
            handle = open(self.path, "r+b")  # noqa: SIM115 - closed in close/abort
        except FileNotFoundError:
            logger.warning(
                "output file %s: it was written by the run that made the "
                "checkpoint but is gone; writing it again from this run's changes",
                self.path,
            )
            return None
        size = handle.seek(0, os.SEEK_END)
        if size < keep:
            logger.warning(
                "output file %s: it is shorter (%d bytes) than when the checkpoint "
                "was made (%d bytes); continuing after what is there",
                self.path,
                size,
                keep,
            )
            return handle
        handle.truncate(keep)
        handle.seek(keep)
        return handle

    def close(self) -> None:
        self._open().close()
        self._file = None

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _check_path(path: Any, connector: str, *, streaming: bool) -> str:
    """The path as text. A streaming read of a path that does not exist waits for it to
    appear, as Pathway's does, with a warning, since a typo would otherwise leave the input
    silently empty. A static read checks when the run starts (:func:`missing_path`): the
    program may create its input between defining the pipeline and running it."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{connector}: path must be a string or a path, got {path!r}")
    path = os.fspath(path)
    missing = missing_path(path)
    if missing is not None and streaming:
        logger.warning(
            "%s: %s yet; the streaming read picks its files up when they appear", connector, missing
        )
    return path


def read_files(
    path: Any,
    fmt: str,
    *,
    schema: Any,
    mode: str,
    csv_settings: Any,
    json_field_paths: Any,
    object_pattern: str,
    with_metadata: bool,
    name: str | None,
    autocommit_duration_ms: Any,
    max_backlog_size: Any,
    connector: str,
    kwargs: dict[str, Any],
) -> Any:
    """Shared body of the file ``read`` functions (fs, csv, jsonlines, plaintext)."""
    label = f"pw.io.{connector}.read"
    if fmt not in READ_FORMATS:
        raise ValueError(
            f"{label}: unknown format {fmt!r}; expected one of {', '.join(READ_FORMATS)}"
        )
    # The schema is checked per format below (some formats have fixed columns).
    options = check_read_options(
        label,
        default_name=f"{connector}:{path}",
        mode=mode,
        autocommit_duration_ms=autocommit_duration_ms,
        max_backlog_size=max_backlog_size,
        name=name,
        schema_required=False,
        **kwargs,
    )
    path = _check_path(path, label, streaming=options.streaming)
    if csv_settings is not None and not isinstance(csv_settings, CsvParserSettings):
        raise TypeError(f"{label}: csv_settings must be a pw.io.CsvParserSettings")
    if json_field_paths is not None and not isinstance(json_field_paths, dict):
        raise TypeError(f"{label}: json_field_paths must be a dict of column -> JSON pointer")
    table_schema = format_schema(fmt, schema, label)
    if json_field_paths:
        unknown = set(json_field_paths) - set(table_schema.columns())
        if unknown:
            raise ValueError(
                f"{label}: json_field_paths names columns that are not in the "
                f"schema: {', '.join(sorted(unknown))}"
            )
    parser = parser_for_format(
        fmt,
        column_specs(table_schema),
        csv_settings=csv_settings,
        json_field_paths=json_field_paths,
    )
    if with_metadata or fmt == "only_metadata":
        table_schema = with_metadata_column(table_schema)

    def make_reader() -> FileReader:
        return FileReader(
            path,
            object_pattern=object_pattern,
            streaming=options.streaming,
            read_contents=fmt != "only_metadata",
            chunk_bytes=CHUNK_BYTES if fmt in LINE_FORMATS else None,
        )

    # Files are split between workers by path (each worker reads its share).
    return input_table(replace(options, schema=table_schema), make_reader, parser, splits=True)


@user_call
def read(
    path: str | os.PathLike,
    format: Literal[
        "csv",
        "json",
        "plaintext",  # noqa: A002
        "plaintext_by_file",
        "binary",
        "only_metadata",
    ],
    *,
    schema: type[Schema] | None = None,
    mode: Literal["streaming", "static"] = "streaming",
    csv_settings: CsvParserSettings | None = None,
    json_field_paths: dict[str, str] | None = None,
    object_pattern: str = "*",
    with_metadata: bool = False,
    name: str | None = None,
    autocommit_duration_ms: int | None = 1500,
    max_backlog_size: int | None = None,
    debug_data: Any = None,
    _stacklevel: int = 1,
    **kwargs: Any,
) -> Any:
    """A table read from a file, a directory or a glob, in the given format.

    ``csv``/``json`` need a ``schema``; ``plaintext`` gives one ``data: str`` row per line,
    ``plaintext_by_file`` one per file, ``binary`` one ``data: bytes`` row per file and
    ``only_metadata`` one ``_metadata`` row per file. ``with_metadata=True`` adds the
    ``_metadata`` Json column (path, size, owner, created/modified/seen times).
    ``debug_data`` is accepted for compatibility and ignored.

    Parameters:
        path: a file, a directory (every file in it) or a glob.
        format: ``csv``, ``json``, ``plaintext``, ``plaintext_by_file``, ``binary`` or
            ``only_metadata``.
        schema: the columns and their types (a header line names the columns).
        mode: ``streaming`` (default: new and changed files keep coming) or ``static`` (read once,
            then the input ends).
        csv_settings: ``pw.io.CsvParserSettings`` for the ``csv`` format.
        json_field_paths: column names mapped to JSON pointers, for the ``json`` format.
        object_pattern: a glob the names of the files in a directory must match.
        with_metadata: add a ``_metadata`` Json column (path, size, modification time ...).
        autocommit_duration_ms: how long rows may wait before they are committed to the pipeline.
        name: the connector's name in logs, monitoring and persistence.
        max_backlog_size: pause reading while this many rows wait in the pipeline.
        debug_data: accepted for compatibility, ignored.

    Examples:
        >>> import deltaflow as pw, pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.txt").write_text("one\\ntwo")
        >>> _ = (folder / "b.txt").write_text("three")
        >>> t = pw.io.fs.read(folder, format="plaintext_by_file", mode="static")
        >>> pw.debug.compute_and_print(t.select(length=pw.this.data.str.len()), include_id=False)
        length
        5
        7
    """
    return read_files(
        path,
        format,
        schema=schema,
        mode=mode,
        csv_settings=csv_settings,
        json_field_paths=json_field_paths,
        object_pattern=object_pattern,
        with_metadata=with_metadata,
        name=name,
        autocommit_duration_ms=autocommit_duration_ms,
        max_backlog_size=max_backlog_size,
        connector="fs",
        kwargs=kwargs,
    )


def write_file(
    table: Any,
    filename: Any,
    fmt: str,
    *,
    name: str | None,
    sort_by: Iterable[Any] | None,
    connector: str,
) -> None:
    """Shared body of the file ``write`` functions."""
    label = f"pw.io.{connector}.write"
    if fmt not in WRITE_FORMATS:
        raise ValueError(f"{label}: unknown format {fmt!r}; expected 'csv' or 'json'")
    if not isinstance(filename, str | os.PathLike):
        raise TypeError(f"{label}: filename must be a string or a path, got {filename!r}")
    path = os.fspath(filename)
    options = check_write_options(
        label, table, default_name=f"{connector}:{path}", name=name, sort_by=sort_by
    )
    # A missing directory is an OSError of the run (when the file is created), as in Pathway.
    columns = options.columns
    formatter: Formatter
    if fmt == "csv":
        formatter = CsvFormatter(columns)
        writer = FileWriter(path, header=formatter.header())
    else:
        formatter = JsonLinesFormatter(columns)
        writer = FileWriter(path)
    output_table(options, writer, formatter)


@user_call
def write(
    table: Any,
    filename: str | os.PathLike,
    format: Literal["json", "csv"],  # noqa: A002
    *,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
) -> None:
    """Write every change of ``table`` to ``filename`` as CSV or JSON lines, with ``time`` and
    ``diff`` columns; the file is flushed once per time.

    Parameters:
        table: the table written.
        filename: the file (created, or replaced when the run starts).
        format: ``csv`` or ``json`` (one JSON object per line).
        name: the connector's name in logs and monitoring.
        sort_by: columns ordering the rows of one time.

    Examples:
        >>> import deltaflow as pw, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
        >>> t = pw.debug.table_from_markdown('''
        ... item | qty | __time__ | __diff__
        ... pen  | 2   | 2        | 1
        ... ''')
        >>> pw.io.fs.write(t, path, format="csv")
        >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        >>> print(path.read_text(), end="")
        "item","qty","time","diff"
        "pen","2","2","1"
    """
    write_file(table, filename, format, name=name, sort_by=sort_by, connector="fs")
