"""The run configuration: every setting that can change a number, in the study's five groups.

A run is described by one ``RunConfig`` of five frozen groups (``model``, ``data``, ``pretrain``,
``finetune``, ``evaluate``). Every default lives in the field definitions below (they are the paper's
settings); a named preset (``PRESETS``: ``test``, ``demo``, ``paper``) changes some of them; a grid or
a notebook changes any field by its dotted name (``pretrain.steps: 500``). ``resolve`` does all three
once, validates the result and fills the ``auto`` fields (device, precision, the fine-tuning seed, the
number of position embeddings), so a resolved config says exactly what will run; the steps only read
it, never resolve again. ``step_key`` hashes the groups a step reads: the folder names of the runner.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from .fingerprint import fingerprint
from .objectives import FIELDS as OBJECTIVE_FIELDS
from .objectives import NEEDS, OBJECTIVES


class ConfigError(ValueError):
    """A bad configuration: one line naming where, the key, and what is allowed."""


def _f(default: Any, help: str, choices: tuple | None = None, key: bool | str = True) -> Any:
    """A config field with its help text, its allowed values and whether it enters the folder key:
    always (True), never (False: it cannot change a number), or ``"when_set"``: only when it differs
    from its default. Fields added after runs exist use ``"when_set"``, so that the folders (and the
    cached results) of every configuration that leaves them at their default keep their names."""
    return field(default=default, metadata={"help": help, "choices": choices, "key": key})


MODEL_KINDS = ("monolingual", "derived", "pair")  # DataConfig.model_kind


@dataclass(frozen=True)
class ModelConfig:
    """The encoder (RoBERTa) and the size of its tokenizer."""

    vocab_size: int = _f(40_000, "BPE types per language (the model has twice as many rows: room for a twin)")
    layers: int = _f(8, "transformer layers")
    hidden: int = _f(512, "hidden size")
    heads: int = _f(8, "attention heads (must divide hidden)")
    ffn: int = _f(2048, "feed-forward size")
    dropout: float = _f(0.1, "hidden and attention dropout (0 for small CPU models: they underfit)")
    init_range: float = _f(0.02, "std of the initial weights (a larger one speeds up a small model's first steps)")
    max_positions: int | None = _f(None, "position embeddings; None: max(pretrain.seq_len, finetune.max_len) + 2")


@dataclass(frozen=True)
class DataConfig:
    """Which languages the model sees, and how the derived language is made."""

    language: str = _f("en", "the original language (set by the grid's `languages`)")
    transformation: str | None = _f(None, "the derived language, e.g. translit+inv; None: monolingual "
                                          "(set by the grid's `transformations`)")
    second_language: str | None = _f(None, "a natural pair's second language instead of a derived one "
                                           "(set by the grid's `pairs`)")
    corpus_setting: str = _f("parallel", "how the derived corpus relates to the original",
                             ("parallel", "nonparallel", "other_domain"))
    pretrain_sentences: int | None = _f(None, "sentences of the original corpus (None: all)")
    derived_fraction: float = _f(1.0, "size of the derived corpus as a share of the original, in (0, 1]")
    shift_special: bool = _f(False, "the derived language gets its own special tokens")
    parser_sentences: int | None = _f(3000, "treebank sentences the Syntax parser is trained on (None: all)")
    parser_iterations: int = _f(4, "training iterations of the Syntax tagger and parser")

    @property
    def model_kind(self) -> str:
        """What the model is pretrained on (``MODEL_KINDS``): ``monolingual`` (the language alone),
        ``derived`` (the language and its derived language) or ``pair`` (the language and a second one).
        The one place that decides it: folder names, result labels and the step functions ask here."""
        return "pair" if self.second_language else "derived" if self.transformation else "monolingual"


@dataclass(frozen=True)
class PretrainConfig:
    """Masked-LM pretraining from scratch."""

    seed: int = _f(0, "pretraining seed: weights, data order, masks, derived vocabulary (the grid's `seeds`)")
    steps: int = _f(500_000, "optimizer steps")
    batch_size: int = _f(128, "blocks per optimizer step (after gradient accumulation)")
    grad_accum: int = _f(1, "micro-batches per step (must divide batch_size)")
    seq_len: int = _f(512, "block length (sentences packed, RoBERTa FULL-SENTENCES)")
    lr: float = _f(1e-4, "peak learning rate (linear warm-up, then linear decay)")
    warmup: int = _f(10_000, "warm-up steps")
    optimizer: str = _f("adamw", "optimizer", ("adamw",))
    betas: tuple[float, float] = _f((0.9, 0.98), "AdamW betas (RoBERTa)")
    eps: float = _f(1e-6, "AdamW epsilon (RoBERTa)")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    grad_clip: float = _f(1.0, "gradient-norm clip")
    mask_prob: float = _f(0.15, "share of non-special positions chosen for the MLM loss")
    mask_token_share: float = _f(0.8, "share of the chosen positions replaced by <mask>")
    random_token_share: float = _f(0.1, "share replaced by a random token of the block's language (rest kept)")
    objectives: tuple[str, ...] = _f(("mlm",), "pretraining objectives, one loss term each, summed",
                                     tuple(OBJECTIVES))
    align_weight: float = _f(10.0, "align: lambda, the weight of -mean cos(E[i], E[j]) over the dictionary's pairs",
                             key="when_set")
    dictionary_fraction: float = _f(0.5, "align, dict_mlm: share of the dictionary's pairs trained on (drawn with "
                                         "pretrain.seed; the rest held out), in (0, 1]", key="when_set")
    dictionary: str | None = _f(None, "align, dict_mlm on a natural pair: its word-pair file (two tab-separated "
                                      "columns), relative to the data directory; {language} and {second_language} "
                                      "are filled in", key="when_set")
    dict_mlm_prob: float = _f(0.5, "dict_mlm: probability that a masked token in the dictionary is to be "
                                   "predicted as its twin, in (0, 1]", key="when_set")
    precision: str = _f("auto", "matmul precision; auto: bf16 on GPU, fp32 on CPU (bf16 with $XLT_CPU_BF16=1)",
                        ("auto", "fp32", "bf16"))
    compile: bool | None = _f(None, "torch.compile the encoder layers; None: $XLT_COMPILE=1")
    device: str = _f("auto", "auto: cuda if available, else cpu", ("auto", "cpu", "cuda", "mps"))
    checkpoint_every: int = _f(5000, "steps between resumable checkpoints (does not change the numbers)",
                               key=False)
    embedding_snapshots: int = _f(0, "steps between snapshots of the word embeddings kept in the model folder "
                                     "(embeddings_history.npz: the alignment step's P@1 over training); 0: none",
                                  key="when_set")


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning on a task (BS, BZ and the monolingual model alike) and its test set."""

    seed: int | None = _f(None, "fine-tuning seed: head, batch order, task subsample; None: the pretraining seed")
    epochs: float = _f(3.0, "epochs over the (capped) training set")
    lr: float = _f(2e-5, "peak learning rate (10% warm-up, then linear decay)")
    batch_size: int = _f(32, "examples per step")
    max_len: int = _f(256, "sub-words per example (longer ones are cut or windowed)")
    train_examples: int | None = _f(None, "cap on task training examples (None: all)")
    test_examples: int | None = _f(None, "cap on task test examples and retrieval sentences (None: all)")
    warmup_ratio: float = _f(0.1, "share of the steps spent warming up")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    grad_clip: float = _f(1.0, "gradient-norm clip")
    eval_batch_size: int = _f(128, "examples per evaluation batch")
    embedding_lr_scale: float = _f(1.0, "the word embeddings' learning rate as a share of finetune.lr (0: frozen); "
                                        "the same for BS, BZ and the monolingual model", key="when_set")
    eval_split: str = _f("test", "the split scored: dev to choose settings (calibration), test to report",
                         ("test", "dev"), key="when_set")
    save_models: bool = _f(False, "keep the BS and BZ fine-tuned models (models/BS, models/BZ in the step's folder, "
                                  "drop-in transformers checkpoints like the pretrained ones)", key="when_set")
    precision: str = _f("auto", "as pretrain.precision", ("auto", "fp32", "bf16"))
    device: str = _f("auto", "as pretrain.device", ("auto", "cpu", "cuda", "mps"))


@dataclass(frozen=True)
class EvaluateConfig:
    """Measurements without fine-tuning: embedding alignment and sentence retrieval."""

    alignment_heldout: float = _f(0.5, "share of token pairs held out when fitting Procrustes, in (0, 1)")
    retrieval_layer: int | None = _f(None, "hidden state used for retrieval (0: embeddings); None: the middle layer")
    contextual: bool = _f(False, "the alignment step also measures contextual word alignment P@1 and linear CKA "
                                 "per layer on held-out parallel sentences (docs/alignment.md)", key="when_set")
    contextual_sentences: int = _f(1000, "Tatoeba sentences of the original language those measures use (the "
                                         "first n; each beside its derived form)", key="when_set")


GROUPS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "pretrain": PretrainConfig,
                           "finetune": FinetuneConfig, "evaluate": EvaluateConfig}


@dataclass(frozen=True)
class RunConfig:
    """One fully resolved run: a preset's name and the five groups (see ``resolve``)."""

    preset: str
    model: ModelConfig
    data: DataConfig
    pretrain: PretrainConfig
    finetune: FinetuneConfig
    evaluate: EvaluateConfig

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def flat(self) -> dict[str, Any]:
        """``{"model.layers": 1, ...}``: one column per field (configs.csv)."""
        return {f"{g}.{k}": v for g in GROUPS for k, v in self.to_dict()[g].items()}

    def replace(self, **dotted: Any) -> "RunConfig":
        """A copy with fields changed by dotted name (``cfg.replace(**{"data.transformation": None})``)."""
        groups = {g: dataclasses.asdict(getattr(self, g)) for g in GROUPS}
        for name, value in dotted.items():
            g, _, k = name.partition(".")
            groups[g][k] = value
        return _build(self.preset, groups, "replace")

    def monolingual(self) -> "RunConfig":
        """The config of the monolingual model beside this one: no derived or second language, and the
        options that only choose the derived side's sentences back at their defaults (so every grid
        that varies them shares one monolingual model). ``shift_special`` stays: MZ retrieval builds
        the derived test set from the monolingual model's own settings. The pretraining objectives and
        their fields go back to their defaults too: the monolingual model (MZ) is plain MLM, shared by
        every objective; so do embedding snapshots (a monolingual model has no twins to align).
        ``finetune.save_models`` goes back too: MZ's fine-tuned model is always kept."""
        d, p = DataConfig(), PretrainConfig()
        return self.replace(**{"data.transformation": None, "data.second_language": None,
                               "data.corpus_setting": d.corpus_setting, "data.derived_fraction": d.derived_fraction,
                               "finetune.save_models": FinetuneConfig().save_models, "pretrain.objectives": p.objectives,
                               "pretrain.embedding_snapshots": p.embedding_snapshots,
                               **{f"pretrain.{name}": getattr(p, name) for name in OBJECTIVE_FIELDS}})


# Presets: only what differs from the defaults above (the paper's settings).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # seconds: exercises every code path in CI, results are meaningless
    "test": {
        "model": dict(vocab_size=320, layers=1, hidden=32, heads=2, ffn=64),
        "data": dict(pretrain_sentences=300, parser_sentences=150, parser_iterations=1),
        "pretrain": dict(steps=12, batch_size=8, seq_len=32, lr=1e-3, warmup=2, checkpoint_every=5),
        "finetune": dict(train_examples=48, test_examples=32, epochs=1.0, batch_size=16, lr=1e-3, max_len=48,
                         embedding_lr_scale=0.0),
    },
    # a few CPU minutes per model. Transfer through Transliteration emerges only after many passes over a
    # small corpus with a small model (Dufter & Schuetze 2020; docs/scales.md gives the calibration):
    # 1 layer, 2,000 sentences seen ~150 times, a larger initialisation and learning rate. Until 2026-12-03
    # it had 5,000 sentences; the calibration grid (dev split) found 2,000 the strongest lever at equal cost
    "demo": {
        "model": dict(vocab_size=2000, layers=1, hidden=64, heads=4, ffn=256, dropout=0.0, init_range=0.06),
        "data": dict(pretrain_sentences=2000),
        "pretrain": dict(steps=6000, batch_size=32, seq_len=128, lr=5e-3, warmup=300, checkpoint_every=500),
        "finetune": dict(train_examples=3000, test_examples=1000, epochs=3.0, batch_size=32, lr=2e-3, max_len=128,
                         embedding_lr_scale=0.0),
    },
    # embedding_lr_scale=0.0 at the CPU scales (test, demo, cpu): the word embeddings stay frozen in
    # fine-tuning (BS, BZ and MZ alike), chosen on the dev split by papermill_runs/grids/protocol_*.yaml
    # (docs/design.md, "The fine-tuning protocol"); the GPU presets keep the paper's (everything trained)
    # the study on a CPU: `demo` with a 2,000-sentence corpus seen ~300 times (twice the steps),
    # the levers of papermill_runs/grids/calibration.yaml that raised transfer on the dev split
    # (docs/results/2026-12-03-calibration.md); ~9 min a model on one core of these machines, under 30 on two
    "cpu": {
        "model": dict(vocab_size=2000, layers=1, hidden=64, heads=4, ffn=256, dropout=0.0, init_range=0.06),
        "data": dict(pretrain_sentences=2000),
        "pretrain": dict(steps=12000, batch_size=32, seq_len=128, lr=5e-3, warmup=300, checkpoint_every=500),
        "finetune": dict(train_examples=3000, test_examples=1000, epochs=3.0, batch_size=32, lr=2e-3, max_len=128,
                         embedding_lr_scale=0.0),
    },
    # one GPU, about an hour: the paper's model (8 layers, hidden 512, 66.8M parameters with the twin
    # vocabulary) on shorter blocks for a tenth of its steps. Expected (estimates, not yet measured on a GPU:
    # `make gpu-check`): 1.64B tokens (50k steps x 256 x 128), 159 MFLOP a token, ~10 GB of GPU memory;
    # ~56 min on an A100, ~18 min on an H100 at 25% bf16 MFU
    "gpu_small": {
        "pretrain": dict(steps=50_000, batch_size=256, seq_len=128, warmup=1_000),
    },
    # Deshpande et al. (2022): 8 layers, hidden 512, 8 heads, FFN 2048, sequence 512, batch 128, 500k steps.
    # Expected (estimates, not yet measured on a GPU): 32.8B tokens, 178 MFLOP a token, ~20 GB of GPU memory;
    # ~21 h on one A100, ~6.6 h on one H100 at 25% bf16 MFU (divide by N under torchrun --nproc_per_node=N)
    "paper": {},
}

MAX_SEED = 2**32 - 1  # the widest seed range every generator we seed accepts (numpy's legacy one)
MIN_MAX_LEN = 6      # finetune.max_len that holds <s> a </s></s> b </s>: one sub-word of each text of a pair

# Fields a grid sets through its own keys, never through `overrides`.
GRID_SET = {"data.language": "languages", "data.transformation": "transformations",
            "data.second_language": "pairs", "pretrain.seed": "seeds", "finetune.seed": "finetune_seeds"}


def field_names() -> list[str]:
    """Every dotted field name, in group order."""
    return [f"{g}.{f.name}" for g, cls in GROUPS.items() for f in fields(cls)]


def _closest(name: str, options: list[str]) -> str:
    near = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else ""


def flatten_overrides(overrides: Mapping[str, Any] | None, where: str = "overrides") -> dict[str, Any]:
    """``{"pretrain": {"steps": 5}}`` or ``{"pretrain.steps": 5}`` -> ``{"pretrain.steps": 5}``, names checked."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where}: expected a mapping of dotted field names to values, found {overrides!r}")
    flat: dict[str, Any] = {}
    for name, value in overrides.items():
        name = str(name)
        if name in GROUPS and isinstance(value, Mapping):
            flat.update({f"{name}.{k}": v for k, v in value.items()})
        else:
            flat[name] = value
    known = field_names()
    for name in flat:
        if name in known:
            continue
        group, _, key = name.partition(".")
        if group not in GROUPS:
            bare = [n for n in known if n.split(".", 1)[1] == name]
            hint = f"; did you mean {bare[0]!r}?" if bare else _closest(name, known)
            raise ConfigError(f"{where}: unknown field {name!r}{hint} (write group.field; groups: "
                              f"{', '.join(GROUPS)})")
        names = [f.name for f in fields(GROUPS[group])]
        raise ConfigError(f"{where}: {group} has no field {key!r}{_closest(key, names)} "
                          f"(fields of {group}: {', '.join(names)})")
    return flat


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(v, args[0]) for v in value)
        return len(value) == len(args) and all(_type_ok(v, a) for v, a in zip(value, args))
    return True


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _coerce(value: Any, hint: Any) -> Any:
    """Lists to tuples, ints to floats where a float is declared (so hashes do not depend on 5 vs 5.0)."""
    if typing.get_origin(hint) is tuple:
        return tuple(float(v) if typing.get_args(hint)[0] is float else v for v in value)
    return float(value) if hint is float else value


def _finite(value: Any) -> bool:
    """No infinity or NaN in a float (or a tuple of them): YAML's .inf and .nan, JSON's Infinity and NaN."""
    return all(math.isfinite(v) for v in (value if isinstance(value, tuple) else (value,)) if isinstance(v, float))


def _canonical_transformation(spec: str) -> str:
    """``transformations.canonical_spec``: one spelling, one model; a bad spec is left for ``_validate``."""
    from .transformations import canonical_spec

    try:
        return canonical_spec(spec)
    except ValueError:
        return spec


def _build(preset: str, groups: Mapping[str, Mapping[str, Any]], where: str) -> RunConfig:
    """Type-check every field, then build and validate the config (no `auto` is filled here)."""
    built = {}
    for g, cls in GROUPS.items():
        hints = typing.get_type_hints(cls)
        values = dict(groups.get(g, {}))
        for f in fields(cls):
            if f.name not in values:
                continue
            v, hint = values[f.name], hints[f.name]
            if not _type_ok(v, hint):
                raise ConfigError(f"{where}: {g}.{f.name} must be {_type_name(hint)}, found {v!r}")
            v = _coerce(v, hint)
            if not _finite(v):
                raise ConfigError(f"{where}: {g}.{f.name} = {v!r}: expected a finite number")
            if g == "data" and f.name == "transformation" and v is not None:
                v = _canonical_transformation(v)
            choices = f.metadata.get("choices")
            if choices is not None:
                bad = [x for x in (v if isinstance(v, tuple) else (v,)) if x not in choices]
                if bad:
                    raise ConfigError(f"{where}: {g}.{f.name} = {bad[0]!r} is not allowed"
                                      f"{_closest(str(bad[0]), list(choices))} (allowed: {', '.join(choices)})")
            values[f.name] = v
        built[g] = cls(**values)
    cfg = RunConfig(preset, **built)
    _validate(cfg, where)
    return cfg


def _validate(cfg: RunConfig, where: str) -> None:
    """Values that cannot run, refused before anything starts."""
    def get(name: str) -> Any:
        group, _, key = name.partition(".")
        return getattr(getattr(cfg, group), key)

    def need(ok: bool, name: str, expected: str) -> None:
        if not ok:
            raise ConfigError(f"{where}: {name} = {get(name)!r}: expected {expected}")

    m, d, p, ft, ev = cfg.model, cfg.data, cfg.pretrain, cfg.finetune, cfg.evaluate
    for name in ("model.vocab_size", "model.layers", "model.hidden", "model.heads", "model.ffn",
                 "pretrain.batch_size", "pretrain.grad_accum", "pretrain.seq_len", "pretrain.checkpoint_every",
                 "finetune.batch_size", "finetune.max_len", "finetune.eval_batch_size", "data.parser_iterations"):
        need(get(name) > 0, name, "a positive integer")
    for name in ("pretrain.seed", "finetune.seed"):  # numpy, torch and the per-sentence seeds take all of these
        need(get(name) is None or 0 <= get(name) <= MAX_SEED, name,
             f"{'null or ' if name == 'finetune.seed' else ''}a whole number from 0 to {MAX_SEED} (2**32 - 1)")
    need(ft.max_len >= MIN_MAX_LEN, "finetune.max_len",
         f"at least {MIN_MAX_LEN}: room for one sub-word of each text of an example, <s> a </s></s> b </s> "
         "(xnli, qa; <s> x </s> for pos and ner)")
    need(p.seq_len >= 2, "pretrain.seq_len", "at least 2: a block is <s> and at least one token")
    for name in ("data.pretrain_sentences", "data.parser_sentences", "finetune.train_examples",
                 "finetune.test_examples"):
        need(get(name) is None or get(name) > 0, name, "a positive integer or null (all)")
    need(m.vocab_size >= 64, "model.vocab_size", "at least 64 (256 bytes are the BPE's alphabet; 320 is the test scale)")
    need(m.hidden % m.heads == 0, "model.heads", f"a divisor of model.hidden ({m.hidden})")
    need(0.0 <= m.dropout < 1.0, "model.dropout", "a value in [0, 1)")
    need(m.init_range > 0, "model.init_range", "a positive std")
    need(m.max_positions is None or m.max_positions >= max(p.seq_len, ft.max_len) + 2, "model.max_positions",
         f"null or at least max(pretrain.seq_len, finetune.max_len) + 2 = {max(p.seq_len, ft.max_len) + 2}")
    need(0.0 < d.derived_fraction <= 1.0, "data.derived_fraction", "a share in (0, 1]")
    need(not (d.transformation and d.second_language), "data.second_language",
         "null when data.transformation is set (a model has a derived or a second language, not both)")
    need(d.second_language != d.language, "data.second_language", "a language other than data.language")
    need(p.steps > 0, "pretrain.steps", "a positive integer (a model needs at least one optimizer step)")
    need(0 <= p.warmup, "pretrain.warmup", "0 or more")
    need(p.batch_size % p.grad_accum == 0, "pretrain.grad_accum", f"a divisor of pretrain.batch_size ({p.batch_size})")
    for name in ("pretrain.lr", "pretrain.eps", "pretrain.grad_clip", "finetune.lr", "finetune.grad_clip",
                 "finetune.epochs"):
        need(get(name) > 0, name, "a positive number")
    need(all(0.0 <= b < 1.0 for b in p.betas), "pretrain.betas", "two values in [0, 1)")
    need(0.0 < p.mask_prob < 1.0, "pretrain.mask_prob", "a share in (0, 1)")
    need(p.mask_token_share >= 0 and p.random_token_share >= 0 and p.mask_token_share + p.random_token_share <= 1.0,
         "pretrain.random_token_share", "shares with mask_token_share + random_token_share <= 1")
    need(len(p.objectives) > 0 and len(set(p.objectives)) == len(p.objectives), "pretrain.objectives",
         "a non-empty list without repeats")
    need(p.align_weight > 0, "pretrain.align_weight", "a positive weight")
    need(0.0 < p.dictionary_fraction <= 1.0, "pretrain.dictionary_fraction", "a share in (0, 1]")
    need(0.0 < p.dict_mlm_prob <= 1.0, "pretrain.dict_mlm_prob", "a probability in (0, 1]")
    need(0.0 <= ft.warmup_ratio < 1.0, "finetune.warmup_ratio", "a share in [0, 1)")
    need(ft.embedding_lr_scale >= 0.0, "finetune.embedding_lr_scale", "a share of finetune.lr, 0 or more (0: frozen)")
    need(0.0 < ev.alignment_heldout < 1.0, "evaluate.alignment_heldout", "a share in (0, 1)")
    need(p.embedding_snapshots >= 0, "pretrain.embedding_snapshots", "0 (none) or a positive number of steps")
    need(ev.contextual_sentences > 0, "evaluate.contextual_sentences", "a positive integer")
    need(ev.retrieval_layer is None or 0 <= ev.retrieval_layer <= m.layers, "evaluate.retrieval_layer",
         f"null or a layer in 0..{m.layers} (0: embeddings)")
    from .data import languages
    from .transformations import parse_spec, recipes

    for name in ("data.language", "data.second_language"):
        lang = getattr(d, name.split(".")[1])
        if lang is not None and lang not in languages():
            raise ConfigError(f"{where}: {name} = {lang!r} is not a registered language"
                              f"{_closest(lang, languages())} (known: {', '.join(languages())})")
    if d.transformation is not None:
        try:
            parse_spec(d.transformation)
            recipes(d.transformation)  # the steps' own arguments (translit0.5, syntax:fr@N~hi@V)
        except ValueError as exc:
            raise ConfigError(f"{where}: data.transformation = {d.transformation!r}: {exc}") from None
    _validate_objectives(cfg, where)


def _validate_objectives(cfg: RunConfig, where: str) -> None:
    """Objectives that cannot run on this model (what each needs: ``objectives.NEEDS``), and their fields set
    without them, refused with one line."""
    d, p = cfg.data, cfg.pretrain
    listed = f"{where}: pretrain.objectives = {list(p.objectives)!r}"
    if not any(OBJECTIVES[o].blocks for o in p.objectives):
        raise ConfigError(f"{listed}: expected mlm, dict_mlm or tlm beside align (align only adds a term on "
                          "the embeddings)")
    for name, users in OBJECTIVE_FIELDS.items():
        value, default = getattr(p, name), getattr(PretrainConfig, name)
        if value != default and not set(users) & set(p.objectives):
            raise ConfigError(f"{where}: pretrain.{name} = {value!r}: expected it at its default ({default!r}) "
                              f"unless pretrain.objectives has {' or '.join(users)} (it has no effect otherwise)")
    kind = d.model_kind
    if p.dictionary is not None and kind != "pair":
        raise ConfigError(f"{where}: pretrain.dictionary = {p.dictionary!r}: expected null for a "
                          f"{'derived language' if kind == 'derived' else 'monolingual model'} (the dictionary "
                          "of a derived language is its twins; a file is for a natural pair)")
    if not any(OBJECTIVES[o].needs for o in p.objectives):
        return  # plain mlm runs on any model
    from .transformations import traits

    derived = traits(d.transformation) if kind == "derived" else None
    pair = f"{d.language}-{d.second_language}" if kind == "pair" else None
    for o in p.objectives:
        for need in OBJECTIVES[o].needs:
            missing = {
                "bilingual": kind == "monolingual",
                "dictionary": (derived is not None and not derived.id_map) or (pair is not None and p.dictionary is None),
                "parallel": pair is not None or d.corpus_setting != "parallel"
                            or (derived is not None and not derived.corpus_level),
            }[need]
            if missing:
                model = (f"the natural pair {pair}" if pair else f"data.transformation {d.transformation!r}"
                         if derived else "a monolingual model")
                setting = f", data.corpus_setting {d.corpus_setting!r}" if need == "parallel" and not pair else ""
                raise ConfigError(f"{listed}: {o} needs {NEEDS[need]}; found {model}{setting}")
    if p.dictionary is not None and pair is not None:
        from .errors import DataFormatError
        from .objectives.dictionary import file_path, read_word_pairs

        path = file_path(p.dictionary, d.language, d.second_language)
        if not path.is_file():
            raise ConfigError(f"{where}: pretrain.dictionary = {p.dictionary!r}: expected an existing file of word "
                              f"pairs, found none at {path}")
        try:
            read_word_pairs(path)
        except DataFormatError as exc:
            raise ConfigError(f"{where}: pretrain.dictionary: {exc}") from None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "0") not in ("", "0")


def _device(name: str) -> str:
    if name != "auto":
        return name
    if _cpu_only_torch():
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _cpu_only_torch() -> bool:
    """Whether the installed torch is a CPU build (no CUDA, no ROCm), read from its version.py without
    importing torch: `status` and config resolution then take a fraction of a second instead of seconds."""
    import importlib.util
    import re
    from pathlib import Path

    spec = importlib.util.find_spec("torch")
    version = Path(spec.origin).with_name("version.py") if spec and spec.origin else None
    if version is None or not version.exists():
        return False
    text = version.read_text()
    return all(re.search(rf"^{key}(: [^=]+)? = None$", text, re.M) for key in ("cuda", "hip"))


def _precision(name: str, device: str) -> str:
    """`auto`: bf16 on a GPU; on a CPU fp32 unless $XLT_CPU_BF16=1 (bf16 pays only with bf16 units)."""
    if name != "auto":
        return name
    return "bf16" if device == "cuda" or (device == "cpu" and _env_flag("XLT_CPU_BF16")) else "fp32"


def resolve(preset: str, overrides: Mapping[str, Any] | None = None, where: str = "config") -> RunConfig:
    """The fully resolved config: defaults, then the preset, then ``overrides`` (dotted names), validated,
    with every ``auto`` replaced by what it means on this machine and environment."""
    if preset not in PRESETS:
        raise ConfigError(f"{where}: unknown scale {preset!r}{_closest(str(preset), list(PRESETS))} "
                          f"(presets: {', '.join(PRESETS)})")
    groups = {g: dict(v) for g, v in PRESETS[preset].items()}
    for name, value in flatten_overrides(overrides, where).items():
        g, _, k = name.partition(".")
        groups.setdefault(g, {})[k] = value
    cfg = _build(preset, groups, where)
    p, ft = cfg.pretrain, cfg.finetune
    pdev, fdev = _device(p.device), _device(ft.device)
    return cfg.replace(**{
        "model.max_positions": cfg.model.max_positions or max(p.seq_len, ft.max_len) + 2,
        "finetune.seed": p.seed if ft.seed is None else ft.seed,
        "pretrain.device": pdev, "finetune.device": fdev,
        "pretrain.precision": _precision(p.precision, pdev), "finetune.precision": _precision(ft.precision, fdev),
        "pretrain.compile": _env_flag("XLT_COMPILE") if p.compile is None else p.compile,
    })


def from_dict(raw: Mapping[str, Any], where: str = "config") -> RunConfig:
    """A config from its ``to_dict`` form (a notebook's parameter, a saved model) or from
    ``{"preset": name, <dotted or grouped overrides>}`` (resolved here)."""
    raw = dict(raw)
    if "preset" not in raw:
        raise ConfigError(f"{where}: a config needs `preset` (one of {', '.join(PRESETS)})")
    preset = raw.pop("preset")
    if preset not in PRESETS:
        raise ConfigError(f"{where}: unknown scale {preset!r}{_closest(str(preset), list(PRESETS))} "
                          f"(presets: {', '.join(PRESETS)})")
    complete = set(raw) == set(GROUPS) and all(isinstance(v, Mapping) for v in raw.values()) and \
        {f"{g}.{k}" for g, v in raw.items() for k in v} == set(field_names())
    if complete:  # a resolved config (every field given): taken as it is, checked like any other
        return _build(preset, raw, where)
    return resolve(preset, raw, where)


def load(param: str | Mapping[str, Any] | RunConfig, where: str = "config") -> RunConfig:
    """What a notebook's ``config`` parameter holds (a JSON string, a mapping or a config) as a config."""
    if isinstance(param, RunConfig):
        return param
    if isinstance(param, str):
        try:
            param = json.loads(param)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc})") from None
    return from_dict(param, where)


def key_dict(cfg: RunConfig, groups: tuple[str, ...]) -> dict[str, Any]:
    """The fields of ``groups`` that can change a number (``checkpoint_every`` and the like left out)."""
    out = {}
    for g in groups:
        group = getattr(cfg, g)
        out[g] = {f.name: json.loads(json.dumps(getattr(group, f.name))) for f in fields(group)
                  if f.metadata["key"] is True
                  or (f.metadata["key"] == "when_set" and getattr(group, f.name) != _default(f))}
    return out


def _default(f: dataclasses.Field) -> Any:
    """A field's default, in the form a resolved config holds it (lists as tuples)."""
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def step_key(cfg: RunConfig, groups: tuple[str, ...], *extra: Any) -> str:
    """A short hash of what a step reads: its groups of ``cfg`` and anything else given (data, code)."""
    return fingerprint([cfg.preset, key_dict(cfg, groups), list(extra)])


def config_table() -> str:
    """The configuration table of docs/configuration.md: field, default per preset, what it changes (markdown)."""
    names = list(PRESETS)
    rows = ["| field | " + " | ".join(names) + " | what it changes |", "|---" * (len(names) + 2) + "|"]
    for g, cls in GROUPS.items():
        for f in fields(cls):
            vals = []
            for p in names:
                v = PRESETS[p].get(g, {}).get(f.name, f.default)
                vals.append("`" + json.dumps(v) + "`")
            help_ = f.metadata["help"] + (f" ({' / '.join(f.metadata['choices'])})" if f.metadata["choices"] else "")
            rows.append(f"| `{g}.{f.name}` | " + " | ".join(vals) + f" | {help_} |")
    return "\n".join(rows)
