"""Task encoding under transformations, metrics on hand-worked cases, alignment on built embeddings."""
import numpy as np
import pytest
import torch

from xlt_helpers.alignment import alignment_at_1, alignment_report, intervene_twins, language_offset, procrustes
from xlt_helpers.data import NLIPair, TaggedSentence
from xlt_helpers.encoding import IGNORE, decode_gold, encode_nli, encode_tagged
from xlt_helpers.metrics import accuracy, delta_mono, delta_sup, entity_f1, token_accuracy
from xlt_helpers.tasks import get_task
from xlt_helpers.tokenizer import train_tokenizer
from xlt_helpers.transformations import BOS, EOS, N_SPECIAL, DerivedLanguage


@pytest.fixture(scope="module")
def tok():
    corpus = ["John lives in New York City .", "Mary visited Paris in May .", "the cat sat on the mat ."] * 30
    return train_tokenizer(corpus, 300)


def test_ner_labels_follow_words_and_bio_is_repaired_under_inversion(tok):
    task = get_task("ner")
    sent = TaggedSentence(("John", "lives", "in", "New", "York", "City"),
                          ("B-PER", "O", "O", "B-LOC", "I-LOC", "I-LOC"))
    V = tok.get_vocab_size()
    orig = encode_tagged([sent], task, tok, DerivedLanguage("orig", V), 64)[0]
    inv = encode_tagged([sent], task, tok, DerivedLanguage("inv", V), 64)[0]
    assert decode_gold(task, [orig])[0] == list(sent.tags)
    assert decode_gold(task, [inv])[0] == ["B-LOC", "I-LOC", "I-LOC", "O", "O", "B-PER"]
    # the label sits on the same sub-word token as before, wherever it moved
    lab_tok = lambda e: sorted((t, y) for t, y in zip(e.input_ids, e.label) if y != IGNORE)  # noqa: E731
    assert [t for t, _ in lab_tok(orig)] == [t for t, _ in lab_tok(inv)]
    assert inv.input_ids[0] == BOS and inv.input_ids[-1] == EOS


def test_transliterated_task_input_uses_only_the_new_vocabulary(tok):
    V = tok.get_vocab_size()
    lang = DerivedLanguage("translit", V)
    pos = encode_tagged([TaggedSentence(("the", "cat"), ("DET", "NOUN"))], get_task("pos"), tok, lang, 64)[0]
    assert all(t >= V + N_SPECIAL for t in pos.input_ids[1:-1])
    nli = encode_nli([NLIPair("the cat sat", "a cat", 0)], tok, lang, 64)[0]
    body = [t for t in nli.input_ids if t not in (BOS, EOS)]
    assert body and all(t >= V for t in body) and nli.label == 0
    assert nli.input_ids.count(EOS) == 3


def test_truncation_respects_max_len(tok):
    long = TaggedSentence(tuple(["cat"] * 100), tuple(["NOUN"] * 100))
    e = encode_tagged([long], get_task("pos"), tok, DerivedLanguage("orig", tok.get_vocab_size()), 16)[0]
    assert len(e.input_ids) == 16 == len(e.label)


def test_metrics_on_hand_worked_cases():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    assert token_accuracy([["A", "B"], ["C"]], [["A", "X"], ["C"]]) == pytest.approx(2 / 3)
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    assert entity_f1(gold, gold) == 1.0
    # one of two gold entities found, one spurious prediction: P = 1/2, R = 1/2
    assert entity_f1([["B-PER", "I-PER", "B-ORG", "O"]], gold) == pytest.approx(0.5)
    assert delta_sup(0.6, 0.8) == pytest.approx(-0.2) and delta_mono(0.3, 0.6) == pytest.approx(-0.3)
    with pytest.raises(ValueError):
        accuracy([1], [1, 2])


def test_alignment_perfect_random_and_rotated():
    V, d = 200, 16
    g = torch.Generator().manual_seed(0)
    orig = torch.randn(V, d, generator=g)
    table = DerivedLanguage("translit", V).table
    E = torch.zeros(2 * V, d)
    E[:V] = orig
    E[V:] = orig                                        # twins identical: perfect alignment
    assert alignment_report(E, table, N_SPECIAL)["alignment_at_1"] == 1.0
    E[V:] = torch.randn(V, d, generator=g)              # unrelated: about chance
    assert alignment_report(E, table, N_SPECIAL)["alignment_at_1"] < 0.05
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    E[V:] = orig @ Q                                    # rotated twins: P@1 low, Procrustes recovers them
    rep = alignment_report(E, table, N_SPECIAL, heldout=0.5)
    assert rep["alignment_at_1_procrustes"] > 0.95 and rep["alignment_at_1"] < 0.5
    torch.testing.assert_close(procrustes(orig, orig @ Q), Q, atol=1e-4, rtol=1e-4)


def test_twin_interventions_remove_the_offset_and_copy_twins():
    V, d = 300, 8
    g = torch.Generator().manual_seed(1)
    orig = torch.randn(V, d, generator=g)
    offset = torch.full((d,), 1.5)
    table = DerivedLanguage("translit", V).table
    E = torch.cat([orig, orig - offset + 0.3 * torch.randn(V, d, generator=g)])
    assert alignment_report(E, table, N_SPECIAL)["alignment_at_1"] < 0.6     # the offset hides the twins
    torch.testing.assert_close(language_offset(E, table, N_SPECIAL), offset, atol=0.1, rtol=0)
    shifted = intervene_twins(E, table, N_SPECIAL, "shift")
    assert alignment_report(shifted, table, N_SPECIAL)["alignment_at_1"] > 0.95
    torch.testing.assert_close(language_offset(shifted, table, N_SPECIAL), torch.zeros(d), atol=1e-5, rtol=0)
    torch.testing.assert_close(shifted[:V], E[:V])                             # originals untouched
    copied = intervene_twins(E, table, N_SPECIAL, "copy")
    torch.testing.assert_close(copied[V + N_SPECIAL:], E[N_SPECIAL:V])
    assert not torch.equal(copied, E)                                          # a copy, E itself unchanged
    with pytest.raises(ValueError, match="shift"):
        intervene_twins(E, table, N_SPECIAL, "rotate")
    with pytest.raises(ValueError, match="Transliteration"):
        language_offset(E, DerivedLanguage("inv", V).table, N_SPECIAL)


def test_alignment_needs_transliteration():
    with pytest.raises(ValueError, match="Transliteration"):
        alignment_report(torch.zeros(100, 4), DerivedLanguage("inv", 50).table, N_SPECIAL)


def test_alignment_at_1_counts_twins():
    a = torch.eye(3)
    assert alignment_at_1(a, a, torch.tensor([0, 1, 2])) == 1.0
    assert alignment_at_1(a, a, torch.tensor([1, 1, 0])) == pytest.approx(1 / 3)
    assert np.isclose(alignment_at_1(a, a[[2, 0, 1]], torch.tensor([1, 2, 0])), 1.0)


@pytest.mark.parametrize("noise", [0.0, 0.3, 1.0, 100.0])
def test_alignment_at_1_equals_brute_force_nearest_neighbours(noise):
    """Elimination by blocks gives the brute-force P@1, from perfectly aligned to unrelated embeddings."""
    from xlt_helpers.alignment import nearest_neighbours

    g = torch.Generator().manual_seed(1)
    n, m, d = 1500, 3000, 8                            # several candidate blocks, low d: many near neighbours
    derived = torch.randn(m, d, generator=g)
    twin = torch.randperm(m, generator=g)[:n]
    orig = derived[twin] + noise * torch.randn(n, d, generator=g)
    brute = float((nearest_neighbours(orig, derived, chunk=256) == twin).float().mean())
    assert alignment_at_1(orig, derived, twin) == brute
    if noise == 0.0:
        assert brute == 1.0
    if noise == 100.0:
        assert brute < 0.01


def test_alignment_at_1_ties_go_to_the_lower_index_as_in_argmax():
    derived = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])   # rows 0 and 1 identical
    q = torch.tensor([[2.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
    assert alignment_at_1(q, derived, torch.tensor([0, 1, 2])) == pytest.approx(2 / 3)  # twin 1 loses to row 0
    assert alignment_at_1(q, derived, torch.tensor([0, 0, 2])) == 1.0
