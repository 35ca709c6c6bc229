"""The text above the report's tables, computed from this grid's scorecard: what it reproduces,
contradicts or leaves inconclusive, with the intervals behind each verdict. No number in it is typed:
every one comes from the tests it is given."""
from __future__ import annotations

import pandas as pd

from ..stats import format_interval

SHOWN_TESTS = 3  # tests quoted per finding; the scorecard lists them all


def _quoted(t) -> str:
    """One test as ``test on task: estimate [low, high] (criterion) -> verdict``, and the classifiers that
    made it inconclusive (the scorecard's ``why`` says why)."""
    interval = format_interval(t.estimate, t.ci_low, t.ci_high, signed=True)
    gated = getattr(t, "gated_by", "")
    why = f" (at chance or collapsed: {gated})" if isinstance(gated, str) and gated else ""
    return f"{t.test} on {t.task}: {interval} ({t.criterion}) → {t.verdict}{why}"


def _deciding(mine: pd.DataFrame, verdict: str) -> pd.DataFrame:
    """The tests that decided a finding's verdict: the contradicting ones for ``contradicted``, the
    inconclusive ones for ``inconclusive``, all for ``reproduced``."""
    if verdict == "contradicted":
        return mine[mine.verdict == "contradicted"]
    if verdict == "inconclusive":
        return mine[mine.verdict == "inconclusive"]
    return mine


def findings_text(summary: pd.DataFrame, tests: pd.DataFrame, grid_line: str) -> str:
    """Markdown: ``grid_line`` (what the grid is), then one paragraph per finding with its verdict, its
    counts and up to ``SHOWN_TESTS`` deciding tests with their 95% intervals (per variant where the
    scorecard has several)."""
    lines = [grid_line, ""]
    tested = summary[summary.verdict != "not in this grid"]
    lines.append(f"Of the paper's {summary.finding.nunique()} findings, this grid tests "
                 f"{tested.finding.nunique()}; each verdict below is this grid's own, from the intervals quoted.")
    lines.append("")
    for s in summary.itertuples():
        where = f" [{s.variant}]" if "variant" in summary and isinstance(getattr(s, "variant", None), str) else ""
        head = f"- **Finding {s.finding}{where}: {s.verdict}.** {s.claim}."
        if s.verdict == "not in this grid":
            lines.append(head + " No cell of this grid tests it.")
            continue
        mine = tests[tests.finding == s.finding]
        if "variant" in tests and where:
            mine = mine[mine.variant == s.variant]
        gated = int(mine.why.ne("").sum()) if "why" in mine else 0
        counts = (f" {len(mine)} test(s): {int(s.reproduced)} reproduced, {int(s.contradicted)} contradicted, "
                  f"{int(s.inconclusive)} inconclusive" + (f" ({gated} of them because a classifier is at chance "
                                                          "or collapsed)" if gated else "") + ".")
        deciding = _deciding(mine, s.verdict)
        quoted = [_quoted(t) for t in deciding.head(SHOWN_TESTS).itertuples()]
        more = f" (and {len(deciding) - SHOWN_TESTS} more in the scorecard)" if len(deciding) > SHOWN_TESTS else ""
        lines.append(head + counts + (" " + "; ".join(quoted) + more + "." if quoted else ""))
    return "\n".join(lines)
