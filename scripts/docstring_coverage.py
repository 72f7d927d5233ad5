#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Count the public callables whose docstring has a Parameters and an Examples section.

Usage (from the project's root)::

    .venv/bin/python scripts/docstring_coverage.py            # counts per area
    .venv/bin/python scripts/docstring_coverage.py --missing  # also the names lacking one

The areas are the most used parts of the API: the methods of ``pw.Table``, ``pw.reducers``,
the read/write functions of ``pw.io``, ``pw.temporal``, ``pw.udfs``, ``pw.debug`` and the top
level (``pw.udf``, ``pw.sql``, ``pw.iterate``, ``pw.apply`` ...). A callable counts as documented when
its docstring has an ``Examples:`` section holding a ``>>>`` example (tests/test_doctests.py
runs every such example) and, if it takes arguments, a ``Parameters:`` (or ``Args:``) section.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

EXAMPLES = re.compile(r"^\s*Examples?:\s*$", re.MULTILINE)
PARAMETERS = re.compile(r"^\s*(Parameters|Args|Arguments):\s*$", re.MULTILINE)

# Top-level functions of ``pw`` counted (its other names are classes, values or modules).
TOP_LEVEL = [
    "apply",
    "apply_async",
    "apply_with_type",
    "assert_table_has_schema",
    "cast",
    "coalesce",
    "column_definition",
    "declare_type",
    "fill_error",
    "if_else",
    "iterate",
    "make_tuple",
    "require",
    "run",
    "run_all",
    "schema_builder",
    "schema_from_dict",
    "schema_from_types",
    "sql",
    "udf",
    "unwrap",
]
# The functions of the ``pw.debug`` reference page.
DEBUG = [
    "compute_and_print",
    "compute_and_print_update_stream",
    "table_from_arrow",
    "table_from_markdown",
    "table_from_pandas",
    "table_from_parquet",
    "table_from_polars",
    "table_from_rows",
    "table_to_arrow",
    "table_to_dicts",
    "table_to_pandas",
    "table_to_parquet",
    "table_to_polars",
]
# ``pw.io`` connectors (the SDK module ``connector`` is for connector authors, not counted).
CONNECTORS = [
    "csv",
    "deltalake",
    "dynamodb",
    "fs",
    "http",
    "jsonlines",
    "kafka",
    "minio",
    "null",
    "plaintext",
    "postgres",
    "python",
    "redpanda",
    "s3",
    "sqlite",
]


def _public_functions(module: Any, names: list[str] | None = None) -> Iterator[tuple[str, Any]]:
    for name in names if names is not None else getattr(module, "__all__", dir(module)):
        if name.startswith("_"):
            continue
        value = getattr(module, name, None)
        if inspect.isfunction(value):
            yield name, value


def areas() -> dict[str, list[tuple[str, Callable[..., Any]]]]:
    """Per area, the (qualified name, callable) pairs counted."""
    import deltaflow as pw

    found: dict[str, list[tuple[str, Callable[..., Any]]]] = {}
    found["pw.Table"] = [
        (f"Table.{name}", value)
        for name in dir(pw.Table)
        if not name.startswith("_") and inspect.isfunction(value := getattr(pw.Table, name))
    ]
    found["pw.reducers"] = [
        (f"reducers.{n}", f)
        for n, f in _public_functions(importlib.import_module("deltaflow.reducers"))
    ]
    found["pw.temporal"] = [
        (f"temporal.{n}", f)
        for n, f in _public_functions(importlib.import_module("deltaflow.temporal"))
    ]
    found["pw.udfs"] = [
        (f"udfs.{n}", f) for n, f in _public_functions(importlib.import_module("deltaflow.udfs"))
    ]
    found["pw.debug"] = [(f"debug.{n}", f) for n, f in _public_functions(pw.debug, DEBUG)]
    found["pw (top level)"] = [(n, f) for n, f in _public_functions(pw, TOP_LEVEL)]
    io: list[tuple[str, Callable[..., Any]]] = [
        ("io.subscribe", pw.io.subscribe),
        ("io.subscribe_frames", pw.io.subscribe_frames),
        ("io.register_input_synchronization_group", pw.io.register_input_synchronization_group),
    ]
    for connector in CONNECTORS:
        try:
            module = getattr(pw.io, connector)
        except ImportError:  # an optional extra not installed: its functions are not counted
            continue
        io += [
            (f"io.{connector}.{name}", value)
            for name, value in _public_functions(module)
            if name in ("read", "write") or name.endswith(("_read", "_write", "_connector"))
        ]
    found["pw.io"] = io
    return found


def takes_arguments(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return True
    return any(name not in ("self", "cls") for name in parameters)


def documented(function: Callable[..., Any]) -> tuple[bool, bool]:
    """(has a runnable Examples section, has the Parameters section it needs)."""
    doc = inspect.getdoc(function) or ""
    examples = bool(EXAMPLES.search(doc)) and ">>> " in doc
    parameters = not takes_arguments(function) or bool(PARAMETERS.search(doc))
    return examples, parameters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missing", action="store_true", help="list the names lacking one")
    args = parser.parse_args(argv)
    # The total counts each function once (``Table.windowby`` is ``pw.temporal.windowby``).
    unique: dict[int, tuple[bool, bool]] = {}
    for area, functions in areas().items():
        marks = [(name, *documented(function)) for name, function in functions]
        for (_, examples, parameters), (_, function) in zip(marks, functions, strict=True):
            unique[id(function)] = (examples, parameters)
        n_examples = sum(1 for _, e, _ in marks if e)
        n_complete = sum(1 for _, e, p in marks if e and p)
        print(
            f"{area:16} {len(marks):4} callables, {n_examples:4} with Examples, "
            f"{n_complete:4} with Examples and Parameters"
        )
        if args.missing:
            for name, examples, parameters in marks:
                if not (examples and parameters):
                    lacking = [
                        x
                        for x, ok in (("Examples", examples), ("Parameters", parameters))
                        if not ok
                    ]
                    print(f"    {name}: no {' / '.join(lacking)}")
    with_examples = sum(1 for e, _ in unique.values() if e)
    complete = sum(1 for e, p in unique.values() if e and p)
    print(
        f"{'total (unique)':16} {len(unique):4} callables, {with_examples:4} with Examples, "
        f"{complete:4} with Examples and Parameters"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
