"""Drop-in checkpoints: a saved model folder reads text in plain transformers exactly as the toolkit does,
runs the fill-mask pipeline at the model's full length in both languages, and writes the derived language."""
import json
import sys
import unicodedata

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Regex, pre_tokenizers
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

from xlt_helpers import hf_tokenizer, load_pretrained
from xlt_helpers.config import data_dir
from xlt_helpers.data import language_spec, normalize_text
from xlt_helpers.experiment import run_pretrain
from xlt_helpers.pretrained import DERIVED, XLT_TOKENIZER, model_languages, save_drop_in, toolkit_tokenizer
from xlt_helpers.run_config import resolve
from xlt_helpers.encoding import transform_texts
from xlt_helpers.tokenizer import encode_words, split_words
from xlt_helpers.transformations import BOS, EOS, MASK, N_SPECIAL

SENTENCES_PER_LANGUAGE = 50


@pytest.fixture(scope="module")
def model_dir(shared_runs, tmp_path_factory):
    """A test-scale model of English + translit+inv, the derived language with its own specials."""
    cfg = resolve("test", {"data.transformation": "translit+inv", "data.shift_special": True})
    out = tmp_path_factory.mktemp("dropin")
    run_pretrain(cfg, out, progress=False)  # the grid's pretraining step
    return out / "model"


@pytest.fixture(scope="module")
def sentences():
    """200 real sentences as the data files hold them (not normalised): 50 each of en, fr, ar, hi pretraining
    text, every 40th line of the first file."""
    out = []
    for lang in ("en", "fr", "ar", "hi"):
        path = data_dir() / language_spec(lang)["pretrain"]["paths"][0]
        lines = []
        with open(path, encoding="utf-8") as f:
            for k, line in enumerate(f):
                if line.strip() and k % 40 == 0:
                    lines.append(line.rstrip("\n"))
                if len(lines) == SENTENCES_PER_LANGUAGE:
                    break
        out += lines
    assert len(out) == 4 * SENTENCES_PER_LANGUAGE
    return out


def toolkit_ids(tok, text: str) -> list[int]:
    """The toolkit's ids of running text: as the loaders read it, its words, their sub-words, <s> ... </s>."""
    return [BOS, *encode_words(tok, split_words(normalize_text(text.strip())))[0], EOS]


def test_the_word_pattern_has_exactly_pythons_character_sets():
    """The Oniguruma classes hold exactly the code points of Python's \\s and of Unicode punctuation."""
    punct, white = hf_tokenizer.character_sets()
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    for chars in (punct, white):
        cls = Regex(f"[{hf_tokenizer._ranges(chars)}]")
        kept = pre_tokenizers.Split(cls, behavior="removed", invert=True).pre_tokenize_str(every)
        assert [ord(w) for w, _ in kept] == list(chars)
    assert 0x1C in white and 0x85 in white and 0xA0 in white and 0x3000 in white  # where engines disagree
    assert all(unicodedata.category(chr(c))[0] == "P" for c in punct) and len(punct) > 700


ALPHABET = st.sampled_from(list("ab,.'-()«»!?\u0301\u093f\u0915\u0627 \t\n\u00a0\x1c\u0085\u2028\u3000<>$1é"))


@given(st.text(ALPHABET, max_size=40))
@settings(max_examples=400, deadline=None)
def test_the_word_split_is_split_words(text):
    words = [w for w, _ in hf_tokenizer.word_splitter().pre_tokenize_str(text)]
    assert words == split_words(text)


def test_autotokenizer_gives_the_toolkits_ids_on_real_sentences(model_dir, sentences):
    tok = toolkit_tokenizer(model_dir)
    hf = AutoTokenizer.from_pretrained(str(model_dir))
    expected = [toolkit_ids(tok, s) for s in sentences]
    assert [hf(s)["input_ids"] for s in sentences] == expected
    assert hf(sentences)["input_ids"] == expected  # the batch path too
    # the example: four words, each with its space (a RoBERTa tokenizer splits "Hello," as `He`, `,`)
    words = tok.encode(["Hello", ",", "world", "."], is_pretokenized=True, add_special_tokens=False)
    assert hf.tokenize("Hello, world.") == words.tokens
    assert [t for t, w in zip(words.tokens, words.word_ids) if w == 1][0].startswith("Ġ")
    config = json.loads((model_dir / "config.json").read_text())
    assert hf.model_max_length == config["max_position_embeddings"] - 2 == 48


def test_fill_mask_runs_at_full_length_in_both_languages(model_dir, sentences):
    hf = AutoTokenizer.from_pretrained(str(model_dir))
    derived_hf = AutoTokenizer.from_pretrained(str(model_dir), subfolder=DERIVED)
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir))
    L = hf.model_max_length
    assert derived_hf.model_max_length == L

    # original: one <mask>, then words until exactly L tokens with <s> and </s>
    words, text = " ".join(sentences[:20]).split(), "<mask>"
    for w in words:
        if len(hf(text + " " + w)["input_ids"]) > L:
            break
        text += " " + w
    pad = next(t[1:] for t in hf.get_vocab() if t.startswith("Ġ") and t[1:].isalpha() and len(hf.tokenize(t[1:])) == 1)
    while len(hf(text)["input_ids"]) < L:
        text += " " + pad
    assert len(hf(text)["input_ids"]) == L
    fill = pipeline("fill-mask", model=model, tokenizer=hf)
    assert len(fill(text)) == 5
    assert len(fill(text + " " + text, tokenizer_kwargs={"truncation": True})) == 5  # longer: cut to L

    # derived: T(text) written as readable tokens, one of them masked, exactly L tokens with <s> and </s>
    _, _, derived = load_pretrained(model_dir)
    tokens = derived.write(" ".join(sentences[:20])).split()
    assert len(tokens) == L - 2
    tokens[3] = "<mask>"
    ids = derived_hf(" ".join(tokens))["input_ids"]
    assert len(ids) == L and ids[0] == derived.language.bos != BOS and ids[4] == MASK
    out = pipeline("fill-mask", model=model, tokenizer=derived_hf)(" ".join(tokens))
    assert len(out) == 5 and all(o["token_str"] in derived.readable or o["token_str"] == "" for o in out)

    # the positions end at L: one more token does not fit
    with torch.no_grad():
        model(torch.tensor([ids]))
        with pytest.raises((IndexError, RuntimeError)):  # out of the position table
            model(torch.tensor([ids + [ids[-1]]]))


def test_the_derived_round_trip_is_exact(model_dir, sentences):
    model, tokenizer, derived = load_pretrained(model_dir)
    assert type(model).__name__ == "RobertaForMaskedLM"
    tok, orig, lang = model_languages(model_dir, "translit+inv")
    V = tok.get_vocab_size()
    for s in sentences:
        ids = derived.encode(s)
        # what the toolkit feeds the model for this text in T(L) (as retrieval encodes it)
        body = transform_texts([normalize_text(s)], tok, lang)[0][:derived.max_length - 2]
        assert ids == [lang.bos, *body, lang.eos]
        # T = translit+inv: the original body, each id moved to its twin, read backwards
        original = toolkit_ids(tok, s)[1:-1]
        assert ids[1:-1] == [i + V for i in reversed(original)][:derived.max_length - 2]
        tokens = derived.tokens(ids)
        assert derived.ids(tokens) == ids
        assert all(t.startswith(hf_tokenizer.TWIN_MARK) for t in tokens)  # shift_special: <s> too
        assert derived.hf(derived.write(s))["input_ids"] == ids
        assert [t[1:] for t in tokens[1:-1]] == tokenizer.convert_ids_to_tokens(list(reversed(original)))[
            :derived.max_length - 2]
    with pytest.raises(ValueError, match="not a token"):
        derived.ids(["no such token"])


def test_the_model_card_and_an_older_folder(model_dir, tmp_path):
    card = (model_dir / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers")
    for part in ("translit+inv", "## How it was trained", "## Final loss", "## Alignment", "## How to load",
                 "## Grid configuration", "95% t interval", "AutoTokenizer.from_pretrained"):
        assert part in card
    assert json.loads(card.split("```json\n")[1].split("```")[0])["pretrain"]["steps"] == 12
    # a folder saved before drop-in files existed (its toolkit tokenizer in tokenizer.json) is upgraded in place
    old = tmp_path / "old"
    old.mkdir()
    for name in ("config.json", "model.safetensors", "xlt_meta.json"):
        (old / name).write_bytes((model_dir / name).read_bytes())
    (old / "tokenizer.json").write_text((model_dir / XLT_TOKENIZER).read_text())
    _, before, _ = load_pretrained(old)  # no drop-in files yet: built in memory
    save_drop_in(old)
    assert (old / XLT_TOKENIZER).read_text() == (model_dir / XLT_TOKENIZER).read_text()
    after = AutoTokenizer.from_pretrained(str(old))
    text = "A sentence, with punctuation."
    assert before(text)["input_ids"] == after(text)["input_ids"] == toolkit_ids(toolkit_tokenizer(old), text)
    assert toolkit_ids(toolkit_tokenizer(old), text)[1] >= N_SPECIAL


def test_save_models_keeps_bs_and_bz_as_drop_in_checkpoints(model_dir, tmp_path):
    from xlt_helpers.experiment import run_finetune_mono, run_transfer
    from xlt_helpers.finetune import evaluate_predictions
    from xlt_helpers.run_config import key_dict
    from xlt_helpers.encoding import load_encoded
    from xlt_helpers.tasks import get_task

    base = {"data.transformation": "translit+inv", "data.shift_special": True}
    cfg = resolve("test", {**base, "finetune.save_models": True})
    assert "save_models" not in key_dict(resolve("test", base), ("finetune",))["finetune"]  # old folders keep names
    assert key_dict(cfg, ("finetune",))["finetune"]["save_models"] is True

    mono = run_finetune_mono(cfg, "pos", model_dir, tmp_path / "mono")
    assert AutoTokenizer.from_pretrained(mono["model_dir"])("A test.")["input_ids"] == \
        toolkit_ids(toolkit_tokenizer(model_dir), "A test.")
    result = run_transfer(cfg, "pos", model_dir, tmp_path / "mono", tmp_path / "transfer")
    rows = {r["setting"]: r["value"] for r in result["rows"] if r["metric"] == "accuracy"}
    spec = get_task("pos")
    tok, _, lang = model_languages(model_dir, "translit+inv")
    test_d = load_encoded("pos", "en", "test", tok, lang, cfg.finetune.max_len, cfg.finetune.test_examples,
                          seed=cfg.finetune.seed)
    for setting in ("BZ", "BS"):
        folder = tmp_path / "transfer" / "models" / setting
        model, tokenizer, derived = load_pretrained(folder)
        assert type(model).__name__ == "RobertaForTokenClassification"
        assert model.config.id2label[0] == spec.labels[0]
        assert tokenizer("A test.")["input_ids"] == toolkit_ids(tok, "A test.")
        assert derived.encode("A test.") == load_pretrained(model_dir).derived.encode("A test.")
        # the saved model is the one that was scored
        assert evaluate_predictions(model, spec, test_d)[0]["accuracy"] == pytest.approx(rows[setting])
        card = (folder / "README.md").read_text()
        assert f"({setting}: trained on" in card and f"n = {len(test_d)} test examples" in card
    run_transfer(resolve("test", base), "pos", model_dir, tmp_path / "mono", tmp_path / "plain")
    assert not (tmp_path / "plain").exists()  # off by default: nothing saved
