"""Live progress: the kernel's reports, the grid's ETA and the lines the runner shows."""
import io
import json
import time

from xlt_helpers import progress


def test_report_writes_only_for_the_runner_and_at_most_once_a_second(tmp_path, monkeypatch):
    path = tmp_path / "progress.json"
    monkeypatch.delenv(progress.ENV, raising=False)
    progress.report("pretrain", 1, 10, force=True, loss=2.0)
    assert not path.exists()
    monkeypatch.setenv(progress.ENV, str(path))
    progress.report("pretrain", 1, 10, force=True, loss=2.0)
    progress.report("pretrain", 2, 10, loss=1.0)          # within the second: dropped
    assert json.loads(path.read_text()) == {"phase": "pretrain", "done": 1, "total": 10, "loss": 2.0}
    progress.report("pretrain", 10, 10, force=True, loss=0.5)  # the last one always lands
    assert progress.read(path)["done"] == 10


def test_describe_and_clock():
    assert progress.describe(None) == "starting"
    assert (progress.describe({"phase": "pretrain", "done": 5, "total": 12, "loss": 4.56789, "tokens_per_s": 140123.4})
            == "pretrain 5/12 loss 4.568 tokens per s 140,123")
    assert progress.describe({"phase": "fine-tune pos", "done": 7, "total": 9, "epoch": 2, "batch": "4/5"}) \
        == "fine-tune pos 7/9 epoch 2 batch 4/5"
    assert progress.clock(None) == "?" and progress.clock(75) == "1:15" and progress.clock(3725) == "1:02:05"


def test_eta_from_the_measured_step_durations():
    grid = progress.GridProgress(["pretrain", "pretrain", "transfer", "transfer"])
    assert grid.eta() is None and "0/4 steps" in grid.line() and "ETA ?" in grid.line()
    grid.step_done("pretrain", 100.0)
    assert grid.eta() == 100 + 100 + 100          # kinds not measured yet: the mean of all measured steps
    grid.step_done("pretrain", 60.0)
    grid.step_done("transfer", 10.0)
    assert grid.eta() == 10.0 and grid.eta(running_for=4.0) == 6.0
    assert grid.line().startswith("[###############.....] 3/4 steps")


def _wait_for(cond, timeout=5.0):
    t0 = time.time()
    while not cond() and time.time() - t0 < timeout:
        time.sleep(0.02)
    return cond()


def test_ticker_plain_lines_when_not_a_terminal(tmp_path):
    path = tmp_path / "progress.json"
    path.write_text(json.dumps({"phase": "pretrain", "done": 3, "total": 12, "loss": 1.5}))
    lines = []
    with progress.Ticker(progress.GridProgress(["pretrain"]), path, "pretrain", lines.append, tty=False,
                         interval=0.02, every=0.1):
        assert _wait_for(lambda: len(lines) >= 2)
    assert all("0/1 steps" in ln and "| pretrain: pretrain 3/12 loss 1.500" in ln and "\r" not in ln for ln in lines)


def test_ticker_one_refreshing_line_on_a_terminal(tmp_path):
    stream, lines = io.StringIO(), []
    with progress.Ticker(progress.GridProgress(["transfer"]), tmp_path / "none.json", "transfer", lines.append,
                         tty=True, interval=0.02, stream=stream) as ticker:
        assert _wait_for(lambda: stream.getvalue().count("\r") >= 3)
        ticker.log("  done   step")
    out = stream.getvalue()
    assert "\n" not in out and "| transfer: starting" in out
    assert lines == ["  done   step"]          # printed after the line was cleared
    assert out.endswith("\r")                   # left empty for the runner's next line
