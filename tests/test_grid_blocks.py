"""Grids of blocks (one block per part of a design that a product of axes cannot express) and the
alignment study's grid: what it plans, what it shares."""
import re
from collections import Counter

import pytest

from xlt_helpers.config import REPO_ROOT
from xlt_helpers.grid.plan import expand, plan
from xlt_helpers.grid.spec import load_grid

from test_runner import write_grid  # pytest puts tests/ on sys.path

TOP = "scale: test\ntasks: [pos]\nvariants: {trained: {finetune.embedding_lr_scale: 1.0}, frozen: {finetune.embedding_lr_scale: 0.0}}\n"
ALIGNMENT_CPU = REPO_ROOT / "papermill_runs" / "grids" / "alignment_cpu.yaml"


def test_blocks_run_the_union_of_their_steps_once(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    grid = load_grid(write_grid(tmp_path, TOP + (
        "blocks:\n"
        "  - {languages: [en], seeds: [0, 1], transformations: [translit]}\n"
        "  - {languages: [en], seeds: [0], transformations: [translit, translit+inv],\n"
        "     overrides: {pretrain.steps: 7}, variants: {'trained:short': {finetune.embedding_lr_scale: 1.0}}}\n")))
    assert grid.languages == ["en"] and grid.transformations == ["translit", "translit+inv"] and grid.seeds == [0, 1]
    steps = expand(grid)
    assert len({s.out_dir for s in steps}) == len(steps)
    pre = [s for s in steps if s.kind == "pretrain"]
    # block 1: two translit models and two monolingual ones; block 2: 7-step translit and translit+inv models,
    # whose monolingual model (seed 0) is block 1's
    assert sorted((s.cfg.data.transformation or "mono", s.cfg.pretrain.seed, s.cfg.pretrain.steps) for s in pre) == [
        ("mono", 0, 7), ("mono", 0, 12), ("mono", 1, 12), ("translit", 0, 7), ("translit", 0, 12), ("translit", 1, 12),
        ("translit+inv", 0, 7)]
    by_variant = Counter(v for s in steps if s.kind == "transfer" for v in s.variants)
    assert by_variant == {"trained": 2, "frozen": 2, "trained:short": 2}
    for s in steps:  # every dependency is a step of the plan, itself
        assert all(any(d is t for t in steps) for d in s.deps)


def test_a_step_planned_by_two_blocks_serves_both_variants(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    grid = load_grid(write_grid(tmp_path, TOP + (
        "blocks:\n"
        "  - {languages: [en], transformations: [translit]}\n"
        "  - {languages: [en], transformations: [translit], variants: {'trained:again': {finetune.embedding_lr_scale: 1.0}}}\n")))
    align = [s for s in expand(grid) if s.kind == "alignment"]
    assert len(align) == 1 and align[0].variants == ["trained", "frozen", "trained:again"]


@pytest.mark.parametrize("blocks, message", [
    ("blocks: []\n", "blocks must be a non-empty list of mappings"),
    ("blocks: [{languages: [en], transformations: [inv]}, 3]\n", "blocks must be a non-empty list of mappings"),
    ("blocks:\n  - {languages: [en], transformations: [inv], scale: demo}\n", "blocks[0]: 'scale' cannot be set per block"),
    ("blocks:\n  - {languages: [en], transformations: [inv]}\n  - {languages: [en], transformations: [flip]}\n",
     "#blocks[1]: unknown transformation 'flip'"),
    ("blocks:\n  - {languages: [en], transformations: [inv], overrides: {pretrain.stpes: 3}}\n",
     "pretrain has no field 'stpes'"),
    ("blocks:\n  - {transformations: [inv]}\n", "#blocks[0]: missing grid keys ['languages']"),
])
def test_bad_blocks_are_rejected_in_one_line_naming_the_file(tmp_path, blocks, message):
    path = write_grid(tmp_path, TOP + blocks)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        load_grid(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_the_alignment_grid_plans_the_study(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    steps, skips = plan(load_grid(ALIGNMENT_CPU))
    assert skips == []
    kinds = Counter(s.kind for s in steps)
    # 40 bilingual models (en: 7 configurations + 4 dial weights, x 3 seeds; fr: 7), 4 monolingual ones;
    # each bilingual model fine-tuned on 3 tasks under 2 protocols; the monolingual ones too
    assert kinds == {"pretrain": 44, "transfer": 240, "finetune_mono": 24, "alignment": 40}
    pre = [s for s in steps if s.kind == "pretrain" and s.cfg.data.transformation]
    assert all(s.cfg.pretrain.embedding_snapshots == 500 for s in pre)
    weights = Counter(s.cfg.pretrain.align_weight for s in pre if "align" in s.cfg.pretrain.objectives)
    assert weights == {0.01: 3, 0.1: 3, 1.0: 3, 10.0: 3}
    half = [s for s in pre if s.cfg.data.derived_fraction == 0.5]
    assert {(s.cfg.data.language, s.cfg.data.corpus_setting) for s in half} == {("en", "nonparallel"), ("fr", "nonparallel")}
    align = [s for s in steps if s.kind == "alignment"]
    assert all(s.cfg.evaluate.contextual and len(s.variants) == 2 for s in align)   # one step, both protocols
    # the monolingual models are those of the other cpu grids: no snapshot, no contextual field in their key
    calibration = plan(load_grid(REPO_ROOT / "papermill_runs" / "grids" / "calibration_cpu.yaml"))[0]
    mono = {s.out_dir for s in steps if s.kind == "pretrain" and not s.cfg.data.transformation}
    assert {s.out_dir for s in calibration if s.kind == "pretrain" and not s.cfg.data.transformation
            and s.cfg.data.language == "en"} <= mono
