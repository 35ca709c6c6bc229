"""xlt_helpers: isolating the ingredients of cross-lingual transfer (Deshpande et al., NAACL 2022)."""
from . import config  # noqa: F401  (sets the offline switches before transformers is imported)

__version__ = "0.1.0"
