"""Install hints for optional dependencies (the extras in pyproject.toml)."""

from __future__ import annotations


def missing_extra(feature: str, module: str, extra: str) -> ImportError:
    """The error to raise when ``feature`` needs ``module``, which the ``extra`` installs."""
    return ImportError(
        f"{feature} needs the {module} package, which is not installed: "
        f"pip install 'deltaflow[{extra}]'"
    )
