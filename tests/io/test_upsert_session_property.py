"""Upsert sessions against a dict model: random upserts and deletions by key, in blocks of one
kind or of mixed kinds, over several commits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_session import rows, run_session

import deltaflow as pw
from deltaflow.engine.batch import has_distinct_ids, is_marked_consolidated
from deltaflow.io._core.base import Commit


class Row(pw.Schema):
    k: int = pw.column_definition(primary_key=True)
    v: str | None


# Small keys keep the session's id table dense; now and then a negative or a huge key moves
# it to its hashed form in the middle of a session.
_key = st.one_of(st.integers(0, 6), st.integers(0, 6), st.sampled_from([-3, 2**40, -(2**63)]))
_op = st.tuples(
    st.sampled_from(["upsert", "upsert", "delete"]),
    _key,
    st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
)
_block = st.lists(_op, min_size=1, max_size=8)
_commit = st.lists(_block, min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(_commit, min_size=1, max_size=4), st.booleans())
def test_pushed_changes_follow_a_dict_model(commits: list, one_kind: bool) -> None:
    script: list = []
    model: dict[int, str | None] = {}
    for commit in commits:
        for block in commit:
            if one_kind:  # a block of the first op's kind
                block = [(block[0][0], k, v) for _, k, v in block]
            kinds = [kind for kind, _, _ in block]
            script.append(
                rows(*[(k, v) for _, k, v in block], kinds=kinds[0] if one_kind else kinds)
            )
            for kind, k, v in block:
                if kind == "upsert":
                    model[k] = v
                else:
                    model.pop(k, None)
        script.append(Commit())
    pushed = run_session(Row, script, autocommit_duration_ms=None, keep_row_state=True)
    net: dict[tuple, int] = {}
    for batch, *_ in pushed:
        changes = list(zip(batch["_id"], batch["k"], batch["v"], batch["_diff"], strict=True))
        if is_marked_consolidated(batch) or has_distinct_ids(batch):
            # What the engine then takes as it is must be consolidated indeed.
            pairs = [(i, k, v) for i, k, v, _ in changes]
            assert len(set(pairs)) == len(pairs)
            assert all(diff != 0 for *_, diff in changes)
            if has_distinct_ids(batch):
                assert batch["_id"].n_unique() == batch.height
        for i, k, v, diff in changes:
            net[(i, k, v)] = net.get((i, k, v), 0) + diff
        # After every commit: at most one current row per key, each counted once.
        current = {row: n for row, n in net.items() if n}
        assert set(current.values()) <= {1}
        assert len({k for _, k, _ in current}) == len(current)
    assert sorted((k, v) for _, k, v in current_rows(net)) == sorted(model.items())


def current_rows(net: dict[tuple, int]) -> list[tuple]:
    return [row for row, n in net.items() if n]
