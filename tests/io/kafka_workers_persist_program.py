"""A persisted Kafka word count that ``test_kafka_workers_persisted.py`` runs with
``deltaflow spawn -n N``, kills and restarts.

``python kafka_workers_persist_program.py SPEC.json``, SPEC holding ``settings`` (librdkafka),
``mode`` (``streaming`` or ``static``), ``source`` (a topic of JSON messages ``{"word": ...}``),
``counts`` and ``rows`` (the topics the counts and the words are written to), ``state`` (the
persistence directory), ``marks`` (a directory: at the end of each time whose counts are one of
``stages``, worker 0 writes ``<stage>.json`` there, with that time) and ``crash_at`` (a stage:
there worker 0 gives the producers half a second, then kills itself with SIGKILL, before any
checkpoint can cover that time), ``interval_ms`` (how often to checkpoint).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time as _time
from pathlib import Path
from typing import Any

import deltaflow as pw


class Word(pw.Schema):
    word: str


spec = json.loads(Path(sys.argv[1]).read_text())
settings = spec["settings"]
words = pw.io.kafka.read(
    settings,
    spec["source"],
    schema=Word,
    format="json",
    mode=spec["mode"],
    autocommit_duration_ms=50,
    name="words",
)
counts = words.groupby(words.word).reduce(words.word, count=pw.reducers.count())
pw.io.kafka.write(counts, settings, spec["counts"], format="json", name="counts")
# The words copied, keyed by the word: what tells two copies apart is their number.
copies = words.select(word=words.word)
pw.io.kafka.write(copies, settings, spec["rows"], format="json", key=copies.word, name="rows")

state: dict[str, int] = {}


def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
    if is_addition:
        state[row["word"]] = row["count"]
    elif state.get(row["word"]) == row["count"]:
        del state[row["word"]]


def on_time_end(time: int) -> None:
    for stage, expected in spec["stages"].items():
        if state == expected:
            Path(spec["marks"], f"{stage}.json").write_text(json.dumps({"time": time}))
            if stage == spec.get("crash_at"):
                _time.sleep(0.5)  # the producers deliver this time's messages meanwhile
                os.kill(os.getpid(), signal.SIGKILL)


pw.io.subscribe(counts, on_change, on_time_end=on_time_end, name="watch")
pw.run(
    monitoring_level=pw.MonitoringLevel.NONE,
    persistence_config=pw.persistence.Config(
        pw.persistence.Backend.filesystem(spec["state"]),
        snapshot_interval_ms=spec["interval_ms"],
    ),
)
