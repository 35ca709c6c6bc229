"""Embedding alignment of a token and its transliterated twin (defined when T includes Transliteration)."""
from __future__ import annotations

import numpy as np
import torch

from .objectives.dictionary import Dictionary, twin_pairs


def nearest_neighbours(queries: torch.Tensor, candidates: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Index of the cosine-nearest candidate for every query (chunked so 40k x 40k fits in memory).

    One score buffer serves every chunk: a fresh (chunk x 40k) tensor per chunk cost more in page
    faults than the matmul on CPU (benchmarks/README.md).
    """
    q = torch.nn.functional.normalize(queries.float(), dim=1)
    c = torch.nn.functional.normalize(candidates.float(), dim=1)
    out = torch.empty(len(q), dtype=torch.long, device=q.device)
    buf = torch.empty(min(chunk, len(q)), len(c), device=q.device)
    for i in range(0, len(q), chunk):
        scores = buf[: len(q[i:i + chunk])]
        torch.mm(q[i:i + chunk], c.T, out=scores)
        out[i:i + chunk] = scores.argmax(1)
    return out


def alignment_at_1(orig: torch.Tensor, derived: torch.Tensor, twin: torch.Tensor) -> float:
    """Precision@1 without mapping: share of original tokens whose nearest derived embedding is their twin.

    ``orig``: (n, d) embeddings of the original tokens; ``derived``: (m, d) embeddings of ALL derived
    tokens; ``twin[i]``: the row of ``derived`` that is the twin of original token ``i``.

    The same number as ``(nearest_neighbours(orig, derived) == twin).mean()`` (up to floating-point
    near-ties), computed by elimination: candidates are scanned in blocks (1,024, then 8,192) and a
    query drops out as soon as one candidate beats its twin (a higher cosine, or an equal one at a
    lower index, which ``argmax`` would pick). Poorly aligned embeddings are settled after the first
    block; a fully aligned matrix costs the full scan (benchmarks/README.md gives both).
    """
    q = torch.nn.functional.normalize(orig.float(), dim=1)
    c = torch.nn.functional.normalize(derived.float(), dim=1)
    twin = torch.as_tensor(twin, dtype=torch.long, device=q.device)
    if len(q) == 0:
        return float("nan")
    twin_score = (q * c[twin]).sum(1)
    alive = torch.ones(len(q), dtype=torch.bool, device=q.device)
    start, size = 0, 1024
    buf = torch.empty(min(2048, len(q)) * min(8192, len(c)), device=q.device)  # one score buffer: no page faults
    while start < len(c):
        rows = alive.nonzero().squeeze(1)
        if len(rows) == 0:
            break
        stop = min(len(c), start + size)
        block = c[start:stop].T
        everyone = len(rows) == len(q)
        for k in range(0, len(rows), 2048):
            r = rows[k:k + 2048]
            scores = buf[: len(r) * (stop - start)].view(len(r), stop - start)
            torch.mm(q[k:k + 2048] if everyone else q[r], block, out=scores)
            tw = twin[r]
            own = ((tw >= start) & (tw < stop)).nonzero().squeeze(1)
            scores[own, tw[own] - start] = float("-inf")      # the twin does not compete with itself
            best = scores.amax(1)
            t = twin_score[r]
            beaten = best > t
            tie = (best == t).nonzero().squeeze(1)            # rare: argmax takes the first maximal index
            if len(tie):
                beaten[tie] = scores[tie].argmax(1) + start < tw[tie]
            alive[r[beaten]] = False
        start, size = stop, 8192
    return float(alive.float().mean())


def embedding_drift(before: torch.Tensor, after: torch.Tensor, rows: torch.Tensor) -> float:
    """Mean cosine between each chosen row of an embedding matrix before and after training (1: unmoved).

    Fine-tuning on one language moves its rows and never their twins', so a drift well below 1 on the
    original rows is alignment lost before the zero-shot test is taken."""
    cos = torch.nn.functional.cosine_similarity(before[rows].float(), after[rows].float(), dim=1)
    return float(cos.mean())


def procrustes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The orthogonal W minimising ||x W - y|| (Schoenemann's solution via SVD)."""
    u, _, vt = torch.linalg.svd(x.double().T @ y.double())
    return (u @ vt).to(x.dtype)


def twin_candidates(table: np.ndarray, n_special: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """What P@1 without mapping compares: the original tokens that have a twin, the candidates (every
    derived token) and, for each original token, the row of its twin among the candidates."""
    moved = twin_pairs(table, n_special)[:, 0]
    if len(moved) == 0:
        raise ValueError("alignment needs a derived language with Transliteration (no token has a twin)")
    derived_vocab = np.unique(table[n_special:])
    return moved, derived_vocab, torch.from_numpy(np.searchsorted(derived_vocab, table[moved]))


def alignment_report(embeddings: torch.Tensor, table: np.ndarray, n_special: int, heldout: float = 0.5,
                     seed: int = 0, dictionary: Dictionary | None = None) -> dict:
    """Alignment of a model's input embeddings under the transliteration ``table`` (original id -> derived id).

    Returns P@1 without mapping over all transliterated types (the paper's number), and P@1 on a held-out
    half after an orthogonal Procrustes map fitted on the other half. With the ``dictionary`` a model was
    trained with (align, dict_mlm), also P@1 over its training pairs (``alignment_at_1_dict``) and over its
    held-out pairs (``alignment_at_1_heldout``: tokens never in the dictionary), against the same candidates.
    """
    moved, derived_vocab, twin = twin_candidates(table, n_special)
    E = embeddings.detach().float().cpu()
    orig, cands = E[torch.from_numpy(moved)], E[torch.from_numpy(derived_vocab)]
    p1 = alignment_at_1(orig, cands, twin)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(moved))
    n_test = max(1, int(round(heldout * len(moved))))
    test, fit = perm[:n_test], perm[n_test:]
    W = procrustes(orig[fit], E[torch.from_numpy(table[moved[fit]])])
    p1_map = alignment_at_1(orig[test] @ W, cands, twin[test])
    chance = 1.0 / len(derived_vocab)
    report = {"alignment_at_1": p1, "alignment_at_1_procrustes": p1_map, "n_pairs": int(len(moved)),
              "n_candidates": int(len(derived_vocab)), "n_procrustes_test": int(n_test), "chance": chance}
    subsets = {} if dictionary is None else {"dict": dictionary.train, "heldout": dictionary.heldout}
    for name, pairs in subsets.items():
        if not np.isin(pairs[:, 0], moved).all() or (table[pairs[:, 0]] != pairs[:, 1]).any():
            raise ValueError(f"the dictionary's {name} pairs are not tokens and their twins under this model's "
                             "transliteration")
        rows = torch.from_numpy(np.searchsorted(moved, pairs[:, 0]))
        report[f"alignment_at_1_{name}"] = alignment_at_1(orig[rows], cands, twin[rows])
        report[f"n_{name}_pairs"] = int(len(pairs))
    return report


def _twin_rows(table: np.ndarray, n_special: int) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = torch.from_numpy(twin_pairs(table, n_special))
    if len(pairs) == 0:
        raise ValueError("twin interventions need a derived language with Transliteration (no token has a twin)")
    return pairs[:, 0], pairs[:, 1]


def language_offset(embeddings: torch.Tensor, table: np.ndarray, n_special: int) -> torch.Tensor:
    """mean(original rows) - mean(their twins' rows): the direction that tells the two languages apart."""
    orig, twin = _twin_rows(table, n_special)
    E = embeddings.detach()
    return E[orig].mean(0) - E[twin].mean(0)


def intervene_twins(embeddings: torch.Tensor, table: np.ndarray, n_special: int, mode: str) -> torch.Tensor:
    """A copy of the embedding matrix with the derived twins changed, to isolate what limits transfer.

    ``"shift"`` adds ``language_offset`` to every twin (both languages then have the same mean);
    ``"copy"`` gives every twin its original's row (perfect alignment: what is left of the transfer gap
    then comes from the rest of the network and from fine-tuning). README, "Why transfer is so weak".
    """
    orig, twin = _twin_rows(table, n_special)
    E = embeddings.detach().clone()
    if mode == "shift":
        E[twin] += language_offset(embeddings, table, n_special)
    elif mode == "copy":
        E[twin] = E[orig]
    else:
        raise ValueError(f"unknown twin intervention {mode!r}: expected 'shift' or 'copy'")
    return E
