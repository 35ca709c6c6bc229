"""The package's layout (docs/architecture.md): no import circle, no arrow back up into the grid and report
wings, and the tables every other module reads sit on the lowest floors."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import import_graph  # noqa: E402


def test_no_circle_and_no_arrow_back_up_into_a_wing():
    g = import_graph.graph()
    assert import_graph.circles(g) == []
    assert import_graph.arrows_into_wings(g) == []
    assert not any(d.startswith("grid.") for m, deps in g.items() if m.startswith("report.") for d in deps)


def test_the_tables_sit_below_what_reads_them():
    g = import_graph.graph()
    floor = import_graph.floors(g)
    assert floor["step_kinds"] == floor["metrics"] == floor["labels"] == 1   # they import nothing of the package
    assert floor["tasks"] < floor["data"] < floor["encoding"] < floor["finetune"]
    assert floor["inputs"] < floor["corpus"] and "inputs" in g["grid.keys"]  # one list of a pretraining's inputs
    for reader in ("grid.plan", "grid.keys", "grid.step", "grid.ray_executor", "fingerprint"):
        assert "step_kinds" in g[reader], reader


def test_the_check_command_exits_zero(capsys):
    assert import_graph.main(["--check"]) == 0
    assert "0 circle(s)" in capsys.readouterr().out
