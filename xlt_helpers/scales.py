"""Named experiment scales: the same code from a seconds-long CI run to the paper's TPU-scale models."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Scale:
    name: str
    # tokenizer and pretraining corpus
    vocab_size: int            # BPE types per language (the paper: 40,000)
    pretrain_sentences: int | None  # sentences of the original corpus (None = all)
    # encoder (RoBERTa)
    layers: int
    hidden: int
    heads: int
    ffn: int
    seq_len: int               # pretraining block length (packed sentences)
    # pretraining
    batch_size: int            # blocks per optimizer step (after gradient accumulation)
    steps: int
    lr: float
    warmup: int
    grad_accum: int = 1
    dropout: float = 0.1       # hidden and attention dropout (0 for small CPU models: they underfit, and
                               # drawing the dropout masks costs a third of a CPU step)
    init_range: float = 0.02   # std of the initial weights (RoBERTa: 0.02); larger speeds up the first
                               # steps of a small model (README, Scales)
    checkpoint_every: int = 500
    # fine-tuning
    ft_train_examples: int | None = None  # cap on task training examples (None = all)
    ft_test_examples: int | None = None   # cap on task test examples
    ft_epochs: float = 3.0
    ft_batch_size: int = 32
    ft_lr: float = 1e-3
    ft_max_len: int = 128
    # dependency parser for Syntax (trained once per language and these settings, cached)
    parser_sentences: int | None = 3000
    parser_iterations: int = 4
    # alignment
    alignment_heldout: float = 0.5  # share of token pairs held out when fitting Procrustes

    def to_dict(self) -> dict:
        return asdict(self)


SCALES: dict[str, Scale] = {
    # seconds: exercises every code path in CI, results are meaningless
    "test": Scale("test", vocab_size=320, pretrain_sentences=300, layers=1, hidden=32, heads=2, ffn=64,
                  seq_len=32, batch_size=8, steps=12, lr=1e-3, warmup=2, checkpoint_every=5,
                  ft_train_examples=48, ft_test_examples=32, ft_epochs=1, ft_batch_size=16, ft_max_len=48,
                  parser_sentences=150, parser_iterations=1),
    # a few CPU minutes per model. Transfer through Transliteration emerges only after many passes over a
    # small corpus with a small model (Dufter & Schuetze 2020; README, Scales, gives the calibration):
    # 1 layer, 5,000 sentences seen ~60 times, a larger initialisation and learning rate
    "demo": Scale("demo", vocab_size=2000, pretrain_sentences=5000, layers=1, hidden=64, heads=4, ffn=256,
                  seq_len=128, batch_size=32, steps=6000, lr=5e-3, warmup=300, init_range=0.06,
                  checkpoint_every=500, dropout=0.0,
                  ft_train_examples=3000, ft_test_examples=1000, ft_epochs=3, ft_batch_size=32, ft_lr=2e-3,
                  ft_max_len=128),
    # Deshpande et al. (2022): 8 layers, hidden 512, 8 heads, FFN 2048, sequence 512, batch 128, 500k steps
    "paper": Scale("paper", vocab_size=40000, pretrain_sentences=None, layers=8, hidden=512, heads=8, ffn=2048,
                   seq_len=512, batch_size=128, steps=500_000, lr=1e-4, warmup=10_000, checkpoint_every=5000,
                   ft_train_examples=None, ft_test_examples=None, ft_epochs=3, ft_batch_size=32, ft_lr=2e-5,
                   ft_max_len=256),
}


def get_scale(name: str, **overrides) -> Scale:
    """A named scale, optionally with fields overridden (e.g. ``get_scale('demo', steps=100)``)."""
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}; known: {sorted(SCALES)}")
    return replace(SCALES[name], **overrides) if overrides else SCALES[name]
