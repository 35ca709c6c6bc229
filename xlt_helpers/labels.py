"""Names shared by the steps and the grid and report wings, in a module with no heavy imports (``status``
must not load torch): the labels of result rows that name a model (``language``, ``transformation`` and
``variant`` columns; model folders are named with them too) and the files a step leaves beside its
results.json."""
from __future__ import annotations

MONO = "mono"   # the transformation column of a monolingual model
PAIR = "pair"   # the transformation column of a natural language pair
DEFAULT_VARIANT = "default"  # the variant column of a grid without `variants`
PREDICTIONS = "predictions.json.gz"  # per-example gold and predictions of a step, beside its results.json
FINETUNE_LOSS = "finetune_loss.csv"  # the training loss of every fine-tuning step: setting, step, loss


def pair_name(language: str, target_language: str) -> str:
    """The ``language`` column of a natural pair's rows: ``"en-fr"``."""
    return f"{language}-{target_language}"
