"""xlt_helpers: isolating the ingredients of cross-lingual transfer (Deshpande et al., NAACL 2022).

``load_pretrained(folder)`` gives a saved model back with its tokenizer and derived language
(``loading``); it is imported on first use, so ``import xlt_helpers`` stays light.
"""
from . import config  # noqa: F401  (paths; leaves the process's Hugging Face switches alone)

__version__ = "0.1.0"  # the package's one version (pyproject.toml reads it)

_LAZY = {"load_pretrained", "Pretrained", "DerivedText"}


def __getattr__(name: str):
    if name in _LAZY:
        from . import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'xlt_helpers' has no attribute {name!r}")
