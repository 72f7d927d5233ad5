"""``pw.load_yaml``: pipeline configuration files that build Python objects.

A YAML document where

* a tag ``!module.path.name`` calls ``name`` from ``module.path`` with the tagged mapping as
  keyword arguments (a sequence gives positional arguments, an empty value no arguments);
  ``!pw.`` abbreviates ``deltaflow.`` (or ``pathway.`` when the name is only found there,
  e.g. a module of a program written for Pathway under a compatibility alias). A tag with
  no value at all still calls its target, with a ``DeprecationWarning``: write ``{}`` for an
  empty mapping of arguments, as Pathway asks too;
* a top-level key ``$name`` defines a variable (left out of the result) and a string value
  ``$name`` anywhere refers to it; every reference gets the same object. A ``$name`` that no
  top-level key defines is read from the environment variable ``name``: a value that YAML
  reads as a number or a boolean (``42``, ``2.5``, ``0x10``, ``true``, ``yes``) becomes one,
  any other value stays the variable's text (it is not parsed as YAML structure, nor
  resolved further). Neither defined nor in the environment: ``KeyError``.

Needs PyYAML (``pip install 'deltaflow[yaml]'``).
"""

from __future__ import annotations

import importlib
import io
import os
import warnings
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Call:
    """A tagged node: what to call and with what, made into an object after loading."""

    target: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: The tag had no value at all (neither a mapping nor ``{}``).
    bare: bool = False


def _import_module(module_name: str, path: str) -> Any:
    """The module of a tag; ``pw.`` names are looked up in deltaflow, then in ``pathway``."""
    candidates = [module_name]
    if module_name == "pw" or module_name.startswith("pw."):
        rest = module_name[len("pw") :]
        candidates = ["deltaflow" + rest, "pathway" + rest]
    first_error: ImportError | None = None
    for candidate in candidates:
        try:
            return importlib.import_module(candidate)
        except ImportError as exc:
            first_error = first_error or exc
    raise ImportError(
        f"load_yaml: cannot import {candidates[0]!r} for tag !{path}: {first_error}"
    ) from first_error


def _import_target(path: str) -> Any:
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ValueError(f"load_yaml: tag !{path} does not name module.attribute")
    module = _import_module(module_name, path)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise AttributeError(
            f"load_yaml: module {module_name!r} has no {attribute!r} (tag !{path})"
        ) from None


def _loader_class() -> Any:
    try:
        import yaml
    except ImportError as exc:
        raise ImportError("pw.load_yaml needs PyYAML: pip install 'deltaflow[yaml]'") from exc

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: Any, suffix: str, node: Any) -> _Call:
        if isinstance(node, yaml.MappingNode):
            return _Call(suffix, kwargs=loader.construct_mapping(node, deep=True))
        if isinstance(node, yaml.SequenceNode):
            return _Call(suffix, args=loader.construct_sequence(node, deep=True))
        value = loader.construct_scalar(node)
        if value in ("", None):
            return _Call(suffix, bare=True)
        return _Call(suffix, args=[value])

    Loader.add_multi_constructor("!", construct)
    return Loader


def load_yaml(stream: str | bytes | io.IOBase) -> Any:
    """Load a configuration document, building the objects its tags name."""
    import yaml

    document = yaml.load(stream, Loader=_loader_class())  # noqa: S506 (SafeLoader subclass)
    if not isinstance(document, dict):
        return _Resolver({}).resolve(document)
    variables = {k[1:]: v for k, v in document.items() if isinstance(k, str) and k.startswith("$")}
    resolver = _Resolver(variables)
    return {
        k: resolver.resolve(v)
        for k, v in document.items()
        if not (isinstance(k, str) and k.startswith("$"))
    }


class _Resolver:
    """Turns loaded values into objects: calls tags, substitutes variables (once each)."""

    def __init__(self, variables: dict[str, Any]) -> None:
        self._raw = variables
        self._done: dict[str, Any] = {}
        self._resolving: set[str] = set()

    def variable(self, name: str) -> Any:
        if name in self._done:
            return self._done[name]
        if name not in self._raw:
            if name in os.environ:
                return _environment_value(os.environ[name])
            raise KeyError(
                f"load_yaml: variable ${name} is not defined (define it with a "
                f"top-level key ${name}, or set the environment variable {name})"
            )
        if name in self._resolving:
            raise ValueError(f"load_yaml: variable ${name} refers to itself")
        self._resolving.add(name)
        self._done[name] = self.resolve(self._raw[name])
        self._resolving.discard(name)
        return self._done[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("$"):
            return self.variable(value[1:])
        if isinstance(value, _Call):
            target = _import_target(value.target)
            if value.bare:
                warnings.warn(
                    f"load_yaml: tag !{value.target} has no value; it is called with no "
                    "arguments for now, but give it an explicit mapping ({} when empty): "
                    "a bare tag may mean something else in a later version",
                    DeprecationWarning,
                    stacklevel=4,
                )
            args = [self.resolve(a) for a in value.args]
            kwargs = {k: self.resolve(v) for k, v in value.kwargs.items()}
            return target(*args, **kwargs)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def _environment_value(text: str) -> Any:
    """An environment variable's value for ``$name``: a number or boolean when YAML reads
    the text as one, else the text itself."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, bool | int | float) else text
