"""The array growth helpers the slot stores use."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from deltaflow._arrays import enlarged, grown


@pytest.mark.parametrize("grow", [grown, enlarged])
@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.bool_, np.float64, object])
def test_growing_keeps_the_entries_and_fills_the_rest(
    grow: Callable[..., np.ndarray], dtype: type
) -> None:
    values = np.arange(5).astype(dtype)
    kept = values.copy()
    fill = True if dtype is np.bool_ else 7
    bigger = grow(values, 9, fill)
    assert bigger.shape == (9,) and bigger.dtype == np.dtype(dtype)
    assert bigger[:5].tolist() == kept.tolist()
    assert bigger[5:].tolist() == [np.dtype(dtype).type(fill)] * 4
    assert grow(bigger, 12)[:9].tolist() == bigger[:9].tolist()  # no fill: the old part only


def test_enlarged_reuses_an_owned_array_and_copies_a_view() -> None:
    owned = np.arange(4, dtype=np.int64)
    assert enlarged(owned, 8, 0) is owned  # reallocated in place
    base = np.arange(8, dtype=np.int64)
    view = base[:4]
    bigger = enlarged(view, 6, -1)
    # A view is never resized (its base's memory is not its own): copied, base untouched.
    assert bigger is not view and bigger.tolist() == [0, 1, 2, 3, -1, -1]
    assert base.tolist() == list(range(8))
