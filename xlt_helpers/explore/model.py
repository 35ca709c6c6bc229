"""A pretrained model folder, looked into (notebooks/explore_model.ipynb): its loss curve, its words and
their twins in the input embeddings, nearest neighbours, fill-mask in both languages, and how alike a
sentence and its derived form are at every layer.

A word's *twin* is the same word in the derived language: its sub-words mapped by the derived language's
id map (``DerivedLanguage.table``; Transliteration moves id ``i`` to ``i + V``, a reordering keeps it). A
model folder is read with ``loading.load_pretrained``; the loss curve is drawn by the report's own
``plots.pretraining_curves``, the per-layer vectors come from ``alignment_measures`` (``parallel_sentence``,
``span_means``), as the alignment step computes them.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..config import cache_dir, runs_dir
from ..data import normalize_text
from ..fingerprint import fingerprint
from ..labels import DEFAULT_VARIANT
from ..loading import Pretrained, load_pretrained
from ..pretrained import META, model_meta
from ..run_config import resolve
from ..run_config import load as load_config
from ..tokenizer import encode_words, split_words
from ..transformations import BOS, EOS, MASK, N_SPECIAL, DerivedLanguage, Segment, traits
from .languages import piece

# The model trained when no run folder exists: the test scale's Transliteration model, seconds on a CPU.
DEFAULT_MODEL = {"preset": "test", "data.language": "en", "data.transformation": "translit"}
RUN_MODELS = "*/*/*/*/pretrain/model/" + META  # <scale>/<language>/<transformation>/<seed_key>/ (grid.keys)


def run_models(root: str | Path | None = None) -> list[Path]:
    """The pretrained model folders of the runs folder (``papermill_runs/``), newest first: those whose derived
    language transliterates (twins with ids of their own to look at) before other derived languages, and
    those before monolingual models and natural pairs."""
    def rank(folder: Path) -> tuple:
        spec = model_meta(folder).get("transformation")
        return bool(spec) and traits(spec).id_map, bool(spec), (folder / META).stat().st_mtime

    return sorted((p.parent for p in Path(root or runs_dir()).glob(RUN_MODELS)), key=rank, reverse=True)


def cached_model(config: dict | None = None) -> Path:
    """A model trained here once, for a fresh clone with no run folder: ``config`` (default ``DEFAULT_MODEL``)
    pretrained with the study's own step (``experiment.run_pretrain``) into the cache folder, reused after."""
    from ..experiment import run_pretrain

    raw = dict(config or DEFAULT_MODEL)
    cfg = resolve(raw.pop("preset"), raw)
    out = cache_dir() / "explore" / f"{cfg.preset}_{cfg.data.language}_{fingerprint(cfg.to_dict())}" / "pretrain"
    if not (out / "model" / META).exists():
        run_pretrain(cfg, out, progress=False)
    return out / "model"


def choose_model(model_dir: str | Path | None = None) -> Path:
    """``model_dir`` if given, else the newest run folder's model (``run_models``), else ``cached_model()``."""
    if model_dir:
        if not (Path(model_dir) / META).exists():
            raise FileNotFoundError(f"{model_dir}: not a model folder saved by xlt_helpers (no {META})")
        return Path(model_dir)
    found = run_models()
    return found[0] if found else cached_model()


@lru_cache(maxsize=4)
def load(model_dir: str | Path) -> Pretrained:
    """``load_pretrained`` of a folder, kept for the widgets (one load per folder)."""
    return load_pretrained(model_dir)


# ------------------------------------------------------------------------------------ training

def loss_log(model_dir: str | Path) -> pd.DataFrame:
    """The folder's pretraining loss per step (``loss_log.csv`` beside it) with the columns of the report's
    loss curves (``report.curves.pretraining_logs``): language, transformation, corpus setting, variant, seed."""
    from ..experiment import labels

    meta = model_meta(model_dir)
    cfg = load_config(meta["config"])
    language, transformation = labels(cfg)
    log = pd.read_csv(Path(model_dir).parent / "loss_log.csv")
    return log.assign(language=language, transformation=transformation, corpus_setting=cfg.data.corpus_setting,
                      variant=DEFAULT_VARIANT, seed=cfg.pretrain.seed)


def loss_figure(model_dir: str | Path):
    """The folder's loss curve, drawn as the report draws every pretraining's (``plots.pretraining_curves``)."""
    from ..report.plots import pretraining_curves

    return pretraining_curves(loss_log(model_dir))


# ------------------------------------------------------------------------------------ input embeddings

def input_embeddings(p: Pretrained) -> np.ndarray:
    """The model's input embedding matrix (one row per id of both languages)."""
    return p.model.get_input_embeddings().weight.detach().float().cpu().numpy()


def word_twins(p: Pretrained, word: str) -> tuple[list[int], list[int]]:
    """A word's sub-word ids in the original language, and its twin's in the derived language."""
    ids, _ = encode_words(p.derived.bpe, [normalize_text(word.strip())])
    return ids, [int(p.derived.language.table[i]) for i in ids]


def vocabularies(p: Pretrained) -> dict[str, np.ndarray]:
    """The embedding rows of each language's sub-words (specials left out): ``original`` and ``derived``
    (the same rows for a derived language without Transliteration)."""
    V = p.derived.language.vocab_size
    return {"original": np.arange(N_SPECIAL, V), "derived": p.derived.language.vocabulary()}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The cosine of each vector (last axis) of ``a`` with the matching one of ``b`` (broadcast); 0 for a zero vector."""
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)


def pca_2d(fit: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` projected on the first two principal axes of ``fit`` (rows: vectors), centred on its mean;
    an axis the data does not span gives 0."""
    mean = fit.mean(0)
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    axes = np.zeros((2, fit.shape[1]))
    axes[: min(2, len(vt))] = vt[:2]
    return (points - mean) @ axes.T


def twin_points(embeddings: np.ndarray, words: Sequence[str], ids: Sequence[Sequence[int]],
                twins: Sequence[Sequence[int]], fit_rows: np.ndarray | None = None) -> pd.DataFrame:
    """Each word (the mean of its sub-words' input embeddings) and its twin, in a 2-D PCA fitted on
    ``fit_rows`` of ``embeddings`` (both vocabularies, ``vocabularies``; default: the points themselves), so
    the picture does not move when a word is added. Columns: word, language, x, y, and the cosine of the
    word with its twin."""
    orig = np.stack([embeddings[list(i)].mean(0) for i in ids])
    twin = np.stack([embeddings[list(t)].mean(0) for t in twins])
    both = np.concatenate([orig, twin])
    xy = pca_2d(embeddings[fit_rows] if fit_rows is not None else both, both)
    cos = cosines(orig, twin)
    n = len(words)
    return pd.DataFrame({"word": list(words) * 2, "language": ["original"] * n + ["derived"] * n,
                         "x": xy[:, 0], "y": xy[:, 1], "cosine with twin": np.concatenate([cos, cos])})


def model_twin_points(p: Pretrained, words: Sequence[str]) -> pd.DataFrame:
    """``twin_points`` of typed words in a model, the PCA fitted on both vocabularies' embeddings."""
    words = [w.strip() for w in words if w.strip()]
    pairs = [word_twins(p, w) for w in words]
    rows = np.unique(np.concatenate(list(vocabularies(p).values())))
    return twin_points(input_embeddings(p), words, [i for i, _ in pairs], [t for _, t in pairs], rows)


def twin_figure(points: pd.DataFrame, title: str = ""):
    """The words (circles) and their twins (crosses) in the plane, a line from each word to its twin."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5))
    orig, twin = points[points.language == "original"], points[points.language == "derived"]
    for (_, a), (_, b) in zip(orig.iterrows(), twin.iterrows()):
        ax.plot([a.x, b.x], [a.y, b.y], color="grey", lw=0.8, zorder=1)
    ax.scatter(orig.x, orig.y, marker="o", s=40, label="original", zorder=2)
    ax.scatter(twin.x, twin.y, marker="x", s=50, label="derived (twin)", zorder=3)
    for r in orig.itertuples():
        ax.annotate(r.word, (r.x, r.y), textcoords="offset points", xytext=(4, 4), fontsize=9)
    return _finished(fig, ax, "principal axis 1", "principal axis 2",
                     title or "input embeddings: words and their twins (PCA)")


def neighbours(embeddings: np.ndarray, query: np.ndarray, candidates: np.ndarray, k: int = 8) -> pd.DataFrame:
    """The ``k`` rows of ``candidates`` (ids) whose embeddings have the highest cosine with ``query``: id and
    cosine, nearest first (ties: the lower id first)."""
    cos = cosines(embeddings[candidates], query[None])
    order = np.lexsort((candidates, -cos))[:k]
    return pd.DataFrame({"id": candidates[order], "cosine": cos[order]})


def word_neighbours(p: Pretrained, word: str, k: int = 8) -> pd.DataFrame:
    """The nearest neighbours of a typed word (the mean of its sub-words' input embeddings) among the
    original language's sub-words and among the derived language's; ``twin`` marks the word's own twins."""
    emb = input_embeddings(p)
    ids, twins = word_twins(p, word)
    query = emb[ids].mean(0)
    parts = []
    for name, rows in vocabularies(p).items():
        found = neighbours(emb, query, rows, k)
        parts.append(found.assign(vocabulary=name, rank=np.arange(1, len(found) + 1),
                                  token=[piece(p.derived.bpe, i) for i in found.id],
                                  twin=[int(i) in twins and name == "derived" for i in found.id]))
    return pd.concat(parts, ignore_index=True)[["vocabulary", "rank", "token", "id", "cosine", "twin"]]


# ------------------------------------------------------------------------------------ sentences

def _sentence(p: Pretrained, sentence: str, language: DerivedLanguage | None = None):
    """A typed sentence as words and sub-words, and its derived form (``language``: default, the model's),
    each position labelled with its original position so the two can be matched."""
    lang = language or p.derived.language
    words = split_words(normalize_text(sentence))
    if not words:
        raise ValueError("type a sentence")
    ids, wids = encode_words(p.derived.bpe, words)
    tree = p.derived._tree_fn()([words])[0] if lang.needs_trees else None
    seg = lang(Segment(tuple(ids), tuple(wids), tuple(range(len(ids))), tree))
    return words, ids, wids, seg, tree, lang


def fill_mask(p: Pretrained, sentence: str, word: str, k: int = 5) -> pd.DataFrame:
    """The model's ``k`` most likely sub-words where the first sub-word of ``word`` (its first occurrence in
    ``sentence``) is masked, in the original sentence and at the same sub-word in its derived form; ``gold``
    marks the masked sub-word itself (its twin in the derived language)."""
    import torch

    words, ids, wids, seg, _, lang = _sentence(p, sentence)
    if word.strip() not in words:
        raise ValueError(f"{word!r} is not a word of the sentence; its words: {' | '.join(words)}")
    position = wids.index(words.index(word.strip()))
    body = p.derived.max_length - 2
    inputs = {"original": ([BOS, *ids][: body + 1] + [EOS], 1 + position, ids[position]),
              "derived": ([lang.bos, *seg.tokens][: body + 1] + [lang.eos], 1 + seg.labels.index(position),
                          seg.tokens[seg.labels.index(position)])}
    parts = []
    for name, (x, at, gold) in inputs.items():
        if at > body:
            raise ValueError(f"{word!r} lies beyond the model's {body} sub-words in the {name} sentence")
        x = list(x)
        x[at] = MASK
        with torch.no_grad():
            logits = p.model(input_ids=torch.tensor([x])).logits[0, at]
        prob = torch.softmax(logits.float(), -1)
        top = torch.topk(prob, k)
        parts.append(pd.DataFrame({"language": name, "rank": np.arange(1, k + 1),
                                   "token": [piece(p.derived.bpe, i) for i in top.indices.tolist()],
                                   "id": top.indices.tolist(), "probability": top.values.tolist(),
                                   "gold": [i == gold for i in top.indices.tolist()]}))
    return pd.concat(parts, ignore_index=True)


def layer_similarity(p: Pretrained, sentence: str, language: DerivedLanguage | None = None) -> pd.DataFrame:
    """At every layer (0: the embedding output), the cosine of the sentence's mean-pooled states with its
    derived form's, and the mean cosine of each word's vector (the mean of its sub-words) with the same
    word's in the derived form: the alignment step's contextual measures, on one sentence. ``language``:
    the derived language (default: the model's; the original language gives 1 at every layer)."""
    from ..alignment_measures import parallel_sentence, span_means

    _, ids, wids, _, tree, lang = _sentence(p, sentence, language)
    pair = parallel_sentence(ids, wids, lang, p.derived.max_length, tree)
    if pair is None:
        raise ValueError("no word of the sentence fits whole in the model's input")
    body_o, body_d = tuple(range(1, len(pair.orig) - 1)), tuple(range(1, len(pair.derived) - 1))
    n = len(pair.orig_spans)
    states = span_means(p.model.base_model.eval(), [pair.orig, pair.derived],
                        [[body_o, *pair.orig_spans], [body_d, *pair.derived_spans]]).numpy()
    orig, derived = states[:, : n + 1], states[:, n + 1:]
    cos = cosines(orig, derived)
    return pd.DataFrame({"layer": np.arange(len(states)), "sentence cosine": cos[:, 0],
                         "mean word cosine": cos[:, 1:].mean(1), "words": n})


def layer_figure(table: pd.DataFrame, title: str = ""):
    """``layer_similarity`` as two lines over the layers."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(table.layer, table["sentence cosine"], marker="o", label="sentence (mean-pooled)")
    ax.plot(table.layer, table["mean word cosine"], marker="s", label="words (mean over words)")
    ax.set_xticks(table.layer)
    return _finished(fig, ax, "layer (0: embeddings)", "cosine, original vs derived",
                     title or "a sentence and its derived form, layer by layer")


def _finished(fig, ax, xlabel: str, ylabel: str, title: str):
    """A figure's labels, title, legend and grid, as every figure here has them."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
