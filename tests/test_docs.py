"""The documentation matches the code and data it describes: links resolve, generated tables are current,
notebook markdown documents the parameters the notebooks have, and the README stays a short front door."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from xlt_helpers import docgen
from xlt_helpers.config import REPO_ROOT
from xlt_helpers.errors import DataFormatError
from xlt_helpers.run_config import GROUPS

README = REPO_ROOT / "README.md"
DOCS = sorted((REPO_ROOT / "docs").rglob("*.md"))

# Files the docs point at that are produced by hand later; each entry must still be missing (the test
# fails once the file exists, so the exemption cannot outlive its reason).
PENDING: dict[str, str] = {}

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> str:
    """Markdown without fenced code blocks and inline code (links there are not links)."""
    return _CODE.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """The targets of the inline links and images of a markdown text."""
    return _LINK.findall(_prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a markdown text (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for line in _FENCE.sub("", text).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(files: list[Path], root: Path, pending: dict[str, str] | None = None) -> list[str]:
    """'file: target (why)' for every relative link of ``files`` that does not resolve inside ``root``."""
    pending = pending or {}
    out = []
    for f in files:
        for target in links(f.read_text(encoding="utf-8")):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, mailto: ... are not relative
                continue
            path_part, _, anchor = target.partition("#")
            dest = (f.parent / path_part).resolve() if path_part else f.resolve()
            where = f"{f.relative_to(root)}: {target}"
            if not dest.is_relative_to(root.resolve()):
                out.append(f"{where} (leaves the repository)")
            elif not dest.exists():
                if dest.relative_to(root.resolve()).as_posix() not in pending:
                    out.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
                out.append(f"{where} (no heading with that anchor)")
    return out


# ---------------------------------------------------------------------------------------- links

def test_every_relative_link_of_the_readme_and_docs_resolves():
    assert broken_links([README, *DOCS], REPO_ROOT, PENDING) == []


def test_pending_files_are_still_missing():
    present = [p for p in PENDING if (REPO_ROOT / p).exists()]
    assert present == [], f"{present} exist now: remove them from PENDING in tests/test_docs.py"


def test_the_link_checker_finds_broken_files_anchors_and_escapes(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## How `demo` was chosen, and why\n\n## Twice\n\n## Twice\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md) [anchor](docs/a.md#how-demo-was-chosen-and-why) [repeat](docs/a.md#twice-1)\n"
        "[web](https://example.org) `[code](missing.md)`\n"
        "```\n[fenced](missing.md)\n```\n"
        "[file](docs/b.md) [bad anchor](docs/a.md#nowhere) [out](../outside.md) ![img](docs/img/x.png)\n")
    broken = broken_links([tmp_path / "README.md"], tmp_path, {"docs/img/x.png": "later"})
    assert broken == ["README.md: docs/b.md (no such file)", "README.md: docs/a.md#nowhere (no heading with that anchor)",
                      "README.md: ../outside.md (leaves the repository)"]


def test_the_readme_has_no_links_that_leave_the_repository():
    assert [t for t in links(README.read_text()) if re.match(r"[a-z][a-z0-9+.-]*:|\.\./", t)] == []


# ------------------------------------------------------------------------------ generated parts

def test_every_generated_part_is_current():
    assert docgen.stale() == [], "run: python -m xlt_helpers.docgen"


def test_the_readme_headline_table_is_the_rendering_of_the_csv():
    table = docgen.block(README.read_text(), "headline")
    assert table == docgen.render_headline(REPO_ROOT / docgen.HEADLINE_CSV)
    rows = docgen.read_headline(REPO_ROOT / docgen.HEADLINE_CSV)
    assert len(table.splitlines()) == 2 + max(len(rows), 1)


HEADER = ",".join(docgen.HEADLINE_COLUMNS) + "\n"
ROW = "1,Delta_Sup,en,translit,pos,-0.221,-0.271,-0.171,1000,test examples,3,1,cpu,g.yaml,2026-12-03,c,s\n"


def test_a_headline_row_is_rendered_with_its_interval_n_and_seeds(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(HEADER + ROW)
    last = docgen.render_headline(path).splitlines()[-1]
    assert last == ("| 1 | Delta_Sup | en, `translit`, POS | -0.221 [-0.271, -0.171] | 1,000 test examples "
                    "| 3 pretraining x 1 fine-tuning seed | `g.yaml`, `cpu`, 2026-12-03 | c |")


def test_a_headline_file_without_rows_renders_a_pending_row(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(HEADER)
    assert "| pending |" in docgen.render_headline(path).splitlines()[-1]


@pytest.mark.parametrize("row, expected", [
    (ROW.replace("-0.221", "-0.5"), "h.csv:2: expected ci_low <= estimate <= ci_high"),
    (ROW.replace("-0.221", "about -0.2"), "h.csv:2: expected numbers"),
    (ROW.replace("2026-12-03", "Dec 3"), "h.csv:2: expected a date"),
])
def test_a_bad_headline_row_is_refused_with_its_line(tmp_path, row, expected):
    path = tmp_path / "h.csv"
    path.write_text(HEADER + row)
    with pytest.raises(DataFormatError, match=re.escape(expected)):
        docgen.read_headline(path)


def test_a_headline_file_missing_a_column_is_refused(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(HEADER.replace(",caveat", "") + ROW)
    with pytest.raises(DataFormatError, match=r"h.csv:1: expected the columns .*\['caveat'\] missing"):
        docgen.read_headline(path)


def test_fill_replaces_only_the_named_part_and_refuses_a_missing_one():
    text = ("a\n<!-- generated: one (cmd) -->\nold\n<!-- end generated -->\nb\n"
            "<!-- generated: two (cmd) -->\nkeep\n<!-- end generated -->\n")
    new = docgen.fill(text, "one", "new\nlines")
    assert docgen.block(new, "one") == "new\nlines" and docgen.block(new, "two") == "keep"
    assert new.startswith("a\n") and new.count("<!-- end generated -->") == 2
    with pytest.raises(DataFormatError, match="generated part '<!-- generated: three"):
        docgen.fill(text, "three", "x", "f.md")


def test_docgen_check_reports_a_stale_part(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.md").write_text("<!-- generated: t (cmd) -->\nold\n<!-- end generated -->\n")
    monkeypatch.setattr(docgen, "GENERATED", {("docs/x.md", "t"): lambda: "new"})
    assert docgen.stale(tmp_path) == ["docs/x.md: t"]
    assert docgen.write(tmp_path) == ["docs/x.md: t"] and docgen.stale(tmp_path) == []


# ------------------------------------------------------------------------------- the README

def _outside_generated(text: str) -> str:
    return re.sub(r"<!-- generated:.*?<!-- end generated -->", "", text, flags=re.S)


def test_the_readme_is_a_short_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    prose = _outside_generated(text)
    assert re.findall(r"\bissues? \d+|(?<![\w&])#\d+\b", prose, flags=re.I) == []      # no issue numbers
    assert re.findall(r"\b20\d\d-\d\d-\d\d\b", prose) == []                         # no dated entries


def test_every_docs_page_starts_with_what_it_is_for():
    bad = []
    for page in DOCS:
        paragraphs = [p for p in page.read_text().split("\n\n") if p.strip()]
        if len(paragraphs) < 2 or not paragraphs[0].startswith("# ") or not paragraphs[1].startswith("This page"):
            bad.append(str(page.relative_to(REPO_ROOT)))
    assert bad == []


# ------------------------------------------------------------------------------ notebooks
#
# A notebook documents a parameter when its markdown has
#   * an item of its parameters list: a line "- `name`: ..." after a line "**Parameters**", or
#   * a backticked Python assignment of a bare name, `name = value`, spaces around the `=` (so that
#     names such as `lever=value` or `key=value` pairs of a command line are not taken for parameters).
# Every documented parameter must be assigned in the notebook's `parameters` cell, and every parameter of
# that cell must be in the parameters list (the report notebook, whose first cell is the report's title
# page, documents its two parameters in the cell's comments instead). A backticked dotted name
# `group.field` of a run-configuration group must be a field of that group.

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
NO_LIST = {"04_aggregate.ipynb"}


def notebook_parameters(nb: dict) -> set[str]:
    """The names the notebook's `parameters` cell assigns."""
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    names = set()
    for c in cells:
        for node in ast.parse("".join(c["source"])).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def documented(markdown: str) -> tuple[set[str], set[str], set[str]]:
    """(the parameters list's names, backticked assignments' names, backticked dotted group.field names)."""
    listed, in_list = set(), False
    for line in markdown.splitlines():
        if line.strip() == "**Parameters**":
            in_list = True
            continue
        m = re.match(r"\s*[-*] `(\w+)`", line)
        if in_list and m:
            listed.add(m.group(1))
        elif in_list and line.strip() and not line.startswith("  "):
            in_list = False
    spans = re.findall(r"`([^`\n]+)`", markdown)
    assigned = {m.group(1) for s in spans if (m := re.fullmatch(r"([A-Za-z_]\w*) += +.+", s))}
    dotted = {s for s in spans if re.fullmatch(r"[a-z]+\.[a-z_]+", s) and s.split(".")[0] in GROUPS}
    return listed, assigned, dotted


def _markdown(nb: dict) -> str:
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_markdown_documents_exactly_its_parameters(path):
    nb = json.loads(path.read_text())
    params = notebook_parameters(nb)
    listed, assigned, dotted = documented(_markdown(nb))
    assert params, f"{path.name} has no parameters cell"
    assert (listed | assigned) - params == set(), f"{path.name} documents parameters it does not have"
    if path.name not in NO_LIST:
        assert params - listed == set(), f"{path.name}: parameters missing from its **Parameters** list"
    unknown = {d for d in dotted if d.split(".")[1] not in {f.name for f in GROUPS[d.split(".")[0]].__dataclass_fields__.values()}}
    assert unknown == set(), f"{path.name} documents config fields that do not exist"


def test_the_notebook_rule_catches_an_undocumented_and_a_stale_parameter():
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["**Parameters**\n", "- `config`: the config\n",
                                                             "\nA pair sets `options = '{}'` and `data.second_lang`; `lever=value` names variants."]},
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["config = '{}'\n", "out_dir: str = 'x'\n"]},
    ]}
    listed, assigned, dotted = documented(_markdown(nb))
    assert notebook_parameters(nb) == {"config", "out_dir"}
    assert listed == {"config"} and assigned == {"options"} and dotted == {"data.second_lang"}
    assert "data.second_lang" not in {f"data.{f}" for f in GROUPS["data"].__dataclass_fields__}
