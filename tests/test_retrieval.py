"""Sentence retrieval: accuracy@1 on constructed embeddings, middle-layer mean pooling, parallel Tatoeba data."""
import pytest
import torch
from transformers import RobertaConfig, RobertaModel

from xlt_helpers import data as D
from xlt_helpers.errors import DataFormatError
from xlt_helpers.retrieval import accuracy_at_1, middle_layer, retrieval_scores, sentence_embeddings


def test_accuracy_at_1_on_constructed_embeddings():
    src = torch.eye(3)
    assert accuracy_at_1(src, src) == 1.0
    assert accuracy_at_1(src, src[[1, 2, 0]]) == 0.0
    # cosine, not dot product: a long vector in the wrong direction does not win
    # (by dot product, [1, 0] would pick [10, 5] (10 > 1) and score 1/2; by cosine, 0.995 > 0.894)
    assert accuracy_at_1(torch.tensor([[1.0, 0], [0.5, 1]]), torch.tensor([[1.0, 0.1], [10, 5]])) == 1.0
    # asymmetric by hand: src0 -> tgt0 (cos 1 > 0.994), src1 -> tgt1 (0.11 > 0), src2 -> tgt2: 3/3;
    # tgt0 -> src0, tgt1 -> src0 (0.994 > 0.11) wrong, tgt2 -> src2: 2/3
    tgt = torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [0, 0, 1.0]])
    scores = retrieval_scores(src, tgt)
    assert scores["accuracy_src_to_tgt"] == 1.0
    assert scores["accuracy_tgt_to_src"] == pytest.approx(2 / 3)
    assert scores["accuracy"] == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="translations"):
        accuracy_at_1(src, tgt[:2])


def test_middle_layer_mean_pooling_skips_specials():
    assert [middle_layer(n) for n in (1, 2, 4, 8, 24)] == [1, 1, 2, 4, 12]
    torch.manual_seed(0)
    model = RobertaModel(RobertaConfig(vocab_size=50, hidden_size=8, num_hidden_layers=4, num_attention_heads=2,
                                       intermediate_size=16, max_position_embeddings=40, pad_token_id=1),
                         add_pooling_layer=False).eval()
    inputs = [[0, 10, 11, 12, 2], [0, 20, 2]]
    emb = sentence_embeddings(model, inputs)
    with torch.no_grad():
        states = model(input_ids=torch.tensor([inputs[0]]), output_hidden_states=True).hidden_states[2][0]
    torch.testing.assert_close(emb[0], states[1:4].mean(0))  # <s> and </s> left out; layer 2 of 4
    with torch.no_grad():  # padding in a batch does not change an embedding
        alone = model(input_ids=torch.tensor([inputs[1]]), output_hidden_states=True).hidden_states[2][0, 1]
    torch.testing.assert_close(emb[1], alone, atol=1e-5, rtol=1e-5)


def test_parallel_tatoeba_sides_are_line_aligned():
    en, fr = D.parallel_sentences("en", "fr")
    assert len(en) == len(fr) == 1000
    assert fr[0].startswith("Au commencement") and en[0].startswith("In the beginning")
    ar, en2 = D.parallel_sentences("ar", "en", max_sentences=5)
    assert len(ar) == len(en2) == 5 and en2 != en[:5]  # each pair file has its own English side
    assert D.has_parallel("hi", "en") and D.has_parallel("en", "hi")
    assert not D.has_parallel("fr", "ar") and D.parallel_sentences("fr", "ar") is None
    assert D.load_task("retrieval", "en", "test", max_examples=3) == en[:3]  # English = eng side of fra-eng


def test_parallel_reader_refuses_misaligned_files(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one\ntwo\n")
    b.write_text("un\n\ndeux\n")
    with pytest.raises(DataFormatError) as exc:
        D.read_parallel_lines(a, b)
    assert exc.value.line == 2 and "line-aligned" in str(exc.value)
    b.write_text("un\n")
    with pytest.raises(DataFormatError, match="as many lines as a.txt"):
        D.read_parallel_lines(a, b)
    b.write_text("un\ndeux\n")
    assert D.read_parallel_lines(a, b) == (["one", "two"], ["un", "deux"])
