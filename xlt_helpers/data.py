"""Loading the staged corpora and task data, driven by the registry ``languages.yaml``.

Which file serves which purpose for which language lives only in ``xlt_helpers/languages.yaml``
(override its location with ``$XLT_LANGUAGES_FILE``); this module knows formats and tasks, never
languages.  Every problem with input data raises :class:`~xlt_helpers.errors.DataFormatError`
naming the file, the 1-based line and what was expected; unknown task/split/language/domain names
raise :class:`ValueError` listing the valid choices.

Text normalisation: every word, sentence, premise and hypothesis is returned in Unicode NFC
(``TEXT_NORMALIZATION``).  The staged files disagree otherwise: UD HDTB v1 (Hindi POS train) and
the Hindi XNLI files use precomposed nukta letters (e.g. U+095C) where XTREME udpos / WikiANN /
the Hindi pretraining text use the NFC (decomposed) form, so without it the same Hindi word would
have two spellings across train and test.

Label sets and what the data really contains (checked on every registered file):

* XNLI: only ``entailment|neutral|contradiction`` (balanced, 1670/830 per class).
* NER: only the 7 IOB2 tags of ``tasks.NER_TAGS``.
* POS: only the 17 UD v2 UPOS tags, including ``X`` (frequent in Arabic PADT: 13,718 of 191,869
  training tokens, where PADT tags many foreign names X, while the PUD half of the Arabic test set
  uses PROPN) and ``SYM``.  ``_`` never occurs on a word line of the registered files (it only
  appears on multiword-token range lines, which are skipped), so ``_`` is *not* a valid tag and is
  reported as an error.  UD v1 HDTB writes ``CONJ``; the registry renames it to ``CCONJ``
  (``tag_map``).
* QA (SQuAD JSON): every question has at least one answer whose text sits at ``answer_start`` in
  its context.  The staged TyDiQA-GoldP *dev* files have their answers blanked (``text: ""``) by
  XTREME: they are unlabelled and refused (only the English TyDiQA *train* file is usable).
* Retrieval (Tatoeba): line ``i`` of a pair's two files are translations of each other; a
  ``parallel:`` key of the registry entry names the other side (``{en: retrieval/...eng}``).
"""
from __future__ import annotations

import copy
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml

from . import strict_yaml
from .config import data_dir
from .errors import DataFormatError
from .tasks import NLI_LABELS, TASKS, UPOS_TAGS

#: Unicode normal form applied to all returned text (None: leave the bytes as they are).
TEXT_NORMALIZATION: str | None = "NFC"

REGISTRY_PATH = Path(__file__).resolve().parent / "languages.yaml"

_PRETRAIN_FORMATS = ("sentence_per_line",)
SPLITS: tuple[str, ...] = ("train", "dev", "test")  # the split names a task entry of languages.yaml may use


@dataclass(frozen=True)
class TaggedSentence:
    """One sentence of a token-tagging task: ``words[i]`` carries tag ``tags[i]``."""

    words: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class NLIPair:
    """One NLI example; ``label`` indexes :data:`NLI_LABELS`."""

    premise: str
    hypothesis: str
    label: int


@dataclass(frozen=True)
class QAExample:
    """One extractive-QA question: ``answers`` are ``(text, char start in context)`` pairs (>= 1)."""

    id: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]


# ----------------------------------------------------------------------------------------- helpers

def normalize_text(text: str) -> str:
    """Text as every loader returns it (Unicode ``TEXT_NORMALIZATION``), so strings from two readers compare."""
    return unicodedata.normalize(TEXT_NORMALIZATION, text) if TEXT_NORMALIZATION else text


def _check_limit(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ValueError(f"{name} must be None or a non-negative int, got {value!r}")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, line without its line end)``; lines end only at ``\\n``.

    Decoded line by line, so a bad byte is reported on its own line and never stops a read that
    ends (``max_*``) before it.
    """
    if not path.is_file():
        raise DataFormatError(path, None, "an existing file (registered in xlt_helpers/languages.yaml; "
                                          "is XLT_DATA_DIR right? see MANIFEST.md)")
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataFormatError(path, lineno, "UTF-8 text", str(exc)) from exc
            yield lineno, line.rstrip("\r\n")


def _ncols(n: int) -> str:
    return f"{n} tab-separated column{'s' if n != 1 else ''}"


# ----------------------------------------------------------------------------------------- parsers

def read_sentence_lines(paths: Iterable[str | Path], max_sentences: int | None = None) -> list[str]:
    """Non-blank lines of ``paths`` (in order), stripped; reads no further than ``max_sentences``."""
    _check_limit("max_sentences", max_sentences)
    out: list[str] = []
    if max_sentences == 0:
        return out
    for path in paths:
        for _, line in _lines(Path(path)):
            line = line.strip()
            if line:
                out.append(normalize_text(line))
                if max_sentences is not None and len(out) >= max_sentences:
                    return out
    return out


def read_xnli_tsv(path: str | Path, max_examples: int | None = None) -> list[NLIPair]:
    """Parse ``premise<TAB>hypothesis<TAB>label`` lines (no header); blank lines are skipped."""
    _check_limit("max_examples", max_examples)
    path = Path(path)
    index = {name: i for i, name in enumerate(NLI_LABELS)}
    out: list[NLIPair] = []
    if max_examples == 0:
        return out
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 3:
            hint = " (premise<TAB>hypothesis<TAB>label"
            hint += "; this file looks unlabelled, a labelled file is needed)" if len(cols) == 2 else ")"
            raise DataFormatError(path, lineno, _ncols(3) + hint, f"{len(cols)} columns: {line}")
        premise, hypothesis, label = cols[0].strip(), cols[1].strip(), cols[2].strip()
        if not premise or not hypothesis:
            raise DataFormatError(path, lineno, "a non-empty premise and hypothesis", line)
        if label not in index:
            raise DataFormatError(path, lineno, "an NLI label in " + "|".join(NLI_LABELS), label)
        out.append(NLIPair(normalize_text(premise), normalize_text(hypothesis), index[label]))
        if max_examples is not None and len(out) >= max_examples:
            break
    return out


def _tagged_sentences(path: Path, max_examples: int | None,
                      parse_line: Callable[[int, str], tuple[str, str] | None]) -> list[TaggedSentence]:
    """Group ``(word, tag)`` lines into sentences at blank lines; ``parse_line`` validates one line
    (raising DataFormatError) and returns None for lines that carry no word (comments, ranges)."""
    out: list[TaggedSentence] = []
    if max_examples == 0:
        return out
    words: list[str] = []
    tags: list[str] = []
    for lineno, line in _lines(path):
        if not line.strip():
            if words:
                out.append(TaggedSentence(tuple(words), tuple(tags)))
                words, tags = [], []
                if max_examples is not None and len(out) >= max_examples:
                    return out
            continue
        parsed = parse_line(lineno, line)
        if parsed is not None:
            words.append(normalize_text(parsed[0]))
            tags.append(parsed[1])
    if words:
        out.append(TaggedSentence(tuple(words), tuple(tags)))
    return out


def read_token_tsv(
    path: str | Path,
    labels: Iterable[str],
    max_examples: int | None = None,
    token_prefix: str | None = None,
    tag_map: dict[str, str] | None = None,
) -> list[TaggedSentence]:
    """Parse ``token<TAB>tag`` lines, blank line between sentences.

    ``token_prefix`` (WikiANN's ``"en:"`` etc.) must start every token and is stripped;
    ``tag_map`` renames tags before they are checked against ``labels``.
    """
    _check_limit("max_examples", max_examples)
    path = Path(path)
    valid = frozenset(labels)
    tag_map = tag_map or {}

    def parse_line(lineno: int, line: str) -> tuple[str, str]:
        cols = line.split("\t")
        if len(cols) != 2:
            hint = " (token<TAB>tag"
            hint += "; this file looks unlabelled, a labelled file is needed)" if len(cols) == 1 else ")"
            raise DataFormatError(path, lineno, _ncols(2) + hint, f"{len(cols)} column(s): {line}")
        word, tag = cols[0], cols[1].strip()
        if token_prefix:
            if not word.startswith(token_prefix):
                raise DataFormatError(path, lineno, f"a token starting with {token_prefix!r}", word)
            word = word[len(token_prefix):]
        if not word.strip():
            raise DataFormatError(path, lineno, "a non-empty token", line)
        tag = tag_map.get(tag, tag)
        if tag not in valid:
            raise DataFormatError(path, lineno, "a tag in " + "|".join(sorted(valid)), tag)
        return word, tag

    return _tagged_sentences(path, max_examples, parse_line)


def read_conllu(
    path: str | Path,
    labels: Iterable[str] = UPOS_TAGS,
    max_examples: int | None = None,
    tag_map: dict[str, str] | None = None,
) -> list[TaggedSentence]:
    """Parse CoNLL-U into (FORM, UPOS) sentences.

    ``#`` lines are comments; multiword-token ranges (``1-2``) and empty nodes (``1.1``) are skipped;
    every other non-blank line must have 10 tab-separated columns and an integer ID.
    (Dependency trees are read by ``xlt_helpers.syntax.read_conllu``.)
    """
    _check_limit("max_examples", max_examples)
    path = Path(path)
    valid = frozenset(labels)
    tag_map = tag_map or {}
    seen = [0, -1]  # the last word ID of the sentence, the last line number given to parse_line

    def parse_line(lineno: int, line: str) -> tuple[str, str] | None:
        if lineno != seen[1] + 1:  # a blank line came before: a new sentence
            seen[0] = 0
        seen[1] = lineno
        if line.startswith("#"):
            return None
        cols = line.split("\t")
        if len(cols) != 10:
            raise DataFormatError(path, lineno, _ncols(10) + " (CoNLL-U: ID FORM LEMMA UPOS XPOS FEATS "
                                  "HEAD DEPREL DEPS MISC)", f"{len(cols)} column(s): {line}")
        tok_id = cols[0]
        if re.fullmatch(r"[1-9]\d*-[1-9]\d*|\d+\.[1-9]\d*", tok_id):
            return None
        if not re.fullmatch(r"[1-9]\d*", tok_id):
            raise DataFormatError(path, lineno, "an integer word ID from 1, a range like 1-2 or an empty node like 1.1",
                                  tok_id)
        seen[0] += 1  # IDs count 1, 2, ... within a sentence: a duplicate, gap or missing blank line is refused
        if int(tok_id) != seen[0]:
            raise DataFormatError(path, lineno, f"word ID {seen[0]} (IDs count up from 1 in each sentence)", tok_id)
        word, tag = cols[1], tag_map.get(cols[3], cols[3])
        if not word:
            raise DataFormatError(path, lineno, "a non-empty FORM", line)
        if tag not in valid:
            raise DataFormatError(path, lineno, "a UPOS tag in " + "|".join(sorted(valid)), tag)
        return word, tag

    return _tagged_sentences(path, max_examples, parse_line)


def _nfc_answer(path: Path, where: str, context: str, norm_context: str, text: str, start: int) -> tuple[str, int]:
    """Move an answer to the NFC context: its start is the length of the normalised prefix."""
    if not TEXT_NORMALIZATION:
        return text, start
    new_text, new_start = normalize_text(text), len(normalize_text(context[:start]))
    if norm_context[new_start:new_start + len(new_text)] != new_text:
        raise DataFormatError(path, None, f"{where}: an answer that stays in place under {TEXT_NORMALIZATION} "
                                          "normalisation of its context", text)
    return new_text, new_start


def read_squad_json(path: str | Path, max_examples: int | None = None) -> list[QAExample]:
    """Parse SQuAD-v1.1-style JSON (``{"data": [{"paragraphs": [{"context", "qas": [...]}]}]}``).

    Every question needs a non-empty ``id`` and ``question`` and at least one answer with a non-empty
    ``text`` found at ``answer_start`` in the context (checked, so spans can be trusted downstream).
    Errors name the JSON position (``data[i].paragraphs[j].qas[k]``); a JSON syntax error its line.
    """
    _check_limit("max_examples", max_examples)
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "an existing file (registered in xlt_helpers/languages.yaml; "
                                          "is XLT_DATA_DIR right? see MANIFEST.md)")
    try:
        raw = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, None, "UTF-8 JSON", str(exc)) from exc
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, exc.lineno, "valid JSON", exc.msg) from exc
    out: list[QAExample] = []
    if max_examples == 0:
        return out

    def need(cond: bool, where: str, expected: str, found: Any) -> None:
        if not cond:
            raise DataFormatError(path, None, f"{where}: {expected}", repr(found)[:80])

    need(isinstance(raw, dict) and isinstance(raw.get("data"), list), "top level",
         'an object with a "data" list (SQuAD format)', type(raw).__name__ if not isinstance(raw, dict) else list(raw))
    for i, article in enumerate(raw["data"]):
        need(isinstance(article, dict) and isinstance(article.get("paragraphs"), list), f"data[{i}]",
             'an object with a "paragraphs" list', article)
        for j, para in enumerate(article["paragraphs"]):
            where = f"data[{i}].paragraphs[{j}]"
            need(isinstance(para, dict) and isinstance(para.get("context"), str) and para["context"].strip()
                 and isinstance(para.get("qas"), list), where, 'an object with a non-empty "context" and a "qas" list',
                 para)
            context = para["context"]
            norm_context = normalize_text(context)
            for k, qa in enumerate(para["qas"]):
                wq = f"{where}.qas[{k}]"
                need(isinstance(qa, dict), wq, "an object", qa)
                need(isinstance(qa.get("id"), str) and qa["id"] != "", wq, 'a non-empty string "id"', qa.get("id"))
                need(isinstance(qa.get("question"), str) and qa["question"].strip() != "", wq,
                     'a non-empty "question"', qa.get("question"))
                answers = qa.get("answers")
                need(isinstance(answers, list) and len(answers) > 0, wq,
                     'a non-empty "answers" list (SQuAD v1.1: every question is answerable)', answers)
                golds = []
                for n, ans in enumerate(answers):
                    wa = f"{wq}.answers[{n}]"
                    need(isinstance(ans, dict) and isinstance(ans.get("text"), str)
                         and isinstance(ans.get("answer_start"), int) and not isinstance(ans.get("answer_start"), bool),
                         wa, 'an object with a string "text" and an int "answer_start"', ans)
                    text, start = ans["text"], ans["answer_start"]
                    need(text.strip() != "", wa, "a non-empty answer text (this file looks unlabelled, "
                                                 "a labelled file is needed)", text)
                    need(0 <= start and context[start:start + len(text)] == text, wa,
                         f"the answer text at answer_start {start} of the context", context[max(0, start):start + len(text)])
                    golds.append(_nfc_answer(path, wa, context, norm_context, text, start))
                out.append(QAExample(qa["id"], normalize_text(qa["question"].strip()), norm_context, tuple(golds)))
                if max_examples is not None and len(out) >= max_examples:
                    return out
    return out


def read_parallel_lines(path_a: str | Path, path_b: str | Path, max_sentences: int | None = None
                        ) -> tuple[list[str], list[str]]:
    """Line-aligned translations (Tatoeba): line ``i`` of ``path_a`` translates line ``i`` of ``path_b``.

    Both files must have the same number of lines and no blank line (a blank line would shift the
    alignment of everything after it).
    """
    _check_limit("max_sentences", max_sentences)
    a, b = [], []
    for side, path in ((a, Path(path_a)), (b, Path(path_b))):
        for lineno, line in _lines(path):
            if max_sentences is not None and len(side) >= max_sentences:
                break
            if not line.strip():
                raise DataFormatError(path, lineno, "a sentence on every line (line-aligned translations)", line)
            side.append(normalize_text(line.strip()))
    if len(a) != len(b):
        raise DataFormatError(path_b, None, f"as many lines as {Path(path_a).name} ({len(a)})", f"{len(b)} lines")
    return a, b


# ---------------------------------------------------------------------------------------- registry

_registry_cache: dict[tuple[str, int], dict[str, Any]] = {}


def registry_path() -> Path:
    """The registry file: ``$XLT_LANGUAGES_FILE`` or ``xlt_helpers/languages.yaml``."""
    env = os.environ.get("XLT_LANGUAGES_FILE")
    return Path(env).expanduser().resolve() if env else REGISTRY_PATH


def _check_inside_data_dir(reg: Path, where: str, path: str) -> None:
    """Refuse a registered path that is absolute or climbs out of the data directory with ``..``: every file
    the toolkit reads is in the data directory, so that a registry can be shared with it (symbolic links
    inside the directory are the owner's choice and are followed)."""
    parts = PurePosixPath(path.replace("\\", "/")).parts
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            break
    if path.startswith(("/", "\\")) or PureWindowsPath(path).drive or depth < 0:
        raise DataFormatError(reg, None, f"{where}: a path relative to the data directory that stays inside it",
                              path)


def _file_entry(reg: Path, where: str, entry: Any, formats: tuple[str, ...]) -> dict[str, Any]:
    """Validate one ``{path(s), format, ...}`` entry and return it with ``paths`` as a list."""
    expected = f"{where}: a mapping with 'path' or 'paths' and 'format' (one of {', '.join(formats)})"
    if not isinstance(entry, dict):
        raise DataFormatError(reg, None, expected, repr(entry))
    paths = entry.get("paths", entry.get("path"))
    if isinstance(paths, str):
        paths = [paths]
    if not paths or not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise DataFormatError(reg, None, expected, repr(entry))
    for p in paths:
        _check_inside_data_dir(reg, f"{where}.path", p)
    if entry.get("format") not in formats:
        raise DataFormatError(reg, None, expected, repr(entry.get("format")))
    tag_map = entry.get("tag_map", {})
    if not isinstance(tag_map, dict):
        raise DataFormatError(reg, None, f"{where}.tag_map: a mapping OLD: NEW", repr(tag_map))
    parallel = entry.get("parallel", {})
    if not isinstance(parallel, dict) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                 for k, v in parallel.items()):
        raise DataFormatError(reg, None, f"{where}.parallel: a mapping LANGUAGE: PATH of line-aligned "
                                         "translations", repr(parallel))
    for other, p in parallel.items():
        _check_inside_data_dir(reg, f"{where}.parallel.{other}", p)
    clean = {k: v for k, v in entry.items() if k != "path"}
    clean["paths"] = list(paths)
    return clean


def _validate_registry(reg: Path, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise DataFormatError(reg, None, "a mapping of language codes to entries", repr(raw)[:80])
    out: dict[str, Any] = {}
    for lang, spec in raw.items():
        if not isinstance(spec, dict):
            raise DataFormatError(reg, None, f"{lang}: a mapping", repr(spec))
        spec = dict(spec)
        for key in [k for k in spec if str(k).startswith("pretrain")]:
            spec[key] = _file_entry(reg, f"{lang}.{key}", spec[key], _PRETRAIN_FORMATS)
        tasks = spec.get("tasks", {})
        if not isinstance(tasks, dict):
            raise DataFormatError(reg, None, f"{lang}.tasks: a mapping task -> splits", repr(tasks))
        checked: dict[str, Any] = {}
        for task, splits in tasks.items():
            if task not in TASKS:
                raise DataFormatError(reg, None, f"{lang}.tasks: task names among {', '.join(TASKS)}", task)
            if not isinstance(splits, dict) or not splits:
                raise DataFormatError(reg, None, f"{lang}.tasks.{task}: a mapping split -> file entry", repr(splits))
            for split in splits:  # a typo such as `trian` would silently skip the task's cells
                if split not in SPLITS:
                    raise DataFormatError(reg, None, f"{lang}.tasks.{task}: splits among {', '.join(SPLITS)}",
                                          str(split))
            checked[task] = {split: _file_entry(reg, f"{lang}.tasks.{task}.{split}", e, TASKS[task].formats)
                             for split, e in splits.items()}
        spec["tasks"] = checked
        out[str(lang)] = spec
    return out


def _registry() -> dict[str, Any]:
    reg = registry_path()
    if not reg.is_file():
        raise DataFormatError(reg, None, "the language registry file (languages.yaml)")
    key = (str(reg), reg.stat().st_mtime_ns)
    if key not in _registry_cache:
        try:
            raw = strict_yaml.load(reg.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            line, problem = strict_yaml.error_line(exc)
            raise DataFormatError(reg, line, "valid YAML with each key once", problem) from exc
        _registry_cache.clear()
        _registry_cache[key] = _validate_registry(reg, raw)
    return _registry_cache[key]


def languages() -> list[str]:
    """Registered language codes, in registry order."""
    return list(_registry())


def language_spec(language: str) -> dict:
    """A copy of the registry entry for ``language`` (``ValueError`` listing known codes if unknown)."""
    reg = _registry()
    if language not in reg:
        raise ValueError(f"unknown language {language!r}: known languages are {', '.join(reg)} "
                         f"(registry {registry_path()})")
    return copy.deepcopy(reg[language])


def label_names(task: str) -> tuple[str, ...]:
    """The label inventory of ``task`` (``tasks.TASKS``): NLI_LABELS, NER_TAGS or UPOS_TAGS."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: valid tasks are {', '.join(TASKS)}")
    return TASKS[task].labels


# ------------------------------------------------------------------------------------ public API

def pretrain_key(domain: str = "main") -> str:
    """The registry key of a pretraining corpus: ``pretrain`` (domain ``main``) or ``pretrain_<domain>``."""
    return "pretrain" if domain == "main" else f"pretrain_{domain}"


def load_pretraining_corpus(language: str, domain: str = "main", max_sentences: int | None = None) -> list[str]:
    """Sentences (non-blank lines, stripped, NFC) of the ``domain`` corpus of ``language``.

    ``domain="main"`` reads the registry key ``pretrain``, any other ``d`` reads ``pretrain_<d>``
    (e.g. ``"other_domain"``).  Files are concatenated in registry order and reading stops as soon
    as ``max_sentences`` sentences are collected.
    """
    spec = language_spec(language)
    key = pretrain_key(domain)
    if key not in spec:
        have = ["main" if k == "pretrain" else k[len("pretrain_"):] for k in spec if k.startswith("pretrain")]
        raise ValueError(f"unknown pretraining domain {domain!r} for {language!r}: "
                         f"valid domains are {', '.join(have) or '(none)'}")
    paths = [data_dir() / p for p in spec[key]["paths"]]
    sentences = read_sentence_lines(paths, max_sentences)
    if not sentences and max_sentences != 0:
        raise _empty_corpus(language, key, paths)
    return sentences


def check_pretraining_corpus(language: str, domain: str = "main") -> None:
    """Refuse, naming its files, a registered pretraining corpus without one sentence (reads each file only
    up to its first non-blank line: cheap enough to run before a grid starts)."""
    key = "pretrain" if domain == "main" else f"pretrain_{domain}"
    spec = language_spec(language)
    if key not in spec:
        return  # load_pretraining_corpus names the missing domain
    paths = [data_dir() / p for p in spec[key]["paths"]]
    for path in paths:
        if any(line.strip() for _, line in _lines(path)):
            return
    raise _empty_corpus(language, key, paths)


def _empty_corpus(language: str, key: str, paths: list[Path]) -> DataFormatError:
    shown = paths[0] if len(paths) == 1 else ", ".join(map(str, paths))
    return DataFormatError(shown, None, f"at least one sentence in the {language}.{key} corpus (one sentence "
                                        "per line)", "only blank lines" if any(p.stat().st_size for p in paths)
                                        else "an empty file")


def _split_entry(task: str, language: str, split: str) -> dict[str, Any]:
    label_names(task)
    spec = language_spec(language)
    tasks = spec["tasks"]
    if task not in tasks:
        having = [lang for lang in languages() if task in language_spec(lang)["tasks"]]
        raise ValueError(f"language {language!r} has no {task!r} data: languages with it are "
                         f"{', '.join(having) or '(none)'}; tasks of {language!r}: {', '.join(tasks) or '(none)'}")
    if split not in tasks[task]:
        raise ValueError(f"unknown split {split!r} for {task}/{language}: valid splits are "
                         f"{', '.join(tasks[task])}")
    return tasks[task][split]


def task_files(task: str, language: str, split: str) -> tuple[str, list[Path]]:
    """The registered format and the files (in the data directory) of one task split."""
    entry = _split_entry(task, language, split)
    return entry["format"], [data_dir() / rel for rel in entry["paths"]]


def has_task(task: str, language: str, splits: Iterable[str] = ("train", "test")) -> bool:
    """Whether ``language`` registers every split of ``splits`` for ``task``."""
    label_names(task)
    tasks = language_spec(language)["tasks"]
    return task in tasks and all(s in tasks[task] for s in splits)


def load_task(
    task: str,
    language: str,
    split: str,
    max_examples: int | None = None,
    source: str = "local",
) -> list[TaggedSentence] | list[NLIPair] | list[QAExample] | list[str]:
    """Examples of ``task`` for ``language``/``split``: xnli -> NLIPair; ner, pos -> TaggedSentence;
    qa -> QAExample; retrieval -> sentences (str).

    ``source="local"`` parses the staged files named in the registry (several files are read in
    order); ``source="hub"`` loads the registry's ``hub`` entry through ``datasets.load_dataset``
    (needs ``pip install datasets`` and ``XLT_ONLINE=1`` unless the data is already in the HF cache).
    Reading stops after ``max_examples`` examples.
    """
    _check_limit("max_examples", max_examples)
    if source not in ("local", "hub"):
        raise ValueError(f"unknown source {source!r}: valid sources are local, hub")
    if source == "hub":
        return _load_hub(task, language, split, max_examples)
    entry = _split_entry(task, language, split)
    root = data_dir()
    labels = label_names(task)
    fmt = entry["format"]
    out: list = []
    for rel in entry["paths"]:
        left = None if max_examples is None else max_examples - len(out)
        if left == 0:
            break
        path = root / rel
        if fmt == "xnli_tsv":
            out.extend(read_xnli_tsv(path, left))
        elif fmt == "squad_json":
            out.extend(read_squad_json(path, left))
        elif fmt == "sentence_per_line":
            out.extend(read_sentence_lines([path], left))
        elif fmt == "conllu":
            out.extend(read_conllu(path, labels, left, entry.get("tag_map")))
        else:  # token_tsv / wikiann_iob (the registry check admits nothing else)
            prefix = entry.get("token_prefix", f"{language}:") if fmt == "wikiann_iob" else None
            out.extend(read_token_tsv(path, labels, left, prefix, entry.get("tag_map")))
    if not out and max_examples != 0:  # an empty split would hang training or score NaN
        raise DataFormatError(", ".join(str(root / rel) for rel in entry["paths"]), None,
                              f"at least one {task} example ({language}/{split})", "none")
    return out


def has_parallel(language: str, other: str) -> bool:
    """Whether the registry names line-aligned retrieval sentences between the two languages."""
    for a, b in ((language, other), (other, language)):
        if has_task("retrieval", a, ("test",)) and b in _split_entry("retrieval", a, "test").get("parallel", {}):
            return True
    return False


def parallel_sentences(language: str, other: str, max_sentences: int | None = None
                       ) -> tuple[list[str], list[str]] | None:
    """Line-aligned retrieval sentences of ``language`` and ``other`` (translations), or None if none.

    Looks for a ``parallel: {other: path}`` key on ``language``'s retrieval test entry, then the other
    way round; the Tatoeba English sides differ from pair to pair, so only pairs registered this way
    have a parallel set.
    """
    for a, b, swap in ((language, other, False), (other, language, True)):
        if not has_task("retrieval", a, ("test",)):
            continue
        entry = _split_entry("retrieval", a, "test")
        if b in entry.get("parallel", {}):
            root = data_dir()
            if len(entry["paths"]) != 1:
                raise DataFormatError(registry_path(), None, f"{a}.tasks.retrieval.test: one path beside "
                                      "'parallel'", repr(entry["paths"]))
            xa, xb = read_parallel_lines(root / entry["paths"][0], root / entry["parallel"][b], max_sentences)
            return (xb, xa) if swap else (xa, xb)
    return None


def _load_hub(task: str, language: str, split: str, max_examples: int | None) -> list:
    """The ``source="hub"`` path of :func:`load_task` (untested here: offline, no ``datasets``)."""
    label_names(task)
    spec = language_spec(language)
    hub = (spec.get("hub") or {}).get(task)
    if not isinstance(hub, dict) or "dataset" not in hub:
        raise ValueError(f"no hub entry for {task}/{language} in {registry_path()} "
                         f"(hub tasks of {language!r}: {', '.join(spec.get('hub') or {}) or '(none)'})")
    splits = hub.get("splits") or {}
    if split not in splits:
        raise ValueError(f"unknown split {split!r} for hub {task}/{language}: valid splits are {', '.join(splits)}")
    try:
        import datasets  # noqa: PLC0415  (optional dependency, imported only on demand)
    except ImportError as exc:
        raise ImportError(
            "source='hub' needs the Hugging Face 'datasets' package, which is not installed: "
            "run `pip install datasets` and set XLT_ONLINE=1 (before starting Python) to allow downloads; "
            "or use source='local' (the staged files)") from exc
    hub_split = splits[split]
    if max_examples is not None:
        hub_split = f"{hub_split}[:{max_examples}]"
    name = f"hub:{hub['dataset']}/{hub.get('config')}/{hub_split}"
    try:
        ds = datasets.load_dataset(hub["dataset"], hub.get("config"), split=hub_split, **(hub.get("kwargs") or {}))
    except Exception as exc:
        if os.environ.get("XLT_ONLINE") != "1":
            raise RuntimeError(f"could not load {name} offline ({exc}); set XLT_ONLINE=1 before starting "
                               "Python to allow the download") from exc
        raise
    fields = {**TASKS[task].hub_fields, **(hub.get("fields") or {})}
    labels = label_names(task)

    def names_of(column: str) -> Callable[[int], str] | None:
        feature = ds.features[column]
        feature = getattr(feature, "feature", feature)  # Sequence(ClassLabel) -> ClassLabel
        return feature.int2str if hasattr(feature, "int2str") else None

    out: list = []
    if task == "qa":  # SQuAD-format hub sets (xquad, mlqa, squad): answers = {text: [...], answer_start: [...]}
        for row_no, row in enumerate(ds, 1):
            ans = row[fields["answers"]]
            context = row[fields["context"]]
            pairs = list(zip(ans.get("text", []), ans.get("answer_start", [])))
            if not pairs or any(not t or context[s:s + len(t)] != t for t, s in pairs):
                raise DataFormatError(name, row_no, "answers whose text sits at answer_start", repr(ans)[:80])
            norm_context = normalize_text(context)
            golds = tuple(_nfc_answer(Path(name), f"row {row_no}", context, norm_context, t, s) for t, s in pairs)
            question = normalize_text(row[fields["question"]].strip())
            out.append(QAExample(str(row[fields["id"]]), question, norm_context, golds))
        return out
    if task == "xnli":
        to_name = names_of(fields["label"])
        for row_no, row in enumerate(ds, 1):
            raw = row[fields["label"]]
            label = to_name(raw) if to_name and isinstance(raw, int) and raw >= 0 else raw
            if label not in labels:
                raise DataFormatError(name, row_no, "an NLI label in " + "|".join(labels), repr(raw))
            out.append(NLIPair(normalize_text(row[fields["premise"]]), normalize_text(row[fields["hypothesis"]]),
                               labels.index(label)))
        return out
    to_name = names_of(fields["tags"])
    tag_map = (spec["tasks"].get(task, {}).get(split) or {}).get("tag_map") or {}
    for row_no, row in enumerate(ds, 1):
        words, tags = [], []
        for word, raw in zip(row[fields["words"]], row[fields["tags"]]):
            tag = to_name(raw) if to_name and isinstance(raw, int) else raw
            if task == "pos" and tag == "_":  # HF universal_dependencies: multiword-token range rows
                continue
            tag = tag_map.get(tag, tag)
            if tag not in labels:
                raise DataFormatError(name, row_no, "a tag in " + "|".join(labels), repr(tag))
            words.append(normalize_text(word))
            tags.append(tag)
        out.append(TaggedSentence(tuple(words), tuple(tags)))
    return out


def registry_fingerprint(language: str, *key: str) -> str:
    """Changes when the registry entry ``language.<key...>`` (e.g. ``pretrain``, ``tasks pos``) or a file it
    names (its content) changes: the data part of a step's folder key. A missing entry
    gives a fixed value (the step itself will say what is missing)."""
    from .fingerprint import files_fingerprint

    entry: Any = language_spec(language)
    for k in key:
        entry = entry.get(k) if isinstance(entry, dict) else None
    root = data_dir()
    paths: list[str] = []

    def walk(e: Any) -> None:
        if isinstance(e, dict):
            paths.extend(e.get("paths", []))
            paths.extend(e.get("parallel", {}).values())
            for k, v in e.items():
                if k not in ("paths", "parallel"):
                    walk(v)

    walk(entry)
    files = [root / p for p in paths]
    return files_fingerprint([f for f in files if f.exists()],
                             salt=[language, list(key), entry, [str(f) for f in files if not f.exists()]])
