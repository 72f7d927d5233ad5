"""``import deltaflow`` stays light: heavy optional libraries load on first use only.

pandas alone takes about half a second to import; a program that never touches a date-time
value (or pandas) should not pay for it. Each check runs in a fresh interpreter, since the
test process itself has long imported everything.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest


def _modules_after(code: str) -> set[str]:
    """Top-level module names loaded once ``code`` has run in a fresh interpreter."""
    program = (
        f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.parametrize("heavy", ["pandas", "pyarrow"])
def test_import_deltaflow_does_not_load_heavy_libraries(heavy: str) -> None:
    assert heavy not in _modules_after("import deltaflow")


def test_a_pipeline_without_dates_does_not_load_pandas(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("k,v\na,1\nb,2\na,3\n")
    loaded = _modules_after(
        "import deltaflow as pw\n"
        "class S(pw.Schema):\n    k: str\n    v: int\n"
        f"t = pw.io.csv.read({str(source)!r}, schema=S, mode='static')\n"
        "g = t.groupby(t.k).reduce(t.k, s=pw.reducers.sum(t.v), c=pw.reducers.count())\n"
        "j = g.join(t, g.k == t.k).select(g.k, t.v, g.s)\n"
        "j = j.filter(j.v > 1).with_columns(up=pw.this.k.str.upper())\n"
        f"pw.io.jsonlines.write(j, {str(tmp_path / 'out.jsonl')!r})\n"
        "pw.io.subscribe_frames(g, lambda frame: None)\n"
        "pw.run(monitoring_level=pw.MonitoringLevel.NONE)"
    )
    # (pw.debug.table_to_arrow would load it: pyarrow's pa.array() imports pandas itself.)
    assert "pandas" not in loaded


def test_date_time_annotations_load_pandas_on_first_use() -> None:
    loaded = _modules_after(
        "import deltaflow as pw, pandas as pd\n"
        "assert issubclass(pw.DateTimeNaive, pd.Timestamp)\n"
        "assert issubclass(pw.DateTimeUtc, pd.Timestamp)\n"
        "assert issubclass(pw.Duration, pd.Timedelta)\n"
        "class S(pw.Schema):\n    at: pw.DateTimeUtc\n    took: pw.Duration\n"
        "assert S.typehints() == {'at': pw.DateTimeUtc, 'took': pw.Duration}"
    )
    assert "pandas" in loaded


def test_pandas_annotations_resolve_when_pandas_was_imported_first() -> None:
    # pd.Timestamp as an annotation, before any pw.DateTime* name was touched.
    _modules_after(
        "import pandas as pd\nimport deltaflow as pw\n"
        "class S(pw.Schema):\n    at: pd.Timestamp\n    took: pd.Timedelta\n"
        "assert S.typehints() == {'at': pw.DateTimeNaive, 'took': pw.Duration}, S.typehints()"
    )


def test_date_time_values_are_pandas_objects() -> None:
    _modules_after(
        "import datetime, deltaflow as pw, pandas as pd\n"
        "t = pw.debug.table_from_rows(pw.schema_from_types(at=pw.DateTimeNaive),"
        " [(datetime.datetime(2024, 1, 2, 3, 4, 5),)])\n"
        "(value,) = pw.debug.table_to_dicts(t)[1]['at'].values()\n"
        "assert value == pd.Timestamp('2024-01-02 03:04:05'), value\n"
        "assert type(value) is pd.Timestamp, type(value)"
    )
