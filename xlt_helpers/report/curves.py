"""Training curves as tables: the pretraining loss of every model of a grid (each pretraining's
``loss_log.csv``) and the fine-tuning loss of one cell (each step's ``finetune_loss.csv``)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..labels import MONO

MODEL = ["language", "transformation", "corpus_setting", "variant", "seed"]


def _read(path: Path, **columns) -> pd.DataFrame:
    """A loss CSV with the run's columns added (empty when the file is missing or empty)."""
    try:
        table = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame()
    return table.assign(**columns)


def pretraining_logs(df: pd.DataFrame, runs_dir: str | Path) -> pd.DataFrame:
    """step and loss of every pretraining in ``results.csv`` (``df``), one row per logged step, with the
    model's language, transformation (``mono``: the monolingual model), corpus setting, variant and seed."""
    pre = df[df.task == "pretrain"].drop_duplicates(["step", "variant"])
    parts = [_read(Path(runs_dir) / r["step"] / "loss_log.csv", **{k: r[k] for k in MODEL}, step_dir=r["step"])
             for r in pre.to_dict("records")]
    parts = [p[["step", "loss", *MODEL, "step_dir"]] for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["step", "loss", *MODEL, "step_dir"])


def finetune_cells(df: pd.DataFrame) -> list[tuple[str, str]]:
    """The (transformation, task) pairs of the grid's transfer steps, in grid order."""
    tuned = df[df.setting.isin(["BS", "BZ"]) & (df.transformation != MONO)]
    return list(dict.fromkeys(zip(tuned.transformation, tuned.task)))


def finetune_logs(df: pd.DataFrame, runs_dir: str | Path, transformation: str, task: str) -> pd.DataFrame:
    """The fine-tuning loss per step of one cell: BZ and BS of every transfer step of ``transformation`` on
    ``task`` and MZ of the monolingual fine-tuning it is compared with, with each run's seeds and variant."""
    runs = df[((df.transformation == transformation) | (df.transformation == MONO)) & (df.task == task)
              & (df.setting != "delta")]
    runs = runs.drop_duplicates(["step", "variant"])
    parts = [_read(Path(runs_dir) / r["step"] / "finetune_loss.csv", **{k: r[k] for k in MODEL},
                   finetune_seed=r["finetune_seed"], step_dir=r["step"]) for r in runs.to_dict("records")]
    parts = [p for p in parts if len(p)]
    columns = ["setting", "step", "loss", *MODEL, "finetune_seed", "step_dir"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
