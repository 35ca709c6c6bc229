"""One exception type for bad input, so every loader reports file, line and expectation the same way."""
from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """Malformed or missing input data: names the file, the line (1-based, if any) and what was expected."""

    def __init__(self, path: str | Path, line: int | None, expected: str, found: str | None = None):
        self.path, self.line, self.expected, self.found = str(path), line, expected, found
        where = f"{path}:{line}" if line is not None else f"{path}"
        msg = f"{where}: expected {expected}"
        if found is not None:
            shown = found if len(found) <= 80 else found[:77] + "..."
            msg += f", found {shown!r}"
        super().__init__(msg)
