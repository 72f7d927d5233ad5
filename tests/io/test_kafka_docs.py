"""The example at the top of docs/kafka.md runs on a real broker and counts as it says.

The page's settings are for a real Kafka on localhost:9092; here they point at the test's
Tansu broker, with the group timings Tansu needs (see kafka_broker.py)."""

from __future__ import annotations

import json
import pathlib
import re

from _io_helpers import BackgroundRun
from kafka_broker import (  # noqa: F401 - *_fixture: the kafka_broker fixture
    FAST_GROUP_SETTINGS,
    TansuBroker,
    kafka_broker_fixture,
)

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "kafka.md"


def _example() -> str:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]


def test_docs_example_counts_words(kafka_broker: TansuBroker) -> None:
    kafka_broker.create_topic("words")
    kafka_broker.create_topic("counts")
    code = _example()
    assert "pw.run()" in code and '"localhost:9092"' in code
    extra = "".join(f'    "{k}": "{v}",\n' for k, v in FAST_GROUP_SETTINGS.items())
    code = code.replace('"localhost:9092"', f'"{kafka_broker.address}"')
    code = code.replace(
        '    "auto.offset.reset": "earliest",\n', '    "auto.offset.reset": "earliest",\n' + extra
    )
    code = code.replace("pw.run()", "")
    kafka_broker.produce("words", [json.dumps({"word": w}).encode() for w in "abacab"])
    exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - the page's own example
    with BackgroundRun():
        found: dict[str, int] = {}
        for _ in range(100):
            for message in kafka_broker.consume("counts", 50, timeout=0.5):
                row = json.loads(message.value())
                if row["diff"] == 1:
                    found[row["word"]] = max(found.get(row["word"], 0), row["count"])
            if found == {"a": 3, "b": 2, "c": 1}:
                break
    assert found == {"a": 3, "b": 2, "c": 1}
