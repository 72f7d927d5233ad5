"""Reading files: :class:`FileReader`, the reader behind ``pw.io.fs.read`` (and the CSV,
JSON lines and plaintext connectors).

It reads a file, a directory (recursively, files matching ``object_pattern``) or a glob,
one source block per file. In static mode every file is read once; in streaming mode the
reader keeps polling: a new file adds its rows, a modified file retracts its old rows and
adds the new ones in one transaction, and a deleted file retracts its rows. A file that
vanishes or shrinks while being read counts as deleted or modified, never as an error. A
big file of a line format is read in pieces of whole lines (``chunk_bytes``).
"""

from __future__ import annotations

import collections
import fnmatch
import functools
import glob
import logging
import os
import time as _time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from deltaflow.io._core.base import (
    Data,
    Finished,
    FinishedSource,
    NewSource,
    OffsetAntichain,
    RawContext,
    Reader,
    ReadEvent,
)

if TYPE_CHECKING:
    from deltaflow.engine.workers.inputs import WorkerShare

logger = logging.getLogger("deltaflow.io.fs")

_Signature = tuple[int, int, int]  # (mtime_ns, size, inode)


@functools.lru_cache(maxsize=256)
def _owner(uid: int) -> str:
    """The user name of ``uid`` (looked up once per run of many files: ~10 us a lookup)."""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


class _Pieces:
    """A file being read in pieces of whole lines (``FileReader(chunk_bytes=...)``)."""

    def __init__(
        self,
        handle: BinaryIO,
        first: bytes,
        chunk_bytes: int,
        metadata: dict[str, Any],
        offset: tuple[str, int],
    ) -> None:
        self.handle = handle
        self.pending = first
        self.chunk_bytes = chunk_bytes
        self.metadata = metadata
        self.offset = offset
        self.started = False

    def next_event(self) -> tuple[Data, bool]:
        """The next piece as a ``Data`` event, and whether more follow."""
        data, following = self.pending, b""
        try:
            if not data.endswith(b"\n"):
                data += self.handle.readline()  # up to the end of the line cut short
            following = self.handle.read(self.chunk_bytes)
        except OSError as exc:  # the rows read so far stay; the rest counts as gone
            logger.warning("file %s could not be read to the end (%s)", self.offset[0], exc)
        more = bool(following)
        self.pending = following
        context = RawContext([data], self.metadata, continues=self.started, continued=more)
        self.started = True
        if not more:
            self.handle.close()
        return Data(context, offset=None if more else self.offset), more


class FileReader(Reader):
    """Emits one source block per file; in streaming mode, polls for changes.

    With ``chunk_bytes``, a file bigger than that is read in pieces of whole lines (formats
    with a row per line only), one ``Data`` event each, within the file's block.
    """

    def __init__(
        self,
        path: str,
        *,
        object_pattern: str = "*",
        streaming: bool = False,
        read_contents: bool = True,
        poll_interval_s: float = 0.1,
        chunk_bytes: int | None = None,
    ) -> None:
        self.path = path
        self.chunk_bytes = chunk_bytes
        self.object_pattern = object_pattern
        self.streaming = streaming
        self.read_contents = read_contents
        self.poll_interval_s = poll_interval_s
        self.retracts_sources = streaming
        self._known: dict[str, _Signature] = {}
        self._events: collections.deque[ReadEvent | _Pieces] = collections.deque()
        self._next_scan = 0.0
        self._scanned_once = False
        # Static mode: bytes of the files found and bytes handed to the parser (progress).
        self._bytes_total = 0
        self._bytes_read = 0
        self._owns: Callable[[str], bool] | None = None  # this worker's share of the files

    def keep_share(self, share: WorkerShare) -> None:
        """Read only the files of this worker's share, judged by their path as listed
        (relative paths stay relative, so every worker of a run judges a file by the same
        text)."""
        self._owns = share.owns_path

    def seek(self, frontier: OffsetAntichain) -> None:
        """Resume after ``frontier`` (file path -> modification time in ns when it was read).

        A file still having that modification time is not read again. A file modified since
        is read again as a replacement (its previously read rows are retracted), and a file
        that vanished is retracted — in static mode as in streaming mode — so the reader now
        declares ``retracts_sources``.
        """
        for path, mtime_ns in frontier.items():
            path = str(path)
            try:
                stat = os.stat(path)
            except OSError:
                stat = None
            if stat is not None and stat.st_mtime_ns == mtime_ns:
                self._known[path] = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            else:
                # A signature no file can have: the next scan sees a change (or a deletion).
                self._known[path] = (-1, -1, -1)
        if frontier:
            self.retracts_sources = True

    def read(self) -> ReadEvent | None:
        if self._events:
            return self._take()
        if not self.streaming:
            if self._scanned_once:
                return Finished()
            missing = missing_path(self.path)
            if missing is not None:  # nothing could ever be read: most likely a typo
                raise FileNotFoundError(f"{missing} (mode='static' reads what is there)")
            self._scan()
            self._scanned_once = True
            return self._take() if self._events else Finished()
        now = _time.monotonic()
        if now < self._next_scan:
            return None
        self._next_scan = now + self.poll_interval_s
        self._scan()
        return self._take() if self._events else None

    def _take(self) -> ReadEvent:
        """The next queued event; a big file's pieces are handed out one at a time."""
        event = self._events.popleft()
        if isinstance(event, _Pieces):
            data, more = event.next_event()
            if more:
                self._events.appendleft(event)
            event = data
        if isinstance(event, Data) and isinstance(event.context, RawContext):
            self._bytes_read += sum(len(record) for record in event.context.records)
        return event

    def progress(self) -> tuple[int, int] | None:
        """Bytes read of the files' total, in static mode (a streaming read has no end)."""
        if self.streaming or not self.read_contents or not self._scanned_once:
            return None
        # A file growing while read may give more than its size when listed.
        return min(self._bytes_read, self._bytes_total), self._bytes_total

    # --- scanning --------------------------------------------------------------------------
    def _list(self) -> list[str]:
        found = self._list_all()
        owns = self._owns
        return found if owns is None else [path for path in found if owns(path)]

    def _list_all(self) -> list[str]:
        if glob.has_magic(self.path):
            # A directory the pattern matches is read whole, as a directory path is (as in
            # Pathway: ``input/f*`` reads ``input/f1.txt`` and everything under ``input/foo``).
            files: set[str] = set()
            for match in glob.glob(self.path, recursive=True):
                if os.path.isdir(match):
                    files.update(self._walk(match))
                elif os.path.isfile(match) and fnmatch.fnmatch(
                    os.path.basename(match), self.object_pattern
                ):
                    files.add(match)
            return sorted(files)
        if os.path.isfile(self.path):
            return [self.path]
        return self._walk(self.path)

    def _walk(self, directory: str) -> list[str]:
        """The files under ``directory`` whose names match ``object_pattern``, in order."""
        files = []
        for folder, subdirs, names in os.walk(directory):
            subdirs.sort()
            for name in sorted(names):
                if fnmatch.fnmatch(name, self.object_pattern):
                    files.append(os.path.join(folder, name))
        return files

    def _scan(self) -> None:
        seen: dict[str, _Signature] = {}
        for path in self._list():
            try:
                stat = os.stat(path)
            except OSError:  # vanished between listing and stat
                continue
            signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            seen[path] = signature
            if self._known.get(path) != signature:
                self._read_file(path, stat, replaces=path in self._known)
        for path in [p for p in self._known if p not in seen]:
            self._retract(path)

    def _read_file(self, path: str, stat: os.stat_result, *, replaces: bool) -> None:
        pieces: BinaryIO | None = None
        try:
            if self.read_contents:
                handle = open(path, "rb")  # noqa: SIM115 - closed here or by _Pieces
                try:
                    content = handle.read(self.chunk_bytes or -1)
                    if self.chunk_bytes and len(content) == self.chunk_bytes:
                        pieces = handle
                finally:
                    if pieces is None:
                        handle.close()
            else:
                content = b""
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            logger.warning("file %s could not be read (%s); treating it as absent", path, exc)
            if path in self._known:
                self._retract(path)
            return
        metadata = {
            "created_at": int(stat.st_ctime),
            "modified_at": int(stat.st_mtime),
            "owner": _owner(stat.st_uid),
            "path": path,
            "size": len(content) if self.read_contents and pieces is None else stat.st_size,
            "seen_at": int(_time.time()),
        }
        self._known[path] = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if self.read_contents:
            self._bytes_total += stat.st_size
        self._events.append(NewSource(metadata, key=path, replaces=replaces))
        offset = (path, stat.st_mtime_ns)
        if pieces is not None:
            self._events.append(_Pieces(pieces, content, self.chunk_bytes or 0, metadata, offset))
        else:
            self._events.append(Data(RawContext([content], metadata), offset=offset))
        self._events.append(FinishedSource())

    def close(self) -> None:
        for event in self._events:
            if isinstance(event, _Pieces):
                event.handle.close()

    def _retract(self, path: str) -> None:
        self._known.pop(path, None)
        self._events.append(NewSource({"path": path}, key=path, replaces=True))
        self._events.append(FinishedSource())


def missing_path(path: str) -> str | None:
    """What is missing for ``path`` to be read (the path, or a pattern's directory), or None."""
    if glob.has_magic(path):
        base = path.split("*")[0].split("?")[0].split("[")[0]
        base = os.path.dirname(base) or "."
        if not os.path.isdir(base):
            return f"the directory {base!r} of the pattern {path!r} does not exist"
        return None
    if not os.path.exists(path):
        return f"the path {path!r} does not exist"
    return None
