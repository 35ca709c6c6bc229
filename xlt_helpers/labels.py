"""The labels of result rows that name a model (``language`` and ``transformation`` columns), in a module
with no heavy imports: the runner names model folders with them, and ``status`` must not load torch."""
from __future__ import annotations

MONO = "mono"   # the transformation column of a monolingual model
PAIR = "pair"   # the transformation column of a natural language pair
DEFAULT_VARIANT = "default"  # the variant column of a grid without `variants`


def pair_name(language: str, target_language: str) -> str:
    """The ``language`` column of a natural pair's rows: ``"en-fr"``."""
    return f"{language}-{target_language}"
