"""Optional dependencies (the package's extras, pyproject.toml): imported where they are used, with one line
naming the extra that brings a missing one."""
from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ImportError):
    """An optional dependency is not installed."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """``module``, imported; if it is missing, ``MissingExtra`` saying that ``what`` needs the ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{what} needs {module}, which is not installed: pip install \"xlt_helpers[{extra}]\" "
                           f"(or pip install -r requirements.txt)") from exc
