"""full_test.yaml: every language, task and natural pair. Its expansion is checked whole; a representative
subset (QA and retrieval in a derived language and in a natural pair) runs through papermill.

The whole grid (96 notebook steps) takes far longer than the suite's ~3-minute budget on a 2-core
machine, so it is not run here: `python -m xlt_helpers run papermill_runs/grids/full_test.yaml`.
"""
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from xlt_helpers.config import REPO_ROOT, runs_dir
from xlt_helpers.grid.aggregate import aggregate
from xlt_helpers.grid.local_executor import run_steps
from xlt_helpers.grid.plan import plan, with_dependencies
from xlt_helpers.grid.spec import load_grid
from xlt_helpers.run_config import ConfigError

GRIDS = REPO_ROOT / "papermill_runs" / "grids"
FULL_TEST = GRIDS / "full_test.yaml"


def find(steps, kind, language, transformation=None, task=None, target=None):
    """The one step of ``kind`` with these settings (folder names carry a config hash: match on the config)."""
    label = lambda s: "pair" if s.cfg.data.second_language else s.cfg.data.transformation  # noqa: E731
    [step] = [s for s in steps if s.kind == kind and s.cfg.data.language == language
              and label(s) == transformation and s.params.get("task") == task
              and s.cfg.data.second_language == target]
    return step


def test_full_test_grid_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    grid = load_grid(FULL_TEST)
    steps, skips = plan(grid)
    kinds = Counter(s.kind for s in steps)
    # 4 mono + 4 x 2 derived + 6 pairs pretrained; mono fine-tunes: 4 tasks (en, ar, hi), 3 (fr: no QA)
    assert kinds["pretrain"] == 4 + 8 + 6 and kinds["finetune_mono"] == 3 * 4 + 3
    # derived: translit+inv 4+3+4+4 tasks, perm 3 each (no QA); pairs: 3 + 4 + 4 + 3 + 3 + 4
    assert kinds["transfer"] == (15 + 12) + 21
    assert kinds["retrieval"] == 8 + 3 and kinds["alignment"] == 4
    assert len({s.out_dir for s in steps}) == len(steps)
    for k, s in enumerate(steps):
        assert all(steps.index(d) < k for d in s.deps)
    reasons = {sk.cell: sk.reason for sk in skips}
    assert "MANIFEST" in reasons["fr x qa (every transformation)"]
    for lang in ("en", "ar", "hi"):
        assert reasons[f"{lang} x perm x qa"].startswith("Permutation is not supported for QA")
    assert set(reasons) >= {"en-fr x qa", "fr-ar x qa", "fr-hi x qa", "fr-ar x retrieval", "fr-hi x retrieval",
                            "ar-hi x retrieval"}
    assert not any(s.params.get("task") == "qa" and s.cfg.data.language == "fr" for s in steps)
    assert not any(s.params.get("task") == "qa" and s.cfg.data.transformation == "perm" for s in steps)
    # a natural pair: pretrained on both languages, MZ from the first language's monolingual fine-tune
    pair_qa = find(steps, "transfer", "en", "pair", "qa", "ar")
    assert "/en-ar/pair/" in str(pair_qa.out_dir)
    assert pair_qa.deps[0].cfg.data.second_language == "ar" and pair_qa.deps[0].cfg.data.transformation is None
    assert pair_qa.deps[1] is find(steps, "finetune_mono", "en", None, "qa")
    ar_hi = [s.params.get("task") for s in steps if s.kind == "transfer" and s.cfg.data.second_language == "hi"
             and s.cfg.data.language == "ar"]
    assert sorted(ar_hi) == ["ner", "pos", "qa", "xnli"]  # ar trains QA on MLQA, hi tests on XQuAD


def test_full_grid_is_full_test_at_demo_scale(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    full, small = load_grid(GRIDS / "full.yaml"), load_grid(FULL_TEST)
    assert full.scale == "demo" and small.scale == "test"
    assert full.languages == small.languages == ["en", "fr", "ar", "hi"]
    assert full.tasks == small.tasks and full.pairs == small.pairs and len(full.pairs) == 6
    assert set(small.transformations) <= set(full.transformations)
    steps, skips = plan(full)
    # inv, translit, translit+inv: 15 transfers each; perm, translit+perm: 12 (no QA); pairs: 21
    assert sum(s.kind == "transfer" for s in steps) == 3 * 15 + 2 * 12 + 21
    assert len(skips) == 1 + 2 * 3 + 6  # fr QA; QA under two Permutations in en, ar, hi; 6 pair cells


def test_four_languages_grid_is_a_slice_of_full_sharing_the_default_models(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    four, full = load_grid(GRIDS / "four_languages.yaml"), load_grid(GRIDS / "full.yaml")
    default = load_grid(GRIDS / "default.yaml")
    assert four.scale == full.scale == default.scale and four.languages == full.languages
    assert set(four.transformations) < set(full.transformations) and set(four.pairs) < set(full.pairs)
    four_steps = {s.out_dir for s in plan(four)[0]}
    full_steps = {s.out_dir for s in plan(full)[0]}
    assert four_steps < full_steps                       # every step is one full.yaml would run
    shared = {s.out_dir for s in plan(default)[0] if s.kind == "pretrain" and s.cfg.data.corpus_setting == "parallel"
              and s.cfg.data.transformation in (None, "translit")}
    assert len(shared) == 2 and shared < four_steps      # en mono and en translit pretrained once for both


@pytest.mark.parametrize("pair, message", [("en-en", "bad language pair"), ("enfr", "bad language pair"),
                                           ("en-xx", "unknown language 'xx'")])
def test_bad_pairs_are_rejected(tmp_path, pair, message):
    grid = tmp_path / "g.yaml"
    grid.write_text(f"scale: test\nlanguages: [en]\ntransformations: []\ntasks: [pos]\npairs: [{pair}]\n")
    with pytest.raises(ValueError, match=message):
        load_grid(grid)


@pytest.fixture(scope="module")
def subset_report(shared_runs):
    """QA and retrieval for en / translit+inv and for the natural pair en-ar, through every notebook."""
    grid = load_grid(FULL_TEST)
    steps, skips = plan(grid)
    wanted = [find(steps, "transfer", "en", "translit+inv", "qa"), find(steps, "retrieval", "en", "translit+inv"),
              find(steps, "transfer", "en", "pair", "qa", "ar"), find(steps, "retrieval", "en", "pair", None, "ar")]
    subset = with_dependencies(wanted)
    run_steps([s for s in subset if not s.done], log=lambda *a: None)
    return aggregate(grid, subset, log=lambda *a: None, skips=skips)


def test_qa_and_retrieval_run_for_derived_languages_and_pairs(subset_report):
    df = pd.read_csv(subset_report / "results.csv")
    assert json.loads((subset_report / "failures.json").read_text()) == []
    qa = df[(df.task == "qa") & df.setting.isin(["BS", "BZ", "MZ", "orig"])]
    for lang, tr in (("en", "translit+inv"), ("en-ar", "pair")):
        cell = qa[(qa.language == lang) & (qa.transformation == tr)]
        assert set(zip(cell.setting, cell.metric)) == {(s, m) for s in ("BS", "BZ", "MZ", "orig") for m in ("f1", "em")}
        assert cell.value.between(0, 1).all()
        ret = df[(df.task == "retrieval") & (df.language == lang)]
        assert set(ret[ret.metric == "accuracy"].setting) == {"BZ", "MZ"}
        assert set(ret[ret.setting == "delta"].metric) == {"delta_mono"}
    deltas = df[(df.setting == "delta") & (df.task == "qa")]
    assert len(deltas) == 4  # delta_sup and delta_mono of the F1, for each of the two cells
    pre = df[(df.task == "pretrain") & (df.transformation == "pair")]
    assert set(pre.language) == {"en-ar"} and 0 < pre[pre.metric == "subword_overlap"].value.iloc[0] < 1
    skipped = json.loads((subset_report / "skipped.json").read_text())
    assert any(s["cell"] == "fr x qa (every transformation)" for s in skipped)
    html = (subset_report / "report.html").read_text()
    assert "Natural language pairs" in html and "Sentence retrieval" in html and "Traceback" not in html


def test_every_evaluation_saves_predictions_that_give_back_its_scores(subset_report):
    """predictions.json.gz beside each results.json: per-example sums reproduce every reported score."""
    from xlt_helpers import stats
    from xlt_helpers.storage import read_json
    from xlt_helpers.tasks import TASKS

    checked = 0
    for res in runs_dir().rglob("results.json"):
        result = read_json(res)
        if result["kind"] not in ("transfer", "finetune_mono", "retrieval"):
            continue
        saved = read_json(res.parent / "predictions.json.gz")
        for r in result["rows"]:
            if r["setting"] in ("delta",):
                continue
            table = saved["settings"][r["setting"]]
            assert table["id"] == list(range(len(table["id"])))
            got = stats.ratio(*TASKS[r["task"]].scorer(r["metric"]).examples(table))
            assert got == pytest.approx(r["value"], abs=1e-9), (res, r)
            checked += 1
    assert checked >= 20


def test_aggregate_writes_an_interval_around_every_score(subset_report):
    iv = pd.read_csv(subset_report / "intervals.csv")
    res = pd.read_csv(subset_report / "results.csv")
    scored = res[res.task.isin(["qa", "retrieval"]) & (res.task != "pretrain")]
    assert len(iv) == len(scored)
    merged = iv.merge(res, on=["step", "setting", "metric", "task", "language"], suffixes=("", "_r"))
    assert (merged.value - merged.value_r).abs().max() < 1e-9
    finite = merged.dropna(subset=["ci_low"])
    assert len(finite) >= len(merged) // 2
    inside = (finite.ci_low <= finite.value + 1e-12) & (finite.value <= finite.ci_high + 1e-12)
    assert inside.mean() >= 0.9 and (finite.ci_low <= finite.ci_high).all()
    assert set(iv[iv.setting == "delta"].interval) == {"paired bootstrap over test examples"}


def test_default_grid_has_a_test_for_every_finding(tmp_path, monkeypatch):
    """What the scorecard needs of the default grid: Transliteration (1), Inversion beside a second word
    order (2), compositions with both (3), three corpus settings (4), and at least five Transliteration
    models, whose alignment can differ, for a rank correlation (5); fine-tuning seeds for intervals."""
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    default = load_grid(GRIDS / "default.yaml")
    pre = [s.cfg.data for s in plan(default)[0] if s.kind == "pretrain"]
    assert len(default.finetune_seeds) >= 3
    assert {"inv", "perm", "translit", "translit+inv", "translit+perm"} <= {d.transformation for d in pre}
    assert {d.corpus_setting for d in pre if d.transformation == "translit"} == {"parallel", "nonparallel", "other_domain"}
    assert len([d for d in pre if d.transformation and "translit" in d.transformation]) >= 5


def test_corpus_grid_is_the_three_corpus_setting_grids_in_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    steps = {s.out_dir for s in plan(load_grid(GRIDS / "corpus.yaml"))[0]}
    parts = [{s.out_dir for s in plan(load_grid(GRIDS / f"corpus_{c}.yaml"))[0]}
             for c in ("parallel", "nonparallel", "other_domain")]
    assert steps == set().union(*parts) and len(steps) == 4 + 3 * 5  # mono + its 3 fine-tunes; 3 x (model, 3 tasks, alignment)


@pytest.mark.parametrize("text, message", [
    ("corpus_settings: [parallel]\noverrides: {data.corpus_setting: nonparallel}\n", "set both by `corpus_settings`"),
    ("corpus_settings: [nonparalel]\n", "nonparalel"),
    ("corpus_settings: []\n", "must not be empty"),
    ("corpus_settings: {inv: [parallel]}\n", "corpus_settings: 'inv' is not one of the grid's transformations"),
    ("corpus_settings: {translit: []}\n", "corpus_settings: translit: must not be empty"),
    ("corpus_settings: {translit: [nonparalel]}\n", "nonparalel"),
    ("corpus_settings: {translit: parallel}\n", "expected a list of corpus settings"),
    ("corpus_settings: {}\n", "must not be empty"),
    ("corpus_settings: {translit: [parallel]}\noverrides: {data.corpus_setting: nonparallel}\n",
     "set both by `corpus_settings`"),
])
def test_bad_corpus_settings_are_refused(tmp_path, text, message):
    path = tmp_path / "g.yaml"
    path.write_text("scale: test\nlanguages: [en]\ntransformations: [translit]\ntasks: [pos]\n" + text)
    with pytest.raises(ConfigError, match=message) as err:
        load_grid(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)  # one line naming the grid file


def test_corpus_settings_for_some_transformations(tmp_path, monkeypatch):
    """``corpus_settings: {translit: [...]}``: Transliteration's models in each setting, the other
    transformations' in the preset's only; the same folders as the list form on each part."""
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    settings = ["parallel", "nonparallel", "other_domain"]
    base = "scale: test\nlanguages: [en]\ntasks: [xnli, pos]\nfinetune_seeds: [0, 1]\n"

    def folders(name: str, text: str) -> dict:
        path = tmp_path / f"{name}.yaml"
        path.write_text(base + text)
        return {s.out_dir: s for s in plan(load_grid(path))[0]}

    mapped = folders("mapped", "transformations: [inv, translit, translit+inv]\n"
                               f"corpus_settings: {{translit: {settings}}}\n")
    listed = folders("listed", f"transformations: [translit]\ncorpus_settings: {settings}\n")
    plain = folders("plain", "transformations: [inv, translit+inv]\n")
    assert set(mapped) == set(listed) | set(plain)
    models = Counter((s.cfg.data.transformation, s.cfg.data.corpus_setting) for s in mapped.values()
                     if s.kind == "pretrain")
    assert models == Counter({(None, "parallel"): 1, ("inv", "parallel"): 1, ("translit+inv", "parallel"): 1,
                              **{("translit", c): 1 for c in settings}})
    transfers = Counter(s.cfg.data.transformation for s in mapped.values() if s.kind == "transfer")
    assert transfers == {"inv": 4, "translit+inv": 4, "translit": 3 * 4}  # 2 tasks x 2 fine-tuning seeds per model
