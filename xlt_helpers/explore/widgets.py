"""The exploration notebooks' controls: ipywidgets dropdowns, sliders and text boxes over the views of
``languages``, ``model`` and ``results`` (thin: a view only arranges what those functions return).

A *view* takes the controls' values and returns what to show, in order: tables, figures, widgets and
lines of text (``show``). ``live`` draws a view under its controls and draws it again whenever one of
them changes. The first drawing happens in the notebook's cell, so a bad default fails the cell (and
papermill with it); a later error (a typo in a composition, a word not in the sentence) is shown in
place of the view, and the controls stay usable. ipywidgets is an optional dependency (the ``lab``
extra): it is imported when a control is made.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..extras import require
from ..tokenizer import split_words
from . import languages as lg
from . import model as md
from . import results as rs

WIDE = {"description_width": "initial"}


def _w():
    return require("ipywidgets", "lab", "the exploration notebooks' controls")


def heading(text: str):
    """A line of Markdown among a view's items."""
    from IPython.display import Markdown

    return Markdown(text)


def show(items: Sequence[Any]) -> None:
    """Display a view's items: a table with ``display``, a figure inline (then closed), text with ``print``."""
    import matplotlib.pyplot as plt
    from IPython.display import display
    from matplotlib.figure import Figure

    for item in items:
        if isinstance(item, str):
            print(item)
        elif isinstance(item, Figure):
            display(item)
            plt.close(item)
        elif item is not None:
            display(item)


def live(view: Callable[..., list], controls: Mapping[str, Any], hidden: Sequence[str] = ()):
    """``view(**values)`` under the controls (``hidden``: controls shown elsewhere, still followed), drawn now
    and again after every change of a control's value."""
    w = _w()
    from IPython.display import clear_output

    out = w.Output()

    def draw(items: list) -> None:
        with out:
            clear_output(wait=True)
            show(items)

    def redraw(_change: object = None) -> None:
        try:
            items = view(**{k: c.value for k, c in controls.items()})
        except Exception as exc:  # noqa: BLE001  a bad choice is said in place of the view
            import matplotlib.pyplot as plt

            plt.close("all")
            items = [f"{type(exc).__name__}: {exc}"]
        draw(items)

    draw(view(**{k: c.value for k, c in controls.items()}))
    for c in controls.values():
        c.observe(redraw, names="value")
    shown = [c for k, c in controls.items() if k not in hidden]
    return w.VBox([w.HBox(shown, layout=w.Layout(flex_flow="row wrap")), out]) if shown else out


def _dropdown(options: Sequence, value: Any, description: str):
    w = _w()
    options = list(options)
    return w.Dropdown(options=options if value in options else [value, *options], value=value,
                      description=description, style=WIDE)


def _text(value: str, description: str, width: str = "28em"):
    w = _w()
    return w.Text(value=value, description=description, continuous_update=False, style=WIDE,
                  layout=w.Layout(width=width))


# ------------------------------------------------------------------------------------ languages

def example_view(language: str, transformation: str, composition: str, task: str, example: int, preset: str,
                 n_examples: int) -> list:
    """One test example of ``task`` in the language and in T(language): the sentences, each word with its
    label, each sub-word with its id (an XNLI pair: premise, hypothesis and the model's input)."""
    s = lg.setup(language, preset)
    derived = s.derived(composition.strip() or transformation)
    examples = lg.task_examples(language, task, n_examples)
    ex = examples[min(example, len(examples) - 1)]
    trees = lg.trees_for(s, derived, task)
    title = heading(f"**{language}**, T = `{derived.spec}`, {task} test example {min(example, len(examples) - 1)} "
                    f"(V = {s.vocab_size}, {s.cfg.preset} scale)")
    if task == "xnli":
        items: list = [title, lg.nli_inputs(s, derived, ex, trees)]
        for part, text in (("premise", ex.premise), ("hypothesis", ex.hypothesis)):
            pair = lg.derive_sentence(s, derived, split_words(text), None, task, trees)
            items += [heading(f"*{part}*"), lg.sentence_lines(s, pair), lg.subword_table(s, pair)]
        return items
    pair = lg.derive_sentence(s, derived, ex.words, ex.tags, task, trees)
    return [title, lg.sentence_lines(s, pair), heading("*words: where each went, with its label*"),
            lg.word_table(s, pair), heading("*sub-words, position by position*"), lg.subword_table(s, pair)]


def corpus_view(language: str, transformation: str, composition: str, preset: str, n_sentences: int,
                syntax_sentences: int) -> list:
    """The sub-word overlap of the language's corpus and its derived form, and for Syntax the word-order
    statistics of source, target and transformed treebank."""
    s = lg.setup(language, preset)
    derived = s.derived(composition.strip() or transformation)
    items: list = [heading(f"**sub-word overlap**, the first {n_sentences} pretraining sentences and T = "
                           f"`{derived.spec}`"), lg.corpus_overlap(s, derived, n_sentences)]
    order = lg.word_order_table(language, derived.spec, s.cfg.pretrain.seed, syntax_sentences)
    if order is None:
        return items + ["no Syntax step in this composition: word-order statistics need one (e.g. syntax:hi)"]
    return items + [heading("**word order** (share of dependents before their head; `syntax-stats`)"), order]


def language_explorer(language: str = "en", transformation: str = "translit+inv", task: str = "pos",
                      example: int = 0, preset: str = "demo", n_examples: int = 20, overlap_sentences: int = 500,
                      syntax_sentences: int = 500):
    """Controls: language, transformation (a dropdown and a text box for any other composition), task and
    example; under them the example view and the corpus view (``example_view``, ``corpus_view``)."""
    from ..data import languages

    w = _w()
    lang = _dropdown(languages(), language, "language")
    spec = _dropdown(lg.TRANSFORMATIONS, transformation, "transformation")
    typed = _text("", "or type a composition", "20em")
    choose_task = _dropdown(lg.TASK_CHOICES, task, "task")
    last = max(n_examples - 1, 0)
    index = w.IntSlider(value=min(example, last), min=0, max=last, description="example", style=WIDE,
                        continuous_update=False)
    examples = live(lambda **v: example_view(**v, preset=preset, n_examples=n_examples),
                    {"language": lang, "transformation": spec, "composition": typed, "task": choose_task,
                     "example": index})
    corpora = live(lambda **v: corpus_view(**v, preset=preset, n_sentences=overlap_sentences,
                                           syntax_sentences=syntax_sentences),
                   {"language": lang, "transformation": spec, "composition": typed},
                   hidden=("language", "transformation", "composition"))
    return w.VBox([examples, corpora])


# ------------------------------------------------------------------------------------ a model

def _folder_label(folder: Path) -> str:
    meta = md.model_meta(folder)
    kind = meta.get("transformation") or meta.get("second_language") or "monolingual"
    return f"{meta.get('config', {}).get('preset', '?')} · {meta.get('language')} · {kind} · {folder}"


def model_explorer(model_dir: str | Path, words: str = "the, of, and, city, war", word: str = "city",
                   sentence: str = "The city was founded in the year 1850 .", mask_word: str = "city", k: int = 8):
    """Controls: the model folder (the given one and every run folder), the words of the PCA, a word for
    nearest neighbours, a sentence and the word to mask; under them the loss curve, the PCA of the words and
    their twins, the neighbours, fill-mask in both languages and the per-layer similarity."""
    w = _w()
    folders = list(dict.fromkeys([Path(model_dir), *md.run_models()]))
    folder = w.Dropdown(options=[(_folder_label(f), str(f)) for f in folders], value=str(model_dir),
                        description="model", style=WIDE, layout=w.Layout(width="95%"))
    typed_words = _text(words, "words (PCA)", "30em")
    typed_word = _text(word, "neighbours of")
    typed_sentence = _text(sentence, "sentence", "36em")
    masked = _text(mask_word, "mask the word")

    def curve(model: str) -> list:
        meta = md.model_meta(model)
        loss, overlap = meta.get("final_loss"), meta.get("subword_overlap")
        return [heading(f"**{_folder_label(Path(model))}**: V = {meta['vocab_size']}, final loss "
                        f"{float('nan') if loss is None else loss:.3f}, sub-word overlap "
                        f"{float('nan') if overlap is None else overlap:.3f}"), md.loss_figure(model)]

    def pca(model: str, words: str) -> list:
        p = md.load(model)
        points = md.model_twin_points(p, words.split(","))
        return [md.twin_figure(points, f"{p.derived.language.spec}: words and their twins (PCA of both vocabularies)"),
                points.round(3)]

    def near(model: str, word: str) -> list:
        table = md.word_neighbours(md.load(model), word, k)
        return [table.pivot_table(index="rank", columns="vocabulary", values=["token", "cosine", "twin"],
                                  aggfunc="first").swaplevel(axis=1).sort_index(axis=1).round(3)]

    def fill(model: str, sentence: str, mask_word: str) -> list:
        table = md.fill_mask(md.load(model), sentence, mask_word, k)
        return [table.pivot_table(index="rank", columns="language", values=["token", "probability", "gold"],
                                  aggfunc="first").swaplevel(axis=1).sort_index(axis=1).round(3)]

    def layers(model: str, sentence: str) -> list:
        table = md.layer_similarity(md.load(model), sentence)
        return [md.layer_figure(table), table.round(3)]

    sections = [
        ("Loss curve", curve, {}),
        ("Words and their twins", pca, {"words": typed_words}),
        ("Nearest neighbours in both vocabularies", near, {"word": typed_word}),
        ("Fill-mask in the original and the derived language", fill, {"sentence": typed_sentence,
                                                                        "mask_word": masked}),
        ("Layer by layer: the sentence and its derived form", layers, {"sentence": typed_sentence}),
    ]
    boxes = [folder]
    for title, view, controls in sections:
        hidden = ("model",) + (("sentence",) if title.startswith("Layer") else ())
        boxes += [w.HTML(f"<h3>{title}</h3>"), live(view, {"model": folder, **controls}, hidden=hidden)]
    return w.VBox(boxes)


# ------------------------------------------------------------------------------------ results

def cells_view(report_dir: str, **chosen: str) -> list:
    """The chosen cells with their intervals (a table) and the report's figures of them."""
    report = rs.load(report_dir)
    cells = rs.chosen_cells(report.summary, chosen)
    if cells.empty:
        return ["no cell matches these filters"]
    languages = sorted(set(rs.filter_cells(report.summary, chosen).language))
    return [heading(f"**{len(cells)} cells**, averaged over {', '.join(languages)} (95% intervals)"),
            rs.cell_table(cells), *rs.figures(cells)]


def verdict_view(report_dir: str, verdict: int) -> list:
    """One scorecard test and what it rests on (``results.evidence``)."""
    if verdict is None:
        return ["no scorecard test in this grid"]
    found = rs.evidence(rs.load(report_dir), verdict)
    items: list = []
    for name, table in found.items():
        items += [heading(f"*{name}*"), table if len(table) else "none"]
    return items


def report_view(report_dir: str) -> list:
    """Filters over the report's summary, and its verdicts one click away: two live views."""
    w = _w()
    report = rs.load(report_dir)
    options = rs.choices(report.summary)
    filters = {k: _dropdown([rs.ALL, *options[k]], rs.ALL, k) for k in rs.FILTERS}
    tests = report.tests
    labels = rs.verdict_labels(tests)
    verdict = w.Dropdown(options=list(zip(labels, range(len(labels)))), value=0 if labels else None,
                         description="verdict", style=WIDE, layout=w.Layout(width="95%"))
    return [heading(f"**{report_dir}**: {len(report.df)} result rows, {len(report.summary)} cells, "
                    f"{len(tests)} scorecard tests"),
            live(lambda **v: cells_view(report_dir, **v), filters),
            w.HTML("<h3>Verdicts and their evidence</h3>"),
            live(lambda verdict: verdict_view(report_dir, verdict), {"verdict": verdict})]


def results_explorer(report_dir: str | Path):
    """Controls: the report folder (the given one and every other), filters by language, transformation,
    task, setting and variant, and a dropdown of the scorecard's verdicts; under them the cells with their
    intervals, the figures, and the evidence of the chosen verdict."""
    w = _w()
    folders = list(dict.fromkeys([str(report_dir), *map(str, rs.report_folders())]))
    folder = _dropdown(folders, str(report_dir), "report")
    folder.layout = w.Layout(width="95%")
    return live(report_view, {"report_dir": folder})

