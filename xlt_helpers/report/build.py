"""The report of one grid: a report folder's files in, each section's tables, lines and figures out.

``build(report_dir)`` reads the folder once (results.csv, summary.csv, intervals.csv, configs.csv,
failures.json, skipped.json, and the step folders beside it for predictions, losses and drift); the
aggregate notebook then shows one section per cell (``report.show("scorecard")``), under the section's
heading and explanation. A section is computed when it is shown, so that each figure appears under its own
heading. Every figure is also written to ``figures/<name>.png`` and ``.svg`` beside report.html; a table
row that comes from one step links that step's executed notebook (relative links).
"""
from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..labels import PAIR
from ..stats import format_interval
from . import (alignment_plots, alignment_study, calibration, chance, curves, intervals, narrative, plots, provenance,
               reference, regressions, results, scorecard, tables, targets)

FIGURES = "figures"  # the folder beside report.html that holds every figure as PNG and SVG


@dataclass(frozen=True)
class Figure:
    """A section's figure, drawn when the section is shown and written to ``figures/<name>.png`` and
    ``.svg`` (every figure has a name of its own: it is its file); ``otherwise``: the line shown when there
    is nothing to draw (``draw`` returned None)."""

    draw: Callable[[], Any]
    name: str
    otherwise: str = ""


@dataclass(frozen=True)
class Text:
    """A paragraph of Markdown (computed from the grid's numbers)."""

    markdown: str


@dataclass(frozen=True)
class Linked:
    """A table whose ``links`` columns hold HTML links (to step notebooks); every other text is escaped."""

    table: pd.DataFrame
    links: tuple[str, ...] = ("notebook",)

    def to_html(self) -> str:
        shown = self.table.copy()
        for c in shown.columns:
            if c not in self.links and shown[c].dtype == object:
                shown[c] = shown[c].map(lambda v: html.escape(v) if isinstance(v, str) else v)
        plain = isinstance(shown.index, pd.RangeIndex) and shown.index.name is None  # a row number: left out
        return shown.to_html(escape=False, na_rep="–", index=not plain)


def _json(path: Path) -> list:
    return json.loads(path.read_text()) if path.exists() else []


def _csv(path: Path) -> pd.DataFrame:
    """A table of the folder; an absent or empty file (an empty table written as one newline) is empty."""
    return pd.read_csv(path) if path.exists() and path.stat().st_size > 1 else pd.DataFrame()


def _shown(df: pd.DataFrame, estimate: str, low: str, high: str, column: str = "95% interval") -> pd.DataFrame:
    """``df`` with ``column``: each row's ``estimate [low, high]``, signed (differences and deltas)."""
    return df.assign(**{column: [format_interval(v, lo, hi, signed=True)
                                 for v, lo, hi in zip(df[estimate], df[low], df[high])]})


class Report:
    """The sections of one report folder (``SECTIONS``); ``show`` displays one in a notebook.
    ``grid_file``: the grid it ran (named with its hash in the provenance); ``finetune_cell``: the
    ``transformation/task`` whose fine-tuning loss is drawn (default: the grid's first); ``runs_dir``: the
    folder the step names are relative to (default: two levels up, where ``aggregate`` puts reports)."""

    def __init__(self, report_dir: str | Path, title: str = "", grid_file: str | None = None,
                 finetune_cell: str | None = None, runs_dir: str | Path | None = None):
        self.dir = Path(report_dir)
        self.title = title or self.dir.name
        self.grid_file, self.finetune_cell = grid_file, finetune_cell
        self.runs_dir = Path(runs_dir) if runs_dir else self.dir.parent.parent
        self._figures: dict[str, tuple[str, list[Path]]] = {}  # each figure shown: name -> (its section, its files)
        self.df = results.load_results(self.dir)
        self.summary = _csv(self.dir / "summary.csv")
        self.configs = _csv(self.dir / "configs.csv")
        self.runs = _csv(self.dir / "intervals.csv")
        self.failures, self.skipped = _json(self.dir / "failures.json"), _json(self.dir / "skipped.json")

    # ---------------------------------------------------------------------------- what the sections share
    @cached_property
    def cells(self) -> pd.DataFrame:
        """Cells averaged over languages (the main table's numbers)."""
        return intervals.average_languages(self.summary) if len(self.summary) else self.summary

    @cached_property
    def axes(self) -> list[str]:
        """Corpus setting and variant, where the grid varies them."""
        return tables.model_axes(self.summary)

    @cached_property
    def base(self) -> pd.DataFrame:
        """The cells of the first variant: the figures' and the scorecard's findings 1-4 (one per variant)."""
        return tables.first_variant(self.cells)

    @cached_property
    def models(self) -> pd.DataFrame:
        return regressions.alignment_vs_transfer(self.df)

    @cached_property
    def correlations(self) -> pd.DataFrame:
        if not len(self.models):
            return pd.DataFrame()
        return pd.concat([regressions.spearman_by_task(self.models, p) for p in regressions.predictors(self.models)],
                         ignore_index=True)

    @cached_property
    def checks(self) -> pd.DataFrame:
        """Every evaluation of every fine-tuning step: score, chance, collapsed (``chance.classifier_checks``)."""
        if not len(self.df):
            return pd.DataFrame(columns=chance.CHECK_COLUMNS)
        return chance.classifier_checks(self.df, self.runs_dir)

    @cached_property
    def health(self) -> pd.DataFrame:
        """Each classifier on its own test set against chance (``chance.classifier_health``)."""
        return chance.classifier_health(self.cells, self.checks)

    @cached_property
    def tests(self) -> pd.DataFrame:
        """The scorecard's tests, those built on a classifier at chance or collapsed made inconclusive."""
        corr = self.correlations
        # with the alignment study's measures: finding 5 per language, the first protocol, CI over configurations
        five = alignment_study.scorecard_correlations(self.associations[0]) if len(self.associations[0]) else None
        tests = scorecard.scorecard(self.cells, five if five is not None and len(five) else
                                    corr[corr.predictor == "alignment_at_1"] if len(corr) else None)
        return chance.gate(tests, self.health)

    @cached_property
    def reference(self) -> pd.DataFrame:
        """The reference measurements at this grid's scale(s) (docs/results/reference.csv)."""
        return reference.for_scales(reference.load_reference(), self.df.scale if len(self.df) else [])

    def notebook_link(self, step: str) -> str:
        """An HTML link from report.html to the executed notebook in ``step``'s folder (relative), '' if none
        (a step that failed leaves only ``partial.<notebook>``)."""
        folder = self.runs_dir / step if step else None
        found = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("partial.")) if folder else []
        if not found:
            return ""
        rel = os.path.relpath(found[0], self.dir)
        return f'<a href="{html.escape(rel)}">{html.escape(found[0].name)}</a>'

    def _one_step(self, index: list[str]) -> pd.Series:
        """Per key of ``index`` over the score rows, the link to its step's notebook when one step made them."""
        rows = self.df[self.df.setting.isin(results.SETTINGS)]
        steps = rows.groupby(index, sort=False).step.agg(lambda s: list(dict.fromkeys(s)))
        return steps.map(lambda s: self.notebook_link(s[0]) if len(s) == 1 else "")

    @cached_property
    def study(self) -> pd.DataFrame:
        """One row per model, protocol and task with every alignment measure (``alignment_study``)."""
        return alignment_study.measures_table(self.df, self.configs, self.runs) if len(self.df) else pd.DataFrame()

    @cached_property
    def associations(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Each measure against Delta_Sup, and the measures compared, with intervals from the bootstrap over
        configurations: only in a grid that measures beyond static P@1 (contextual measures or snapshots)."""
        metrics = self.df.metric.astype(str) if len(self.df) else pd.Series(dtype=str)
        beyond = metrics.str.match(alignment_study.LAYER_METRIC).any() or metrics.str.match(alignment_study.STEP_METRIC).any()
        if not (beyond and len(self.study)):
            return pd.DataFrame(), pd.DataFrame()
        return alignment_study.association_tables(alignment_study.correlation_models(self.study))

    # ---------------------------------------------------------------------------- the sections, in order
    def provenance(self) -> list:
        rec = provenance.provenance(self.grid_file)
        commit, dirty = rec.pop("commit"), rec.pop("dirty")
        rec = {"git commit": commit or "not a git checkout",
               "tree": "n/a" if dirty is None else ("dirty (uncommitted changes)" if dirty else "clean"), **rec}
        found = set()
        for step in self.df[self.df.task == "pretrain"].step.unique() if len(self.df) else []:
            path = self.runs_dir / step / "results.json"
            threads = (json.loads(path.read_text()).get("meta") or {}).get("threads") if path.is_file() else None
            found |= {int(threads)} if threads is not None else set()
        if found:
            rec["threads recorded by the pretrainings"] = ", ".join(map(str, sorted(found)))
        return [pd.DataFrame({"": list(rec.values())}, index=list(rec))]

    def overview(self) -> list:
        out: list[Any] = [f"grid {self.title}: {len(self.df)} result rows, {len(self.failures)} failed steps, "
                          f"{len(self.skipped)} skipped cells", tables.seeds_line(self.summary)]
        if len(self.df):
            scales = ", ".join(dict.fromkeys(self.df.scale))
            line = f"Grid **{self.title}** at the {scales} scale, language(s) {', '.join(dict.fromkeys(self.df.language))}."
            out.append(Text(narrative.findings_text(scorecard.scorecard_summary(self.tests), self.tests, line)))
        return out + ([pd.DataFrame(self.failures)] if self.failures else [])

    def scorecard(self) -> list:
        tests = self.tests
        summary = scorecard.scorecard_summary(tests)
        refs = self.reference[self.reference.finding.notna()] if len(self.reference) else self.reference
        if "variant" in summary:  # one row per variant, one column per finding: the verdicts side by side
            out: list[Any] = [summary.pivot_table(index="variant", columns="finding", values="verdict",
                                                  aggfunc="first", sort=False).fillna("")]
        else:
            if len(refs):  # the reference's verdict per finding, from the tests it recorded
                theirs = scorecard.scorecard_summary(refs.assign(finding=refs.finding.astype(int)))
                summary = summary.assign(**{"reference verdict (recorded tests)": [
                    f"{r.verdict} ({r.tests} test(s))" if r.tests else "" for r in theirs.itertuples()]})
            out = [summary.set_index("finding")]
        out += reference.label(refs) if len(refs) else []
        if len(tests):
            shown = _shown(tests, "estimate", "ci_low", "ci_high").assign(
                reference=reference.beside_tests(tests, self.reference))
            out.append(shown[[k for k in ("variant", "finding") if k in shown]
                             + ["test", "task", "95% interval", "criterion", "verdict", "why", "reference"]])
        return out

    def classifiers(self) -> list:
        h = self.health
        if h.empty:
            return ["no fine-tuned classifier with saved predictions in this grid"]
        out: list[Any] = [h.assign(**{"own test set: 95% interval": [format_interval(v, lo, hi) for v, lo, hi in
                                                                     zip(h.value, h.ci_low, h.ci_high)]},
                                   chance=h.chance.round(3))
                          [["transformation", "corpus_setting", "variant", "task", "classifier",
                            "own test set: 95% interval", "chance", "above_chance", "collapsed_runs", "n_runs", "passes"]]]
        gone = chance.collapsed_runs(self.checks)
        out.append(f"collapsed runs: {len(gone)} of {len(self.checks)} evaluations predicted a single class")
        if len(gone):
            out.append(Linked(gone.assign(notebook=[self.notebook_link(s) for s in gone.step],
                                          score=gone.score.round(3), chance=gone.chance.round(3),
                                          finetune_seed=gone.finetune_seed.astype("Int64"))
                              [["language", "transformation", "variant", "task", "seed", "finetune_seed", "setting",
                                "classifier", "supervised", "top_output", "score", "chance", "notebook"]]))
        return out

    def references(self) -> list:
        cells = self.reference[self.reference.finding.isna()] if len(self.reference) else self.reference
        if not len(cells):
            return ["no reference measurement at this grid's scale (docs/results/reference.csv)"]
        return [*reference.label(cells), reference.beside_cells(self.cells, self.reference)]

    def skipped_cells(self) -> list:
        return [pd.DataFrame(self.skipped)] if self.skipped else ["none"]

    def configurations(self) -> list:
        if not len(self.configs):
            return ["no configs.csv (aggregated before the run configuration)"]
        return [f"steps by state: {self.configs.state.value_counts().to_dict()}", results.varying_config(self.configs)]

    def main_table(self) -> list:
        deltas = tables.delta_cells(self.cells) if len(self.cells) else self.cells
        if not len(deltas):
            return ["no transfer results yet"]
        axes = self.axes
        n = deltas.drop_duplicates([*axes, "transformation", "task"]).assign(
            n=lambda d: [f"{lang} lang. x {r} runs x {e} ex." for lang, r, e in zip(d.n_languages, d.n_runs, d.n_examples)])
        drawn = tables.first_variant(deltas)
        out: list[Any] = [tables.interval_table(deltas, [*axes, "transformation"], ["metric", "task"], signed=True),
                          n.pivot_table(index=[*axes, "transformation"], columns="task", values="n", aggfunc="first",
                                        sort=False)]
        if "variant" in axes:  # the table lists every variant; the figure one (the variants section compares them)
            out.append(f"figure: variant {drawn.variant.iloc[0]!r} only")
        return out + [Figure(lambda: plots.delta_figure(drawn), name="deltas")]

    def compositions(self) -> list:
        return [Figure(lambda: plots.composition_figure(self.base) if len(self.cells) else None,
                       name="compositions",
                       otherwise="no composition of Transliteration with a word-order change in this grid")]

    def variants(self) -> list:
        cells = self.cells
        if not (len(cells) and cells.variant.nunique() > 1):
            return ["one variant in this grid"]
        compute = calibration.variant_compute(self.df, self.configs, self.dir.parent.parent)
        points = calibration.calibration_points(cells, compute)
        drift = calibration.drift_points(self.df, self.runs_dir)  # BZ and BS embedding drift per task
        out: list[Any] = [calibration.variant_table(pd.concat([points, drift], ignore_index=True) if len(drift) else points)]
        if any("=" in str(v) for v in points.variant):
            ahead = calibration.extrapolations(points)  # where POS BZ would reach 0.85 x BS on each lever's trend
            if len(ahead):
                out += ["extrapolated, not measured: a line in log10(FLOPs) through the base and the lever's runs",
                        ahead.round(3)]
            return out + [Figure(lambda: plots.compute_figure(points, ahead), name="compute")]
        # variants that change what is learned, not how much (objectives): Delta_Sup and alignment side by side
        moved = calibration.variant_contrasts(cells)  # each objective against plain mlm: did Delta_Sup follow?
        if len(moved):
            out.append(_shown(moved, "difference", "ci_low", "ci_high", "difference").pivot_table(
                index=["variant", "transformation"], columns="quantity", values=["difference", "moved"],
                aggfunc="first", sort=False))
        return out + [Figure(lambda: plots.variants_figure(points), name="variants")]

    def cpu_targets(self) -> list:
        tg = targets.targets(self.cells) if len(self.cells) else pd.DataFrame()
        if not len(tg):
            return ["no Transliteration cells for the targets in this grid"]
        return [_shown(tg, "estimate", "ci_low", "ci_high").drop(columns=["estimate", "ci_low", "ci_high"])]

    def per_language(self) -> list:
        if not len(self.summary):
            return []
        return [tables.interval_table(tables.delta_cells(self.summary), ["language", *self.axes, "transformation"],
                                      ["metric", "task"], signed=True)]

    def scores(self) -> list:
        scores = tables.score_cells(self.summary) if len(self.summary) else self.summary
        if not len(scores):
            return ["no transfer results yet"]
        index = ["language", *self.axes, "transformation", "task", "metric"]
        n = scores.pivot_table(index=index, values=["n_runs", "n_examples"], aggfunc="max", sort=False)
        table = tables.interval_table(scores, index, ["setting"]).join(n)
        links = self._one_step(index[:-1])  # the metric (last) is not part of a step's key
        return [Linked(table.assign(notebook=[links.get(k[:-1], "") for k in table.index]))]

    def per_run(self) -> list:
        iv = self.runs
        if not len(iv):
            return ["no per-example predictions (steps computed before they were saved)"]
        iv = _shown(iv[iv.setting == "delta"].astype({"seed": "Int64", "finetune_seed": "Int64"}), "value", "ci_low",
                    "ci_high")
        index = ["language", *self.axes, "transformation", "task", "seed", "finetune_seed"]
        table = iv.pivot_table(index=index, columns="metric", values="95% interval", aggfunc="first", sort=False)
        if "step" in iv:
            steps = iv.groupby(index, sort=False).step.first()
            table = table.assign(notebook=[self.notebook_link(steps.get(k, "")) for k in table.index])
        return [Linked(table)]

    def pairs(self) -> list:
        pair = self.summary[self.summary.transformation == PAIR] if len(self.summary) else self.summary
        if not len(pair):
            return ["no natural language pairs in this grid"]
        return [tables.interval_table(tables.score_cells(pair), ["language", "task", "metric"], ["setting"]),
                tables.interval_table(tables.delta_cells(pair), ["language", "task"], ["metric"], signed=True)]

    def retrieval(self) -> list:
        s = self.summary
        ret = s[(s.task == "retrieval") & s.setting.isin(results.SETTINGS)] if len(s) else s
        if not len(ret):
            return ["no retrieval in this grid"]
        return [tables.interval_table(ret, ["language", "transformation"], ["setting", "metric"])]

    def alignment(self) -> list:
        s, models = self.summary, self.models
        align = s[s.metric.isin(list(intervals.ALIGNMENT_N))] if len(s) else s
        out: list[Any] = []
        if len(align):
            index = ["language", *self.axes, "transformation"]
            out.append(tables.interval_table(align, index, ["metric"]).join(
                align.pivot_table(index=index, columns="metric", values="n_examples", aggfunc="first",
                                  sort=False).add_prefix("n_pairs: ")))
        if not len(models):
            return out + ["no model with Transliteration and alignment in this grid"]
        predictors = regressions.predictors(models)
        fits = pd.concat([regressions.regression_by_task(models, p) for p in predictors]
                         + [regressions.pooled_regression(models, p) for p in predictors], ignore_index=True)
        out += [fits.round(3) if len(fits) else "too few models for a regression (3 per task needed)",
                self.correlations.round(3)]
        return out + [Figure(lambda p=p: plots.alignment_figure(models, p), name=f"alignment_{p}") for p in predictors]

    def corpus(self) -> list:
        return [Figure(lambda: plots.corpus_figure(self.base) if len(self.cells) else None,
                       name="corpus",
                       otherwise="one corpus setting in this grid (papermill_runs/grids/corpus.yaml has all three)")]

    def alignment_study(self) -> list:
        aa, ap = alignment_study, alignment_plots
        study, (assoc, compared) = self.study, self.associations
        dial = aa.dial_models(study) if len(study) else pd.DataFrame()
        curves, profile = (aa.training_curves(self.df), aa.layer_profile(self.df)) if len(self.df) else (
            pd.DataFrame(), pd.DataFrame())
        if not (len(assoc) or len(dial) or len(curves) or len(profile)):
            return ["no contextual measures, embedding snapshots or ALIGN-MLM models in this grid "
                    "(papermill_runs/grids/alignment_cpu.yaml has them)"]
        out: list[Any] = []
        if len(assoc):
            shown = assoc.assign(measure=assoc.measure.map(aa.measure_label), value=aa.interval_text(assoc))
            index = ["protocol", "language", "task", "measure"]
            out.append(shown.pivot_table(index=index, columns="statistic", values="value", aggfunc="first", sort=False)
                       .join(shown.groupby(index, sort=False).agg(models=("n_models", "first"),
                                                                  configurations=("n_configurations", "first"))))
            if len(compared):
                out.append(compared.assign(difference=aa.interval_text(compared, "difference"))
                           .drop(columns=["ci_low", "ci_high"]))
            best = aa.best_measure(assoc)
            for (protocol, language), g in aa.correlation_models(study).groupby(["protocol", "language"], sort=False):
                mine = assoc[(assoc.protocol == protocol) & (assoc.language == language)]
                for measure in [m for m in ("alignment_at_1", best) if m]:
                    out += [f"{language}, protocol {protocol}: Delta_Sup against {aa.measure_label(measure)}",
                            Figure(lambda g=g, m=measure, a=mine: ap.scatter_figure(g, m, a),
                                   name=f"alignment_scatter_{protocol}_{language}_{measure}")]
        if len(dial):
            dose = aa.dose_response(dial)
            out.append(dose.round(3))
            trends = aa.dial_trends(dial)
            if len(trends):
                out.append(trends.assign(value=aa.interval_text(trends)).pivot_table(
                    index=["protocol", "language", "transformation", "task", "models", "measure"],
                    columns="statistic", values="value", aggfunc="first", sort=False))
            for protocol, d in dose.groupby("protocol", sort=False):
                out += [f"the dial, protocol {protocol}", Figure(lambda d=d: ap.dial_figure(d), name=f"dial_{protocol}")]
        return out + [Figure(lambda: ap.training_figure(curves), name="alignment_over_pretraining"),
                      Figure(lambda: ap.layer_figure(profile), name="alignment_by_layer")]

    def pretraining(self) -> list:
        pre = self.df[self.df.task == "pretrain"]
        if not len(pre):
            return []
        logs = curves.pretraining_logs(self.df, self.runs_dir)
        return [tables.seed_table(pre, ["language", *tables.model_axes(self.df), "transformation", "metric"]),
                f"loss curves of {logs.step_dir.nunique()} of {pre.step.nunique()} pretrainings (loss_log.csv)",
                Figure(lambda: plots.pretraining_curves(logs), name="pretraining_loss",
                       otherwise="no loss_log.csv in these steps")]

    def finetuning(self) -> list:
        cells = curves.finetune_cells(self.df) if len(self.df) else []
        if not cells:
            return ["no fine-tuning in this grid"]
        chosen = tuple(self.finetune_cell.split("/", 1)) if self.finetune_cell else cells[0]
        names = ", ".join("/".join(c) for c in cells)
        if chosen not in cells:
            raise ValueError(f"finetune_cell {self.finetune_cell!r}: expected transformation/task among {names}")
        logs = curves.finetune_logs(self.df, self.runs_dir, *chosen)
        return [f"cell {'/'.join(chosen)} (the notebook's `finetune_cell` draws another: {names})",
                Figure(lambda: plots.finetune_curves(logs, "/".join(chosen)), name="finetune_loss",
                       otherwise="no finetune_loss.csv in these steps (computed before fine-tuning saved its loss)")]

    @property
    def figures(self) -> list[Path]:
        """The files written by the sections shown so far, in the order first shown."""
        return [p for _, paths in self._figures.values() for p in paths]

    def figure_files(self) -> list:
        """The files of every figure shown so far (show this section last)."""
        if not self.figures:
            return ["no figure"]
        return [Text("\n".join(f"- [{FIGURES}/{p.name}]({FIGURES}/{p.name})" for p in self.figures))]

    SECTIONS = ("provenance", "overview", "scorecard", "classifiers", "references", "skipped_cells", "configurations",
                "main_table", "compositions", "variants", "cpu_targets", "per_language", "scores", "per_run", "pairs",
                "retrieval", "alignment", "corpus", "alignment_study", "pretraining", "finetuning", "figure_files")

    def items(self, section: str) -> list:
        """What ``section`` shows: tables, lines of text and ``Figure``s (drawn when shown)."""
        if section not in self.SECTIONS:
            raise ValueError(f"unknown report section {section!r}; known: {', '.join(self.SECTIONS)}")
        return getattr(self, section)()

    def show(self, section: str) -> None:
        """Display ``section`` in a notebook: tables with ``display``, lines with ``print``, figures inline."""
        import matplotlib.pyplot as plt
        from IPython.display import HTML, Markdown, display

        drawn: set[str] = set()
        for item in self.items(section):
            if isinstance(item, Figure):
                fig = item.draw()
                if fig is not None:
                    if item.name in drawn or self._figures.get(item.name, (section,))[0] != section:
                        plt.close(fig)
                        raise ValueError(f"two figures of the report are named {item.name!r} (section {section!r}): "
                                         f"each figure is a file of its own (figures/{item.name}.png)")
                    drawn.add(item.name)
                    paths = plots.save_figure(fig, self.dir / FIGURES, item.name)
                    self._figures[item.name] = (section, paths)  # a section shown again rewrites its own files
                    display(fig)
                    plt.close(fig)
                    display(Markdown(" · ".join(f"[{p.name}]({FIGURES}/{p.name})" for p in paths)))
                elif item.otherwise:
                    print(item.otherwise)
            elif isinstance(item, Text):
                display(Markdown(item.markdown))
            elif isinstance(item, Linked):
                display(HTML(item.to_html()))
            elif isinstance(item, str):
                print(item)
            else:
                display(item)


def build(report_dir: str | Path, title: str = "", grid_file: str | None = None,
          finetune_cell: str | None = None) -> Report:
    """The report of the grid aggregated into ``report_dir`` (``grid.aggregate``)."""
    return Report(report_dir, title, grid_file, finetune_cell)
