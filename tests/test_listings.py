"""Reports and listings that tell the truth: the examples show mistakes first, the bold goes to the real winner, a
baseline that does not apply says so, `runs list` shows the task's metric and a killed run's real duration, and
output to a pipe or a file keeps whole rows and prints progress as plain lines."""
from __future__ import annotations

import io
import json
import os
import re
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

import deepstation
from conftest import as_killed, cli, last_json, table_task, write_task
from deepstation.cli.compare import comparison_table
from deepstation.compare import winners
from deepstation.errors import DeepstationError
from deepstation.report import scored
from deepstation.report.html import mistakes_first, side_by_side
from deepstation.run import RunFolder
from deepstation.training.progress import Bar


def result_where_a_reference_wins(baseline: dict | None) -> dict:
    result = {"task": "t", "split": "test",
              "deep": {"metrics": {"test": {"loss": 0.5, "accuracy": 0.80, "macro_f1": 0.71}}, "description": "cnn1d",
                       "fit_seconds": 2.0, "predict_ms_per_sample": 0.1, "parameters": 1234},
              "baseline": baseline,
              "references": [{"name": "minirocket", "description": "MiniRocket and a ridge classifier",
                              "metrics": {"test": {"accuracy": 0.93, "macro_f1": 0.70}}}]}
    result["best"] = winners(scored(result), "test")
    return result


FITTED = {"name": "SeriesFeatures", "description": "summary statistics", "fit_seconds": 0.5,
          "predict_ms_per_sample": 0.01, "size": 99, "metrics": {"test": {"accuracy": 0.95, "macro_f1": 0.60}}}
SKIPPED = {"name": "SegmentAndClassify", "description": "one glyph per word", "skipped": "captions carry several "
           "words per glyph"}


def bold_cells(page: str) -> dict[str, list[str]]:
    """metric -> the column labels whose cell is bold, read back from the report's side-by-side table."""
    table = page[page.index("<h2>Side by side"):]
    labels = re.findall(r"<th>([^<]*)</th>", table[:table.index("</tr>")])[1:]  # after the metric names
    found, spanned = {}, [0] * len(labels)  # rows still covered by a cell above (rowspan)
    for metric, cells in re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", table):
        cells, found[metric] = iter(re.findall(r"<td(?: class=(\w*))?(?: rowspan=(\d+))?>", cells)), []
        for i, label in enumerate(labels):
            if spanned[i]:
                spanned[i] -= 1
                continue
            kind, rows = next(cells)
            spanned[i] = int(rows or 1) - 1
            if kind == "better":
                found[metric].append(label)
    return found


def terminal_cells(result: dict) -> dict[str, list[str]]:
    """column label -> its cells, as the terminal table shows them."""
    from rich.table import Table

    table = next(r for r in comparison_table(result).renderables if isinstance(r, Table))
    return {str(c.header).replace("\n", ""): [str(x) for x in c.cells] for c in table.columns}


@pytest.mark.parametrize("baseline", [FITTED, None])
def test_the_bold_goes_to_whoever_wins_in_the_report_and_the_terminal(baseline):
    result = result_where_a_reference_wins(baseline)
    winner = "hand-picked" if baseline else "minirocket"
    assert result["best"]["accuracy"] == [winner] and result["best"]["macro_f1"] == ["deep"]
    assert bold_cells(side_by_side(result, "test")) == {"loss": [], "accuracy": [winner], "macro_f1": ["deep"],
                                                        "training time (s)": [], "inference (ms / sample)": [],
                                                        "size": []}
    cells = terminal_cells(result)
    metrics = cells[""]
    accuracy, f1 = metrics.index("accuracy"), metrics.index("macro_f1")
    assert "[bold]" not in cells["deep"][accuracy] and "[bold]" in cells["deep"][f1]
    assert "[bold]" in cells[winner][accuracy] and "[bold]" not in cells["minirocket"][f1]
    shown = io.StringIO()
    Console(file=shown, width=200).print(comparison_table(result))
    assert f"deep loses on accuracy: {winner}" in shown.getvalue()


def test_a_baseline_that_does_not_apply_says_why_and_scores_nothing():
    result = result_where_a_reference_wins(SKIPPED)
    assert "hand-picked" not in sum(result["best"].values(), [])
    page = side_by_side(result, "test")
    assert "not applicable: captions carry several words per glyph" in page
    hand_picked = re.findall(r"<th>([^<]*)</th>", page).index("hand-picked")
    assert hand_picked == 2  # after the metric names' column and deep's
    assert bold_cells(page)["accuracy"] == ["minirocket"]
    cells = terminal_cells(result)
    assert set(cells["hand-picked"]) == {"n/a"}  # never a 0
    shown = io.StringIO()
    Console(file=shown, width=200).print(comparison_table(result))
    assert "not applicable: captions carry several words per glyph" in " ".join(shown.getvalue().split())


def test_examples_put_each_models_mistakes_first():
    true = list("abcdefgh")
    deep = list("abXdeYgh")  # wrong on rows 2 and 5
    base = list("Zbcdefgh")  # wrong on row 0
    order, deep_wrong, base_wrong = mistakes_first(true, deep, base, "category")
    assert order == [2, 0, 5, 1, 3, 4, 6, 7] and deep_wrong == {2, 5} and base_wrong == {0}
    order, _, base_wrong = mistakes_first(true, deep, None, "category")
    assert order[:2] == [2, 5] and base_wrong == set()
    captions = ["red circle", "blue  square", "one two"]
    assert mistakes_first(captions, ["red circle", "blue square", "one"], None, "sequence")[0] == [2, 0, 1]
    order, _, _ = mistakes_first([1.0, 2.0, 3.0], [1.1, 2.0, 9.0], [1.0, 4.0, 3.0], "number")
    assert order == [2, 1, 0]  # largest error of either model first


def test_the_report_shows_the_mistakes_and_bolds_the_winners(table_csv, tmp_path):
    # an undertrained classifier: it gets rows wrong, and the report must show them before the rows it gets right
    raw = table_task(table_csv, output="kind", kind="category", epochs=1, learning_rate=1e-5)
    out = last_json(cli("compare", write_task(tmp_path, raw), "--json", check=0).stdout)
    page = Path(out["report"]).read_text()
    assert bold_cells(page)["accuracy"] == out["best"]["accuracy"]
    examples = page[page.index("<h2>Examples"):]
    said = re.search(r"deep gets (\d+) wrong, hand-picked (\d+)", examples)
    rows = re.findall(r"<tr><td>.*?</tr>", examples[:examples.index("</table>")])
    wrong = [("class=wrong" in r) for r in rows]
    deep_wrong, base_wrong = int(said.group(1)), int(said.group(2))
    assert deep_wrong > 0 and len(rows) == 12
    # every row with a mistake comes before every row without one
    assert wrong == sorted(wrong, reverse=True) and sum(wrong) >= min(12, max(deep_wrong, base_wrong))


# -- runs list ---------------------------------------------------------------------------------------------


def test_runs_list_shows_the_tasks_metric_and_whole_rows_to_a_pipe(table_csv):
    raw = table_task(table_csv, output="kind", kind="category", epochs=1)  # monitors the loss
    raw["name"] = "a-task-with-a-rather-long-name-for-the-listing"
    raw["tracking"] = {"experiment": "listing-metric"}
    run = deepstation.train(raw)
    row = last_json(cli("runs", "list", "--experiment", "listing-metric", "--json", check=0).stdout)[0]
    assert row["headline"] == {"metric": "test.accuracy", "value": pytest.approx(run.metrics["test"]["accuracy"])}
    shown = cli("runs", "list", "--experiment", "listing-metric", check=0).stdout
    line = next(ln for ln in shown.splitlines() if run.id in ln)  # the run folder's whole name, on one line
    assert f"accuracy {run.metrics['test']['accuracy']:.4f}" in line and "loss" not in line and len(line) > 80


def test_a_killed_run_is_marked_and_listed_with_its_real_duration(table_csv):
    from mlflow.tracking import MlflowClient

    raw = table_task(table_csv, epochs=1, monitor="mae")
    raw["tracking"] = {"experiment": "listing-killed"}
    run = deepstation.train(raw)
    store = MlflowClient(os.environ["DEEPSTATION_TRACKING_URI"])
    cursor = json.loads((run.dir / "tracking.json").read_text())
    started = store.get_run(cursor["run_id"]).info.start_time / 1000
    # as a SIGKILL leaves it: run.json says running, its process is gone, the store still has it RUNNING
    as_killed(run.dir, last_write=started + 1000.0)
    (run.dir / "tracking.json").write_text(json.dumps({**cursor, "finished": False, "status": None}))
    store.update_run(cursor["run_id"], status="RUNNING")

    row = last_json(cli("runs", "list", "--experiment", "listing-killed", "--json", check=0).stdout)[0]
    assert row["status"] == "KILLED" and row["duration_s"] == pytest.approx(1000.0, abs=0.01)  # not until now
    assert row["headline"]["metric"] == "test.mae"  # its monitor
    info = json.loads((run.dir / "run.json").read_text())
    assert info["status"] == "killed" and datetime.fromisoformat(info["ended"]).timestamp() == \
        pytest.approx(started + 1000.0, abs=0.01)


def test_a_killed_folder_is_marked_by_whatever_reads_it_first(tmp_path):
    folder = RunFolder.create(tmp_path / "runs", "tiny")
    folder.append_metrics({"epoch": 1, "train": {"loss": 1.0}})
    as_killed(folder.path, last_write=1_700_000_000.0)
    with pytest.raises(DeepstationError, match="before it wrote its config.yaml"):
        deepstation.load(folder.path)
    info = json.loads(folder.info.read_text())
    assert info["status"] == "killed" and info["ended"] == "2023-11-14T22:13:20.000+00:00"
    assert not list(folder.path.glob(".*.tmp"))  # atomic: no temporary file left


def test_a_resume_that_takes_the_folder_over_is_not_marked_killed(tmp_path):
    """A reader that finds the run dead marks it under the folder's lock, after reading run.json again: a resume
    that claimed the folder meanwhile (here: while the test holds the lock) keeps it."""
    import threading

    folder = RunFolder.create(tmp_path / "runs", "tiny")
    as_killed(folder.path)
    seen = []
    with folder._claim():
        reader = threading.Thread(target=lambda: seen.append(RunFolder(folder.path).status()))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive()  # waiting for the lock, before it writes anything
        info = json.loads(folder.info.read_text())
        folder.info.write_text(json.dumps({**info, "pid": os.getpid()}))  # the resume's claim, as write_info makes it
    reader.join(10)
    assert seen == ["killed"]  # what it saw when it read: a dead process
    info = json.loads(folder.info.read_text())
    assert info["status"] == "running" and info["pid"] == os.getpid() and "ended" not in info


# -- progress to a pipe or a file --------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(epoch: int) -> dict:
    return {"epoch": epoch, "samples_per_s": 1000.0, "train": {"loss": 1.0 / epoch}, "valid": {"accuracy": 0.5}}


def test_progress_to_a_pipe_is_a_plain_line_at_most_every_ten_seconds():
    shown, clock = io.StringIO(), Clock()
    bar = Bar(Console(file=shown, width=80), clock=clock)
    bar.start(total=30, done=0, monitor="accuracy")
    for epoch in range(1, 31):
        clock.now += 3.0  # an epoch every 3 s
        bar.epoch(record(epoch))
    bar.close()
    lines = shown.getvalue().splitlines()
    assert [ln.split(" · ")[0] for ln in lines] == [f"epoch {n}/30" for n in (4, 8, 12, 16, 20, 24, 28, 30)]
    assert "loss 0.2500 · valid accuracy 0.5000 · 1,000 samples/s · elapsed 0:00:12 · ETA 0:01:18" in lines[0]
    assert "ETA" not in lines[-1] and "\x1b" not in shown.getvalue()  # no redrawn bar, no escape codes


def test_progress_shows_the_last_epoch_of_a_run_that_stops_early():
    shown, clock = io.StringIO(), Clock()
    bar = Bar(Console(file=shown), clock=clock)
    bar.start(total=100, done=0, monitor="accuracy")
    for epoch in (1, 2):
        clock.now += 1.0
        bar.epoch(record(epoch))
    bar.close()  # patience ran out at epoch 2
    assert shown.getvalue().splitlines() == ["epoch 2/100 · loss 0.5000 · valid accuracy 0.5000 · 1,000 samples/s · "
                                             "elapsed 0:00:02 · ETA 0:01:38"]


def test_progress_in_a_terminal_is_the_bar():
    shown = io.StringIO()
    bar = Bar(Console(file=shown, force_terminal=True, width=100))
    bar.start(total=2, done=0, monitor="accuracy")
    bar.epoch(record(1))
    bar.epoch(record(2))
    bar.close()
    assert "2/2" in shown.getvalue() and "\x1b" in shown.getvalue() and "elapsed" not in shown.getvalue()


def test_train_piped_prints_its_last_epoch(table_csv, tmp_path):
    result = cli("train", write_task(tmp_path, table_task(table_csv, epochs=2)), check=0)
    epochs = [ln for ln in result.stdout.splitlines() if ln.startswith("epoch ")]
    assert epochs and epochs[-1].startswith("epoch 2/2 · loss ")


def test_tables_to_a_pipe_keep_whole_rows():
    import contextlib

    from rich.table import Table

    from deepstation.cli import render

    table = Table()
    for n in range(8):
        table.add_column(f"ExponentialSmoothing{n}")
    table.add_row(*[f"/some/where/runs/a-long-task-name-20260101-000000-{n}" for n in range(8)])
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        render.console(False).print(table)
        render.console(False).rule("a rule")
    text = shown.getvalue()
    assert "…" not in text and "ExponentialSmoothing7" in text and "000000-7" in text
    assert max(len(ln) for ln in text.splitlines() if "a rule" in ln) <= render.RULE_WIDTH
