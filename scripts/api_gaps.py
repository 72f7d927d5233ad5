#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""List where deltaflow's public API differs from the installed Pathway's.

Usage (from the project's root)::

    .venv/bin/python scripts/api_gaps.py                 # the gap list
    .venv/bin/python scripts/api_gaps.py --extra          # also names only deltaflow has
    .venv/bin/python scripts/api_gaps.py --pathway-python /path/to/python

It runs itself twice in ``dump`` mode, once under Pathway's interpreter (default: the pwsuite
venv, ``/tmp/pwsuite-pathway-venv/bin/python``) and once under this interpreter with
``deltaflow``, each dump being a JSON description of the public names and call signatures of
the areas below. It then prints, per area, the names deltaflow lacks and the signatures that
differ (parameters missing or extra, a different default, a different kind, or a ``**kwargs``
that swallows keywords Pathway would reject). Only facts are compared (names, parameter names,
literal defaults); nothing of Pathway's code is read or copied.

Connectors (``pw.io``) and the LLM tooling (``pw.xpacks``) are out of scope.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import inspect
import json
import subprocess
import sys
import types
from typing import Any

PATHWAY_PYTHON = "/tmp/pwsuite-pathway-venv/bin/python"

# Modules whose public names are compared ("" is the package itself).
MODULES = [
    "",
    "reducers",
    "debug",
    "udfs",
    "demo",
    "stdlib",
    "stdlib.ordered",
    "stdlib.stateful",
    "stdlib.statistical",
    "stdlib.temporal",
    "stdlib.utils",
    "stdlib.utils.col",
    "stdlib.utils.bucketing",
    "stdlib.utils.filtering",
    "stdlib.utils.pandas_transformer",
    "stdlib.utils.async_transformer",
    "stdlib.graphs",
    "stdlib.indexing",
    "stdlib.ml",
    "stdlib.viz",
]
# Classes (attribute paths from the package) whose public methods are compared as well.
CLASSES = ["Table", "GroupedTable", "JoinResult", "GroupedJoinResult", "Schema"]
# Classes users get from methods and never construct: their constructors are not compared.
INTERNAL_CONSTRUCTORS = {
    "Table",
    "ColumnReference",
    "ColumnExpression",
    "GroupedTable",
    "TableSlice",
    "TableLike",
    "Joinable",
    "LiveTable",
    "Window",
}
# Literal defaults are compared by value; any other default only by its presence.
_LITERALS = (type(None), bool, int, float, str)


def _resolve(package: types.ModuleType, dotted: str) -> Any:
    obj: Any = package
    for part in filter(None, dotted.split(".")):
        obj = getattr(obj, part)
    return obj


def _kind(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if isinstance(obj, enum.EnumMeta):
        return "enum"
    if isinstance(obj, type):
        return "class"
    if callable(obj):
        return "function"
    return "value"


def _signature(obj: Any) -> list[dict[str, Any]] | None:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = []
    for param in signature.parameters.values():
        entry: dict[str, Any] = {"name": param.name, "kind": param.kind.name}
        if param.default is not inspect.Parameter.empty:
            default = param.default
            entry["default"] = (
                {"literal": default}
                if isinstance(default, _LITERALS)
                else {"repr": type(default).__name__}
            )
        params.append(entry)
    return params


def _public_names(module: types.ModuleType) -> list[str]:
    """``__all__`` when the module has one; else the callables and classes defined in it."""
    declared = getattr(module, "__all__", None)
    if declared is not None:
        # Some names are listed without being there (lazy or withdrawn): not public then.
        return sorted(
            name for name in declared if not name.startswith("_") and hasattr(module, name)
        )
    names = []
    for name in dir(module):
        if name.startswith("_"):
            continue
        obj = getattr(module, name, None)
        if isinstance(obj, types.ModuleType):
            if obj.__name__.startswith(module.__name__ + "."):
                names.append(name)
        elif getattr(obj, "__module__", None) == module.__name__:
            names.append(name)
    return sorted(names)


def _class_members(cls: type) -> dict[str, Any]:
    members: dict[str, Any] = {}
    # Schema methods live on the metaclass; both are part of what a user can call.
    for owner in (type(cls), cls) if type(cls) is not type else (cls,):
        for name in dir(owner):
            if name.startswith("_") or name in ("mro",):
                continue
            try:
                members[name] = inspect.getattr_static(owner, name)
            except AttributeError:
                continue
    out: dict[str, Any] = {}
    for name, raw in members.items():
        if isinstance(raw, property):
            out[name] = {"kind": "property"}
            continue
        if isinstance(raw, staticmethod):
            out[name] = {"kind": "function", "signature": _signature(raw.__func__)}
            continue
        obj = raw.__func__ if isinstance(raw, classmethod) else raw
        if not isinstance(obj, types.FunctionType) and hasattr(obj, "__get__"):
            obj = getattr(cls, name, obj)  # a descriptor resolving to a function
        signature = _signature(obj)
        if signature and signature[0]["kind"] in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD"):
            signature = signature[1:]  # the receiver (self, cls, or the table), named freely
        out[name] = {"kind": _kind(obj), "signature": signature}
    return out


def dump(package_name: str, probe: dict[str, list[str]]) -> dict[str, Any]:
    """The public names and signatures of ``package_name``'s areas, as plain JSON data.

    ``probe`` adds, per module, names to look up even when ``dir()`` does not list them
    (attributes a module provides lazily through ``__getattr__``).
    """
    import warnings

    warnings.filterwarnings("ignore")
    package = importlib.import_module(package_name)
    result: dict[str, Any] = {"modules": {}, "classes": {}}
    for dotted in MODULES:
        try:
            module = _resolve(package, dotted)
        except (AttributeError, ImportError):
            continue
        if not isinstance(module, types.ModuleType):
            continue
        entries = {}
        missing = object()
        for name in sorted({*dir(module), *probe.get(dotted, ())}):
            if name.startswith("_"):
                continue
            obj = getattr(module, name, missing)
            if obj is missing:
                continue
            kind = _kind(obj)
            entries[name] = {
                "kind": kind,
                "signature": _signature(obj) if callable(obj) and kind != "enum" else None,
            }
        result["modules"][dotted] = {"public": _public_names(module), "all": entries}
    for dotted in CLASSES:
        try:
            cls = _resolve(package, dotted)
        except (AttributeError, ImportError):
            continue
        result["classes"][dotted] = _class_members(cls)
    return result


def _describe_default(param: dict[str, Any]) -> str:
    default = param.get("default")
    if default is None:
        return "<required>"
    return repr(default["literal"]) if "literal" in default else f"<{default['repr']}>"


def compare_signatures(ours: list[dict] | None, theirs: list[dict] | None) -> list[str]:
    """Differences between two signatures, in words (empty when they agree)."""
    if ours is None or theirs is None:
        return []
    if (
        theirs
        and all(p["kind"] in ("VAR_POSITIONAL", "VAR_KEYWORD") for p in theirs)
        and any(p["kind"] not in ("VAR_POSITIONAL", "VAR_KEYWORD") for p in ours)
    ):
        return []  # Pathway passes everything through; naming the parameters is no gap
    if any(
        p["name"].startswith("_") and p["kind"] != "VAR_KEYWORD" and "default" not in p
        for p in theirs
    ):
        return []  # a required private parameter: not meant to be called by users
    # The bound object's own parameter (self of a method, cls of a metaclass method) differs
    # in name only.
    # Parameters starting with "_" are private on both sides.
    ours = [p for p in ours if p["name"] not in ("self", "cls") and not p["name"].startswith("_")]
    theirs = [
        p for p in theirs if p["name"] not in ("self", "cls") and not p["name"].startswith("_")
    ]
    ours_by = {p["name"]: p for p in ours}
    theirs_by = {p["name"]: p for p in theirs}
    ours_var_kw = any(p["kind"] == "VAR_KEYWORD" for p in ours)
    theirs_var_kw = any(p["kind"] == "VAR_KEYWORD" for p in theirs)
    problems = []
    for name, param in theirs_by.items():
        if param["kind"] in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            same_kind = [p for p in ours if p["kind"] == param["kind"]]
            if not same_kind:
                problems.append(
                    f"missing {'*' if param['kind'] == 'VAR_POSITIONAL' else '**'}{name}"
                )
            continue
        mine = ours_by.get(name)
        if mine is None:
            how = " (swallowed by **kwargs)" if ours_var_kw else ""
            problems.append(f"missing parameter {name}{how}")
            continue
        if mine["kind"] != param["kind"]:
            problems.append(f"{name}: kind {mine['kind']} (Pathway {param['kind']})")
        if ("default" in mine) != ("default" in param) or (
            "literal" in param.get("default", {}) and mine.get("default") != param.get("default")
        ):
            problems.append(
                f"{name}: default {_describe_default(mine)} (Pathway {_describe_default(param)})"
            )
    for name, param in ours_by.items():
        if param["kind"] in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            if param["kind"] == "VAR_KEYWORD" and not theirs_var_kw:
                problems.append(f"extra **{name} (unknown keywords not rejected)")
            continue
        if name not in theirs_by and not theirs_var_kw:
            problems.append(f"extra parameter {name}")
    return problems


def compare(ours: dict[str, Any], theirs: dict[str, Any], *, extra: bool) -> list[str]:
    lines: list[str] = []
    for dotted, reference in theirs["modules"].items():
        label = f"pw.{dotted}" if dotted else "pw"
        mine = ours["modules"].get(dotted)
        if mine is None:
            lines.append(f"{label}: MODULE MISSING ({len(reference['public'])} public names)")
            continue
        missing = [n for n in reference["public"] if n not in mine["all"]]
        if missing:
            lines.append(f"{label}: missing {', '.join(missing)}")
        for name in reference["public"]:
            if name in INTERNAL_CONSTRUCTORS or name.endswith("Result"):
                continue
            if name in mine["all"] and name in reference["all"]:
                for problem in compare_signatures(
                    mine["all"][name]["signature"], reference["all"][name]["signature"]
                ):
                    lines.append(f"{label}.{name}: {problem}")
        if extra:
            only_ours = [n for n in mine["public"] if n not in reference["all"]]
            if only_ours:
                lines.append(f"{label}: only in deltaflow: {', '.join(only_ours)}")
    for dotted, reference in theirs["classes"].items():
        mine = ours["classes"].get(dotted)
        label = f"pw.{dotted}"
        if mine is None:
            lines.append(f"{label}: CLASS MISSING")
            continue
        missing = sorted(n for n in reference if n not in mine)
        if missing:
            lines.append(f"{label}: missing {', '.join(missing)}")
        for name, member in sorted(reference.items()):
            if name in mine and member.get("signature") is not None:
                for problem in compare_signatures(mine[name].get("signature"), member["signature"]):
                    lines.append(f"{label}.{name}: {problem}")
        if extra:
            only_ours = sorted(n for n in mine if n not in reference)
            if only_ours:
                lines.append(f"{label}: only in deltaflow: {', '.join(only_ours)}")
    return lines


def _run_dump(python: str, package: str, probe: dict[str, list[str]]) -> dict[str, Any]:
    completed = subprocess.run(
        [python, __file__, "dump", package],
        check=True,
        capture_output=True,
        text=True,
        input=json.dumps(probe),
    )
    return json.loads(completed.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="compare", choices=["compare", "dump"])
    parser.add_argument("package", nargs="?", default="deltaflow")
    parser.add_argument("--pathway-python", default=PATHWAY_PYTHON)
    parser.add_argument(
        "--reference-package",
        default="pathway",
        help="the package to compare with (default: pathway)",
    )
    parser.add_argument(
        "--extra", action="store_true", help="also list public names only deltaflow has"
    )
    args = parser.parse_args()
    if args.mode == "dump":
        json.dump(dump(args.package, json.loads(sys.stdin.read() or "{}")), sys.stdout)
        return
    theirs = _run_dump(args.pathway_python, args.reference_package, {})
    probe = {dotted: module["public"] for dotted, module in theirs["modules"].items()}
    ours = _run_dump(sys.executable, "deltaflow", probe)
    lines = compare(ours, theirs, extra=args.extra)
    sys.stdout.write("\n".join(lines) + ("\n" if lines else ""))
    sys.stdout.write(f"{len(lines)} differences\n")


if __name__ == "__main__":
    main()
