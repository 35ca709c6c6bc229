"""The step kinds: one row per kind of step, the one place that says what a kind reads, which notebook runs
it, what it asks a cluster for and which code computes its numbers.

Planning (``grid.plan``), folder names (``grid.keys``), a step's notebook parameters (``grid.step``), the
Ray resource table (``grid.ray_executor``) and the code fingerprints (``fingerprint.ROOTS``) all read
``KINDS``. It sits below the grid wing and imports nothing from the package, so that ``fingerprint``
reads it without an arrow up into the wing.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepKind:
    name: str
    notebook: str                 # notebooks/<notebook>, executed with papermill
    folder: str                   # its folder inside the model's: "pretrain" as is, else folder + [task_] + key
    groups: tuple[str, ...]       # config groups its folder key reads beyond the model's (model, data, pretrain)
    task: bool                    # it serves one task: its folder name starts with it, its key reads its data
    device: str                   # the config group whose `device` it runs on (pretrain or finetune)
    gpus: float                   # GPUs it asks Ray for when that device resolved to cuda
    roots: tuple[str, ...]        # modules whose code computes its numbers (besides `experiment`, every kind's;
                                  # `pretrained`: a model folder's languages, read by every kind after pretraining)
    depends_on: tuple[str, ...]   # kinds whose results it reads: their code is in its fingerprint too
    torchrun: bool = False        # it can train under torchrun, several processes (``grid.ray_executor``)
    progress_parameter: bool = False  # its notebook takes `progress` (the runner turns the tqdm bar off)
    task_parameter: bool = False  # its notebook takes `task` (one notebook serves every fine-tuned task)
    outputs: tuple[str, ...] = () # files beside results.json that its dependants read: without one it is not done


MODEL_FILES = ("model/config.json", "model/model.safetensors", "model/tokenizer.json", "model/xlt_meta.json")


KINDS: dict[str, StepKind] = {k.name: k for k in (
    StepKind("pretrain", "01_pretrain.ipynb", "pretrain", (), False, "pretrain", 1.0, ("pretrain",), (),
             torchrun=True, progress_parameter=True, outputs=MODEL_FILES),
    StepKind("finetune_mono", "02_finetune_evaluate.ipynb", "finetune_", ("finetune",), True, "finetune", 0.25,
             ("finetune", "encoding", "tasks", "metrics", "trees", "pretrained"), ("pretrain",), task_parameter=True,
             outputs=MODEL_FILES),
    StepKind("transfer", "02_finetune_evaluate.ipynb", "transfer_", ("finetune",), True, "finetune", 0.25,
             ("finetune", "encoding", "tasks", "metrics", "trees", "pretrained"), ("pretrain", "finetune_mono"),
             task_parameter=True),
    # alignment reads the saved embeddings on the CPU: no GPU
    # (evaluate.contextual adds forward passes over 1,000 sentences: small enough for a CPU too)
    StepKind("alignment", "03_alignment.ipynb", "alignment_", ("evaluate",), False, "finetune", 0.0,
             ("alignment", "alignment_measures", "trees", "pretrained"), ("pretrain",)),
    StepKind("retrieval", "05_retrieval.ipynb", "", ("finetune", "evaluate"), True, "finetune", 0.25,
             ("retrieval", "encoding", "tasks", "metrics", "trees", "pretrained"), ("pretrain",)),
)}


def kind(name: str) -> StepKind:
    """The row of ``name`` (``ValueError`` naming the known kinds otherwise)."""
    if name not in KINDS:
        raise ValueError(f"unknown step kind {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]
