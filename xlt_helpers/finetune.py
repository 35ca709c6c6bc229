"""Fine-tuning and batched evaluation of a pretrained encoder on a task: one readable loop."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import (RobertaForQuestionAnswering, RobertaForSequenceClassification,
                          RobertaForTokenClassification)
from transformers.utils import logging as hf_logging

from . import progress as live
from .model import autocast, lr_at, pick_device, set_threads
from .run_config import FinetuneConfig
from .encoding import IGNORE, Encoded, predictions_table
from .tasks import TaskSpec
from .transformations import PAD

hf_logging.set_verbosity_error()  # the 'newly initialized head' report is expected on every fine-tune


def length_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Batches of similar length (little padding): sort within shuffled chunks, then shuffle the batches.

    With ``rng=None`` (evaluation) batches are simply consecutive in sorted order.
    """
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches = []
    for i in range(0, len(order), chunk):
        part = order[i:i + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    return [batches[k] for k in rng.permutation(len(batches))]


def collate(data: Sequence[Encoded], idx: np.ndarray, kind: str) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest member (``span``: labels are (start, end) input positions)."""
    rows = [data[i] for i in idx]
    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for k, r in enumerate(rows):
        ids[k, : len(r.input_ids)] = torch.tensor(r.input_ids)
        att[k, : len(r.input_ids)] = 1
    if kind == "span":
        spans = torch.tensor([r.label for r in rows], dtype=torch.long).view(-1, 2)
        return {"input_ids": ids, "attention_mask": att, "start_positions": spans[:, 0], "end_positions": spans[:, 1]}
    if kind == "sequence":
        labels = torch.tensor([r.label for r in rows], dtype=torch.long)
    else:
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for k, r in enumerate(rows):
            labels[k, : len(r.label)] = torch.tensor(r.label)
    return {"input_ids": ids, "attention_mask": att, "labels": labels}


_HEADS = {"sequence": RobertaForSequenceClassification, "token": RobertaForTokenClassification,
          "span": RobertaForQuestionAnswering}


def _head(task: TaskSpec):
    if task.kind not in _HEADS:
        raise ValueError(f"task {task.name!r} ({task.kind}) is not fine-tuned")
    return _HEADS[task.kind]


def load_for_task(pretrained: str | Path, task: TaskSpec, seed: int):
    """The pretrained encoder with a freshly initialised task head (same seed, same head)."""
    torch.manual_seed(seed)
    if task.kind == "span":  # start and end logits
        return RobertaForQuestionAnswering.from_pretrained(str(pretrained), num_labels=2, local_files_only=True)
    return _head(task).from_pretrained(str(pretrained), num_labels=len(task.labels), local_files_only=True)


def parameter_groups(model: torch.nn.Module, cfg: FinetuneConfig) -> list[dict] | list[torch.nn.Parameter]:
    """What the optimizer updates: every parameter at ``finetune.lr``, except the word embeddings at
    ``lr * embedding_lr_scale`` (frozen at 0). Fine-tuning moves the original language's rows and never
    their twins', so a smaller share keeps the two languages' embeddings closer (README, Scales)."""
    if cfg.embedding_lr_scale == 1.0:
        return list(model.parameters())  # one group, exactly as before the field existed
    words = model.get_input_embeddings().weight
    rest = [p for p in model.parameters() if p is not words]
    if cfg.embedding_lr_scale == 0.0:
        words.requires_grad_(False)
        return rest
    return [{"params": rest}, {"params": [words], "lr": cfg.lr * cfg.embedding_lr_scale}]


def load_finetuned(path: str | Path, task: TaskSpec):
    """A model fine-tuned earlier and saved with ``save_pretrained``."""
    return _head(task).from_pretrained(str(path), local_files_only=True).eval()


def finetune(pretrained: str | Path, task: TaskSpec, train: Sequence[Encoded], cfg: FinetuneConfig,
             progress: bool = True, losses: list[float] | None = None):
    """Fine-tune a copy of the pretrained model on ``train`` (a resolved ``finetune`` group: its seed is
    set); returns the model (in eval mode). ``losses``, when given, receives the training loss of every
    step (the step's ``finetune_loss.csv``: a collapsing classifier shows in it)."""
    if cfg.seed is None:
        raise ValueError("finetune.seed is unresolved: build the config with run_config.resolve")
    if not train:  # no batch would ever come: the loop below would not end
        raise ValueError(f"fine-tuning {task.name}: expected at least one training example, found none")
    device = pick_device(cfg.device)
    if device.type == "cpu":
        set_threads()
    model = load_for_task(pretrained, task, cfg.seed).to(device)
    rng = np.random.default_rng(cfg.seed)
    n_batches = math.ceil(len(train) / cfg.batch_size)
    total = max(1, int(round(cfg.epochs * n_batches)))
    warmup = max(1, int(cfg.warmup_ratio * total))
    opt = torch.optim.AdamW(parameter_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            fused=device.type in ("cuda", "cpu"))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, 1.0, warmup, total))
    lengths = [len(e.input_ids) for e in train]
    model.train()
    step = 0
    bar = tqdm(total=total, desc=f"fine-tune {task.name}", disable=not progress, mininterval=2.0)
    while step < total:
        for idx in length_batches(lengths, cfg.batch_size, rng):
            if step >= total:
                break
            batch = {k: v.to(device) for k, v in collate(train, idx, task.kind).items()}
            with autocast(device, cfg.precision):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            value = loss.item()
            if losses is not None:
                losses.append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}")
            epoch, batch_no = divmod(step - 1, n_batches)
            live.report(f"fine-tune {task.name}", step, total, step == total, epoch=epoch + 1,
                        batch=f"{batch_no + 1}/{n_batches}", loss=value)
    bar.close()
    return model.eval()


@torch.no_grad()
def predict(model, task: TaskSpec, data: Sequence[Encoded], batch_size: int = 128, precision: str = "auto") -> list:
    """Predictions in the metric's label space, in the order of ``data`` (batched, no gradients).

    For QA (``span``) each prediction is the pair (start logits, end logits) of one window.
    """
    device = next(model.parameters()).device
    model.eval()
    out: list = [None] * len(data)
    for idx in length_batches([len(e.input_ids) for e in data], batch_size, None):
        batch = collate(data, idx, task.kind)
        with autocast(device, precision):
            result = model(input_ids=batch["input_ids"].to(device),
                           attention_mask=batch["attention_mask"].to(device))
        if task.kind == "span":
            start, end = result.start_logits.float().cpu().numpy(), result.end_logits.float().cpu().numpy()
            for k, i in enumerate(idx):
                n = len(data[i].input_ids)
                out[i] = (start[k, :n], end[k, :n])
            continue
        pred = result.logits.argmax(-1).cpu()
        for k, i in enumerate(idx):
            if task.kind == "sequence":
                out[i] = int(pred[k])
            else:
                keep = batch["labels"][k] != IGNORE
                out[i] = [task.labels[int(p)] for p in pred[k][keep]]
    return out


def evaluate_predictions(model, task: TaskSpec, data: Sequence[Encoded], batch_size: int = 128,
                         precision: str = "auto") -> tuple[dict[str, float], dict[str, list]]:
    """Every metric of the task (QA: f1 and em) of ``model`` on ``data``, and the per-example
    ``predictions_table`` they are computed from."""
    table = predictions_table(task, predict(model, task, data, batch_size, precision), data)
    return task.score(table), table


def evaluate_all(model, task: TaskSpec, data: Sequence[Encoded], batch_size: int = 128,
                 precision: str = "auto") -> dict[str, float]:
    """Every metric of the task (QA: f1 and em) of ``model`` on ``data``."""
    return evaluate_predictions(model, task, data, batch_size, precision)[0]


def evaluate(model, task: TaskSpec, data: Sequence[Encoded], batch_size: int = 128, precision: str = "auto") -> float:
    """The task's primary metric of ``model`` on ``data``."""
    return evaluate_all(model, task, data, batch_size, precision)[task.metric]
