"""The report's figures on hand-made cells: each draws what it should, with an error bar per bar, and
says nothing (None) when the grid has nothing to show."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from xlt_helpers.report import plots  # noqa: E402


def _cells(rows):
    return pd.DataFrame([{"transformation": t, "corpus_setting": c, "task": task, "setting": s, "metric": m,
                          "value": v, "ci_low": v - 0.02, "ci_high": v + 0.03} for t, c, task, s, m, v in rows])


def _bars(fig):
    return [p for ax in fig.axes for p in ax.patches]


def test_composition_figure_puts_each_composition_beside_its_parts():
    rows = [(t, "parallel", task, "delta", "delta_sup", v) for task in ("pos", "ner")
            for t, v in (("translit", -0.1), ("inv", -0.02), ("translit+inv", -0.3), ("perm", -0.05))]
    fig = plots.composition_figure(_cells(rows))
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "Transliteration, inv, and both"
    heights = sorted(round(p.get_height(), 3) for p in _bars(fig))
    assert heights == sorted([-0.1, -0.02, -0.3] * 2)
    assert len(fig.axes[0].lines) + len(fig.axes[0].collections) > 0  # error bars drawn
    assert plots.composition_figure(_cells(rows[:2])) is None


def test_delta_and_corpus_figures():
    rows = [("translit", c, "pos", "delta", m, v) for c, v in (("parallel", -0.1), ("nonparallel", -0.4))
            for m in ("delta_sup", "delta_mono")]
    rows += [("translit", c, "alignment", "none", "alignment_at_1", v) for c, v in (("parallel", 0.7), ("nonparallel", 0.0))]
    cells = _cells(rows)
    fig = plots.delta_figure(cells)
    assert [ax.get_title() for ax in fig.axes] == ["Delta_Sup = BZ - BS", "Delta_Mono = MZ - BZ"]
    fig = plots.corpus_figure(cells[cells.metric != "delta_mono"])
    assert len(_bars(fig)) == 4 and {t.get_text() for t in fig.axes[0].get_legend().get_texts()} == {"parallel", "nonparallel"}
    assert plots.corpus_figure(cells[cells.corpus_setting == "parallel"]) is None


def test_alignment_figure_has_a_panel_per_task():
    rng = np.random.default_rng(0)
    models = pd.DataFrame({"task": ["pos"] * 5 + ["ner"] * 5, "alignment_at_1": rng.random(10),
                           "delta_sup": rng.random(10) - 0.5})
    fig = plots.alignment_figure(models)
    assert len(fig.axes) == 2
    assert plots.alignment_figure(models.iloc[:0]) is None


def test_variants_figure_puts_objectives_side_by_side():
    rows = [{"variant": v, "transformation": t, "quantity": q, "value": val, "ci_low": val - 0.02, "ci_high": val + 0.02}
            for t in ("translit", "translit+inv")
            for v, d, p in (("mlm", -0.4, 0.7), ("mlm+align", -0.2, 0.95))
            for q, val in (("pos Delta_Sup", d), ("pos BZ", 0.5), ("alignment P@1", p))]
    rows.append({"variant": "mlm+align", "transformation": "translit", "quantity": "alignment P@1 (held-out pairs)",
                 "value": 0.9, "ci_low": 0.88, "ci_high": 0.92})
    fig = plots.variants_figure(pd.DataFrame(rows))
    assert [ax.get_title() for ax in fig.axes] == ["pos Delta_Sup", "alignment P@1", "alignment P@1 (held-out pairs)"]
    heights = [round(p.get_height(), 3) for p in fig.axes[0].patches]
    assert sorted(heights) == [-0.4, -0.4, -0.2, -0.2]
    assert plots.variants_figure(pd.DataFrame(rows)[lambda d: d.quantity == "pos BZ"]) is None
