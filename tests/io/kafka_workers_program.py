"""A Kafka word count that ``test_kafka_workers.py`` runs with ``deltaflow spawn -n N``.

``python kafka_workers_program.py SPEC.json``, SPEC holding ``settings`` (librdkafka), ``mode``
(``static`` or ``streaming``), ``source`` (a topic of JSON messages ``{"word": ...}``),
``target`` (the counts' topic), ``rows`` (the topic the words are copied to) and ``expected``
(the final count of each word). Counts and rows are written with ``pw.io.kafka.write``; the
counts also go to a ``subscribe`` callback (on worker 0), which stops a streaming run once
they are the expected ones.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import deltaflow as pw
from deltaflow.engine.runtime import stop_all_runs


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
)
counts = words.groupby(words.word).reduce(words.word, count=pw.reducers.count())
pw.io.kafka.write(counts, settings, spec["target"], format="json")
pw.io.kafka.write(words.select(word=words.word), settings, spec["rows"], format="json")

state: dict[str, int] = {}


def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
    if is_addition:
        state[row["word"]] = row["count"]
    elif state.get(row["word"]) == row["count"]:
        del state[row["word"]]


def on_time_end(time: int) -> None:
    if spec["mode"] == "streaming" and state == spec["expected"]:
        stop_all_runs()


pw.io.subscribe(counts, on_change, on_time_end=on_time_end)
pw.run(monitoring_level=pw.MonitoringLevel.NONE)
