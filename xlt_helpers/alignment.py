"""Embedding alignment of a token and its transliterated twin (defined when T includes Transliteration)."""
from __future__ import annotations

import numpy as np
import torch


def nearest_neighbours(queries: torch.Tensor, candidates: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Index of the cosine-nearest candidate for every query (chunked so 40k x 40k fits in memory)."""
    q = torch.nn.functional.normalize(queries.float(), dim=1)
    c = torch.nn.functional.normalize(candidates.float(), dim=1)
    return torch.cat([(q[i:i + chunk] @ c.T).argmax(1) for i in range(0, len(q), chunk)])


def alignment_at_1(orig: torch.Tensor, derived: torch.Tensor, twin: torch.Tensor) -> float:
    """Precision@1 without mapping: share of original tokens whose nearest derived embedding is their twin.

    ``orig``: (n, d) embeddings of the original tokens; ``derived``: (m, d) embeddings of ALL derived
    tokens; ``twin[i]``: the row of ``derived`` that is the twin of original token ``i``.
    """
    return float((nearest_neighbours(orig, derived) == twin).float().mean())


def procrustes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The orthogonal W minimising ||x W - y|| (Schoenemann's solution via SVD)."""
    u, _, vt = torch.linalg.svd(x.double().T @ y.double())
    return (u @ vt).to(x.dtype)


def alignment_report(embeddings: torch.Tensor, table: np.ndarray, n_special: int, heldout: float = 0.5,
                     seed: int = 0) -> dict:
    """Alignment of a model's input embeddings under the transliteration ``table`` (original id -> derived id).

    Returns P@1 without mapping over all transliterated types (the paper's number), and P@1 on a held-out
    half after an orthogonal Procrustes map fitted on the other half.
    """
    ids = np.arange(n_special, len(table))
    moved = ids[table[ids] != ids]
    if len(moved) == 0:
        raise ValueError("alignment needs a derived language with Transliteration (no token has a twin)")
    derived_vocab = np.unique(table[n_special:])
    row_of = {int(t): k for k, t in enumerate(derived_vocab)}
    twin = torch.tensor([row_of[int(table[i])] for i in moved])
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
    return {"alignment_at_1": p1, "alignment_at_1_procrustes": p1_map, "n_pairs": int(len(moved)),
            "n_candidates": int(len(derived_vocab)), "n_procrustes_test": int(n_test), "chance": chance}
