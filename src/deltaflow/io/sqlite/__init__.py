"""``pw.io.sqlite``: read a table of an SQLite database as a live table, write a table to one.

SQLite is a file, not a server, so two processes (two pipelines, or a pipeline and any other
program) can share data through it. The package holds the connector's parts:

* the **type mapping** (:data:`TYPE_MAPPING`) between deltaflow types and SQLite storage, with
  the encoders and decoders that implement it; it follows Pathway 0.33's storage classes and
  text encodings so that databases written by either system read correctly in the other;
* the **writer** (:class:`SqliteWriter`, :class:`SqliteFormatter`): ``stream_of_changes`` appends
  every change with ``time``/``diff``; ``snapshot`` upserts and deletes on a primary key, one
  transaction per minibatch;
* the **reader** (:class:`SqliteReader`): reads the whole table, then polls it and emits the
  difference between consecutive snapshots (insertions, updates as delete+insert, deletions);
  it runs on the shared input session (``io/_core/input_session.py``).

Connections use WAL journaling (set by the writer) and a busy timeout, so one writer and any
number of readers in other processes work side by side without "database is locked" errors.
"""

from deltaflow.io._core.base import Data  # noqa: F401 - what SqliteReader.read returns
from deltaflow.io.sqlite._database import quote  # noqa: F401
from deltaflow.io.sqlite._output import write
from deltaflow.io.sqlite._reader import SqliteReader, _inspect_source, read  # noqa: F401
from deltaflow.io.sqlite._settings import BUSY_TIMEOUT_S, COMMIT_ATTEMPTS  # noqa: F401
from deltaflow.io.sqlite._type_table import (  # noqa: F401
    TYPE_MAPPING,
    SqliteType,
    decode_column,
    encode_column,
    mapping_key,
)
from deltaflow.io.sqlite._writer import SqliteFormatter, SqliteWriter  # noqa: F401

__all__ = ["TYPE_MAPPING", "SqliteFormatter", "SqliteReader", "SqliteWriter", "read", "write"]
