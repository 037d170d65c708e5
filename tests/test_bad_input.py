"""Bad input, verb by verb: each realistic mistake ends with exit code 2 and one line on stderr that starts with
`error:`, names what is wrong and says what to do; never a traceback.

Each case is a row of CASES: the command line, the files it needs (written into the test's temp folder), the
environment, and words the line must hold. In arguments, file contents and environment values, {run} is a
finished run folder shared by the module ({run_name} its name, {runs} its parent), {csv} a good table CSV, {db} a
SQLite file with a table `orders`, {tmp} the test's temp folder, {busy_port} a port something listens on. A task
is written from `task(...)`: the conftest table task with some keys changed. argparse's own errors (a usage line,
then one error line) are rows with `usage=True`.
"""
from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from contextlib import chdir
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import as_killed, cli, table_task, user_error

DROP = object()  # task(key=DROP) removes the key


@dataclass(frozen=True)
class RunCopy:
    """A file's content: a copy of {run} without the files in `remove`, with `garbage` written over others, and,
    when `killed`, with the status of a run whose process died before it finished."""

    remove: tuple = ()
    garbage: tuple = ()
    killed: bool = False


def task(**changes) -> dict:
    """The conftest table task reading {csv}, with dotted keys changed: task(**{"trainer.epochs": "ten"})."""
    doc = table_task("{csv}", epochs=1)
    for dotted, value in changes.items():
        *parents, last = _keys(dotted)
        node = doc
        for key in parents:
            node = node[key]
        if value is DROP:
            del node[last]
        else:
            node[last] = value
    return doc


def _keys(dotted: str) -> list:
    return [int(k) if k.isdigit() else k for k in dotted.replace("[", ".").replace("]", "").split(".")]


def case(id_, *args, files=None, env=None, expect=(), usage=False, marks=()):
    expect = (expect,) if isinstance(expect, str) else tuple(expect)
    return pytest.param(args, files or {}, env or {}, expect, usage, id=id_, marks=marks)




T = "task.yaml"  # the task file most cases write
SOURCE = "data.source"


def sql_task(url: str, query: str) -> dict:
    """The files of a case whose task reads `query` from the SQL database at `url`."""
    return {T: task(**{SOURCE: {"sql": {"url": url, "query": query}}})}

CASES = [
    # --- the task file itself ---------------------------------------------------------------------------------
    case("task-missing", "train", "no-such-task.yaml", expect=["no-such-task.yaml", "task file not found"]),
    case("task-misspelt", "train", "tsak.yaml", files={T: task()}, expect="Did you mean `task.yaml`?"),
    case("task-is-a-folder", "train", "{tmp}/tasks", files={"tasks/a.yaml": task()},
         expect=["is a folder", "tasks/a.yaml"]),
    case("task-is-an-empty-folder", "train", "{tmp}/empty", files={"empty/": None}, expect="no .yaml file"),
    case("task-not-utf8", "train", T, files={T: b"name: caf\xe9\n"}, expect=["not UTF-8", "position 9", "line 1"]),
    case("task-not-yaml", "train", T, files={T: "name: [unclosed\ndata: 1\n"}, expect=["not valid YAML", "line"]),
    case("task-tab-indent", "train", T, files={T: "name: x\ndata:\n\tsource: a.csv\n"}, expect="not valid YAML"),
    case("task-is-a-list", "train", T, files={T: "- name: x\n- data: y\n"}, expect=["expected a mapping", "list"]),
    case("task-empty-file", "train", T, files={T: ""}, expect="empty file"),
    case("task-is-a-csv", "train", "{csv}", expect="expected a mapping"),
    case("task-duplicate-key", "train", T, files={T: "name: a\nname: b\n"},
         expect=["`name`", "twice", "lines 1 and 2"]),
    case("task-duplicate-nested-key", "train", T,
         files={T: yaml.safe_dump(task(), sort_keys=False).replace("  epochs: 1\n", "  epochs: 1\n  epochs: 5\n")},
         expect=["`trainer.epochs`", "twice"]),
    # --- the schema ---------------------------------------------------------------------------------------------
    case("unknown-top-level-key", "train", T, files={T: {**task(), "trainr": {}}},
         expect=["unknown key `trainr`", "Did you mean `trainer`?"]),
    case("unknown-nested-key", "train", T, files={T: task(**{"trainer.learning_rte": 0.1})},
         expect=["trainer.learning_rte", "Did you mean `learning_rate`?"]),
    case("epochs-not-a-number", "train", T, files={T: task(**{"trainer.epochs": "ten"})},
         expect=["trainer.epochs", "'ten'"]),
    case("epochs-negative", "train", T, files={T: task(**{"trainer.epochs": -3})}, expect=["trainer.epochs", "-3"]),
    case("batch-size-zero", "train", T, files={T: task(**{"trainer.batch_size": 0})}, expect="trainer.batch_size"),
    case("learning-rate-text", "train", T, files={T: task(**{"trainer.learning_rate": "fast"})},
         expect="trainer.learning_rate"),
    case("unknown-optimizer", "train", T, files={T: task(**{"trainer.optimizer": "adamx"})},
         expect="trainer.optimizer"),
    case("unknown-input-type", "train", T, files={T: task(**{"inputs[0].type": "tabel"})},
         expect=["inputs[0].type", "'tabel'", "Did you mean `table`?"]),
    case("unknown-output-type", "train", T, files={T: task(**{"outputs[0].type": "numbr"})},
         expect=["outputs[0].type", "Did you mean `number`?"]),
    case("unknown-encoder-kind", "train", T, files={T: task(**{"model.encoders.features.kind": "mlpp"})},
         expect=["model.encoders.features", "mlpp"]),
    case("encoder-for-no-input", "train", T, files={T: task(**{"model.encoders.feature": {"kind": "mlp"}})},
         expect=["model.encoders.feature:", "no input is named `feature`"]),
    case("outputs-missing", "train", T, files={T: task(outputs=DROP)}, expect=["outputs", "required"]),
    case("inputs-empty", "train", T, files={T: task(inputs=[])}, expect="inputs"),
    case("split-sums-to-one", "train", T, files={T: task(**{"data.split.valid": 0.5, "data.split.test": 0.5})},
         expect="data.split"),
    case("split-negative", "train", T, files={T: task(**{"data.split.valid": -0.1})}, expect="data.split.valid"),
    case("monitor-not-a-metric", "train", T, files={T: task(**{"trainer.monitor": "accuracy"})},
         expect=["trainer.monitor", "accuracy"]),
    case("precision-unknown", "train", T, files={T: task(**{"trainer.precision": "fp8"})},
         expect="trainer.precision"),
    case("device-unknown", "train", T, files={T: task(**{"trainer.device": "gpu"})}, expect="gpu"),
    case("name-with-slash", "train", T, files={T: task(name="team/tiny")}, expect=["`name`", "team/tiny"]),
    case("input-and-output-same-name", "train", T, files={T: task(**{"outputs[0].name": "features"})},
         expect=["`features`", "twice"]),
    case("table-input-without-columns", "train", T,
         files={T: task(**{"inputs[0].columns": [], "inputs[0].categorical": []})}, expect="needs `columns`"),
    # --- the data -----------------------------------------------------------------------------------------------
    case("input-column-missing", "train", T, files={T: task(**{"inputs[0].columns": ["x1", "x9"]})},
         expect=["column `x9`", "x1, x2"]),
    case("categorical-column-missing", "train", T, files={T: task(**{"inputs[0].categorical": ["color"]})},
         expect=["column `color`", "Did you mean `colour`?"]),
    case("category-output-on-a-number-column", "train", T, files={T: task(**{"outputs[0].type": "category"})},
         expect=["no test rows", "is `price` a number?"]),
    case("output-column-missing", "train", T, files={T: task(**{"outputs[0].column": "prize"})},
         expect=["column `prize`", "Did you mean `price`?"]),
    case("source-missing", "train", T, files={T: task(**{SOURCE: "nothere.csv"})},
         expect=["nothere.csv", "does not exist"]),
    case("source-unknown-extension", "train", T, files={T: task(**{SOURCE: "data.xlsx"}), "data.xlsx": "x"},
         expect=["unknown file type", ".xlsx"]),
    case("source-empty-file", "train", T, files={T: task(**{SOURCE: "empty.csv"}), "empty.csv": ""}, expect="empty"),
    case("source-header-only", "train", T,
         files={T: task(**{SOURCE: "head.csv"}), "head.csv": "x1,x2,colour,price\n"}, expect="no rows"),
    case("source-folder-without-index", "train", T, files={T: task(**{SOURCE: "imgs"}), "imgs/": None},
         expect="index CSV"),
    case("builtin-unknown", "train", T, files={T: task(**{SOURCE: "builtin:digts"})},
         expect=["builtin:digts", "Did you mean `digits`?"]),
    case("source-not-utf8", "train", T, files={T: task(**{SOURCE: "latin.csv"}),
                                              "latin.csv": b"x1,x2,colour,price\n1,2,r\xe9d,3\n"},
         expect=["not UTF-8", "byte 0xe9 at position 24, line 2"]),
    case("source-empty-value", "train", T, files={T: task(**{SOURCE: "gap.csv"}),
                                                 "gap.csv": "x1,x2,colour,price\n1,2,red,3\n,5,red,6\n"},
         expect=["row 2", "column `x1`", "empty value"]),
    case("source-not-parquet", "train", T,
         files={T: task(**{SOURCE: "data.parquet"}), "data.parquet": "x1,x2\n1,2\n"},
         expect="cannot be read as parquet"),
    case("source-rows-longer-than-header", "train", T,
         files={T: task(**{SOURCE: "long.csv"}),
                "long.csv": "x1,x2,colour,price\n1,2,red,3,extra,more\n4,5,red,6,x,y\n"},
         expect="more fields than the header"),
    case("options-on-a-file-source", "train", T, files={T: task(**{"data.options": {"size": 100}})},
         expect=["data.options", "builtin"]),
    case("builtin-unknown-option", "train", T,
         files={T: task(**{SOURCE: "builtin:digits", "data.options": {"sise": 1}})},
         expect=["data.options.sise", "no such option"]),
    case("image-files-missing", "train", T,
         files={T: {**task(**{SOURCE: "imgs", "inputs": [{"name": "image", "type": "image", "column": "path",
                                                        "size": [8, 8]}],
                              "outputs": [{"name": "digit", "type": "category", "column": "label"}],
                              "model.encoders": {"image": {"kind": "cnn", "width": 4, "depth": 2}}})},
                "imgs/index.csv": "path,label\n" + "".join(f"m{i}.png,{i % 3}\n" for i in range(30))},
         expect=["m0.png", "row 1", "on_bad_sample"]),
    case("series-shorter-than-window", "train", T,
         files={T: task(**{SOURCE: "series.csv", "inputs": [{"name": "past", "type": "series", "columns": ["v"],
                                                          "window": 500}],
                           "outputs": [{"name": "next", "type": "number", "column": "v", "horizon": 3}],
                           "model.encoders": {}}),
                "series.csv": "v\n" + "".join(f"{i}\n" for i in range(100))},
         expect=["100 points", "window"]),
    case("number-output-holds-text", "train", T, files={T: task(**{"outputs[0].column": "kind"})},
         expect=["column `kind`", "expected a number"]),
    # --- SQL sources --------------------------------------------------------------------------------------------
    case("sql-url-unparsable", "train", T, files=sql_task("notaurl://::::", "orders"),
         expect=["data.source.sql.url", "not a database URL"]),
    case("sql-port-not-a-number", "train", T,
         files=sql_task("postgresql://analyst:Pw0rd42@db.example:54x32/shop", "orders"),
         expect=["port `54x32`", "analyst:***@"]),
    case("sql-password-with-slash-bad-port", "train", T,
         files=sql_task("postgresql://analyst:Pw0rd42/x@db.example:5x/shop", "orders"),
         expect=["port `5x`", "analyst:***@db.example"]),
    case("sql-unknown-dialect", "train", T, files=sql_task("postgres://u@h/db", "t"),
         expect="Did you mean `postgresql`?"),
    case("sql-variable-unset", "train", T, files=sql_task("postgresql://u:${DS_NO_SUCH_PW}@h/db", "t"),
         expect="DS_NO_SUCH_PW"),
    case("sqlite-file-missing", "train", T, files=sql_task("sqlite:///nope.db", "t"),
         expect=["nope.db", "does not exist"]),
    case("sql-table-missing", "train", T, files=sql_task("sqlite:///{db}", "order"),
         expect=["no table `order`", "Did you mean `orders`?"]),
    case("sql-query-not-a-select", "train", T, files=sql_task("sqlite:///{db}", "DELETE FROM orders"),
         expect="expected a SELECT"),
    case("sql-query-syntax-error", "train", T, files=sql_task("sqlite:///{db}", "SELECT x1 FROM orders WHERE"),
         expect="the query failed"),
    # --- train's options and environment ------------------------------------------------------------------------
    case("train-nothing", "train", expect="pass a task YAML"),
    case("train-task-and-resume", "train", T, "--resume", "{run}", files={T: task()}, expect="not both"),
    case("epochs-option-text", "train", T, "--epochs", "ten", files={T: task()}, usage=True, expect="--epochs"),
    case("workers-zero", "train", T, "--workers", "0", files={T: task()}, usage=True, expect="--workers"),
    case("epochs-option-zero", "train", T, "--epochs", "0", files={T: task()}, usage=True, expect="--epochs"),
    case("device-option-unknown", "train", T, "--device", "gpu", files={T: task()}, usage=True,
         expect="Did you mean `cuda`?"),
    case("gpus-per-worker-negative", "train", T, "--gpus-per-worker", "-1", files={T: task()}, usage=True,
         expect="--gpus-per-worker"),
    case("max-epochs-env-text", "train", T, files={T: task()}, env={"DEEPSTATION_MAX_EPOCHS": "abc"},
         expect=["DEEPSTATION_MAX_EPOCHS", "'abc'"]),
    case("device-option-out-of-range", "train", T, "--device", "cuda:99", files={T: task()}, expect="cuda:99"),
    case("resume-finished-run", "train", "--resume", "{run}", expect="already finished"),
    case("resume-without-folder", "train", "--resume", usage=True, expect="--resume"),
    case("resume-not-a-run", "train", "--resume", "{tmp}", expect="not a deepstation run folder"),
    case("runs-dir-is-a-file", "train", T, "--runs-dir", "afile", files={T: task(), "afile": "x"},
         expect=["--runs-dir afile", "is a file"]),
    case("runs-dir-under-a-file", "train", T, "--runs-dir", "afile/runs", files={T: task(), "afile": "x"},
         expect=["afile is a file"]),
    case("runs-dir-env-is-a-file", "train", T, files={T: task(), "afile": "x"},
         env={"DEEPSTATION_RUNS_DIR": "{tmp}/afile"}, expect=["DEEPSTATION_RUNS_DIR", "is a file"]),
    # --- compare and demo ---------------------------------------------------------------------------------------
    case("compare-task-missing", "compare", "nothere.yaml", expect="task file not found"),
    case("compare-unknown-key", "compare", T, files={T: task(**{"trainer.epoch": 1})}, expect="Did you mean `epochs`?"),
    case("compare-runs-dir-is-a-file", "compare", T, "--runs-dir", "afile", files={T: task(), "afile": "x"},
         expect="is a file"),
    case("demo-task-missing", "demo", "--tasks", "nothere.yaml", expect="task file not found"),
    # --- evaluate -----------------------------------------------------------------------------------------------
    case("evaluate-not-a-run", "evaluate", "{tmp}", expect="not a deepstation run folder"),
    case("evaluate-missing-folder", "evaluate", "{tmp}/nothere", expect=["nothere", "no such run folder"]),
    case("evaluate-incomplete-run", "evaluate", "{tmp}/killed",
         files={"killed": RunCopy(("summary.json",), killed=True)}, expect=["incomplete", "killed", "--resume"]),
    case("evaluate-run-without-checkpoint", "evaluate", "{tmp}/r", files={"r": RunCopy(("best.pt",))},
         expect=["best.pt", "checkpoint not found"]),
    case("evaluate-run-corrupt-checkpoint", "evaluate", "{tmp}/r", files={"r": RunCopy(garbage=("best.pt",))},
         expect=["best.pt", "not a readable checkpoint"]),
    case("evaluate-run-without-preprocess", "evaluate", "{tmp}/r", files={"r": RunCopy(("preprocess.json",))},
         expect="preprocess.json"),
    case("predict-run-corrupt-summary", "predict", "{tmp}/r", "{csv}",
         files={"r": RunCopy(garbage=("summary.json",))},
         expect="summary.json"),
    case("predict-run-corrupt-run-json", "predict", "{tmp}/r", "{csv}", files={"r": RunCopy(garbage=("run.json",))},
         expect="run.json"),
    case("evaluate-run-name-not-path", "evaluate", "{run_name}", env={"DEEPSTATION_RUNS_DIR": "{runs}"},
         expect=["no such run folder", "did you mean"]),
    case("evaluate-device-unknown", "evaluate", "{run}", "--device", "gpu", usage=True, expect="Did you mean `cuda`?"),
    case("evaluate-device-out-of-range", "evaluate", "{run}", "--device", "cuda:99", expect="cuda:99"),
    case("evaluate-data-missing", "evaluate", "{run}", "--data", "nothere.csv", expect=["--data nothere.csv"]),
    case("evaluate-data-lacks-output", "evaluate", "{run}", "--data", "in.csv",
         files={"in.csv": "x1,x2,colour\n1,2,red\n"}, expect="price"),
    # --- predict ------------------------------------------------------------------------------------------------
    case("predict-input-missing", "predict", "{run}", "nothere.csv", expect=["nothere.csv", "no such file"]),
    case("predict-input-column-missing", "predict", "{run}", "in.csv", files={"in.csv": "x1,colour\n1,red\n"},
         expect="x2"),
    case("predict-empty-csv", "predict", "{run}", "in.csv", files={"in.csv": ""}, expect="empty"),
    case("predict-image-with-table-task", "predict", "{run}", "scan.png", files={"scan.png": b"\x89PNG"},
         expect="image or audio"),
    case("predict-output-extension", "predict", "{run}", "{csv}", "-o", "out.txt", expect=".csv or .parquet"),
    case("predict-output-is-a-folder", "predict", "{run}", "{csv}", "-o", "out.csv", files={"out.csv/": None},
         expect="is a folder"),
    case("predict-output-under-a-file", "predict", "{run}", "{csv}", "-o", "afile/out.csv", files={"afile": "x"},
         expect="afile is a file"),
    case("predict-not-a-run", "predict", "{tmp}", "{csv}", expect="not a deepstation run folder"),
    case("predict-run-missing", "predict", "{tmp}/nothere", "{csv}", expect="no such run folder"),
    case("predict-ids-on-a-table-run", "predict", "{run}", "{csv}", "--ids", "a", expect=["--ids", "leave --ids out"]),
    case("predict-device-unknown", "predict", "{run}", "{csv}", "--device", "gpu:0", usage=True, expect="--device"),
    case("predict-unregistered-model", "predict", "models:/no-such-model/1", "{csv}", expect="no-such-model"),
    case("predict-model-uri-malformed", "predict", "models:/", "{csv}", expect="models:/"),
    # --- register and runs --------------------------------------------------------------------------------------
    case("register-not-a-run", "register", "no-such-run", "mymodel", expect="no-such-run"),
    case("runs-no-action", "runs", expect="list, show RUN"),
    case("runs-show-unknown", "runs", "show", "no-such-run", expect="no-such-run"),
    case("runs-compare-unknown", "runs", "compare", "no-such-a", "no-such-b", expect="no-such-a"),
    case("runs-list-limit-text", "runs", "list", "--limit", "ten", usage=True, expect="--limit"),
    case("runs-sync-not-a-run", "runs", "sync", "{tmp}/nothere", expect="nothere"),
    case("tracking-uri-bad-port", "runs", "list", env={"DEEPSTATION_TRACKING_URI": "postgresql://u:Pw0rd42@h:54x/db"},
         expect="54x"),
    # --- usage, env, lab, doctor, schema ------------------------------------------------------------------------
    case("usage-bad-date", "usage", "--since", "2026-13-45", expect=["--since 2026-13-45", "YYYY-MM-DD"]),
    case("usage-date-with-slashes", "usage", "--since", "2026/11/01", expect="YYYY-MM-DD"),
    case("usage-by-unknown", "usage", "--by", "team", usage=True, expect="--by"),
    case("env-no-action", "env", expect="env snapshot"),
    case("env-check-missing", "env", "check", "nothere.json", expect=["nothere.json", "no such file"]),
    case("env-check-not-json", "env", "check", "snap.json", files={"snap.json": "not json"}, expect="not JSON"),
    case("env-check-not-a-snapshot", "env", "check", "snap.json", files={"snap.json": "[1, 2]"},
         expect="not an environment snapshot"),
    case("env-check-snapshot-of-other-shape", "env", "check", "snap.json",
         files={"snap.json": '{"python": {"version": 3}, "packages": {"numpy": 1}, "gpus": "none", "torch": 5}'},
         expect="snap.json"),
    case("env-snapshot-output-is-a-folder", "env", "snapshot", "-o", "{tmp}", expect="folder"),
    case("env-snapshot-output-under-a-file", "env", "snapshot", "-o", "afile/env.json", files={"afile": "x"},
         expect="afile is a file"),
    case("ui-port-out-of-range", "ui", "--port", "70000", expect=["--port 70000", "1 to 65535"]),
    case("ui-port-busy", "ui", "--port", "{busy_port}", expect="already listens"),
    case("lab-port-text", "lab", "--port", "http", usage=True, expect="--port"),
    case("lab-port-out-of-range", "lab", "--port", "70000", expect=["--port 70000", "1 to 65535"]),
    case("lab-port-busy", "lab", "--port", "{busy_port}", expect="is not free"),
    case("lab-dir-missing", "lab", "--dir", "nothere", expect="--dir nothere"),
    case("lab-dir-is-a-file", "lab", "--dir", "afile", files={"afile": "x"}, expect="not a folder"),
    case("doctor-unknown-check", "doctor", "--only", "gpux", expect="gpux"),
    case("doctor-constraints-missing", "doctor", "--constraints", "nothere.txt", expect="nothere.txt"),
    case("schema-extra-argument", "schema", "task.yaml", usage=True, expect="unrecognized arguments"),
    case("unknown-verb", "trian", usage=True, expect="invalid choice"),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A good CSV, a SQLite file with that table, and one run trained on it (one epoch, not tracked)."""
    folder = tmp_path_factory.mktemp("bad-input")
    rng = np.random.default_rng(0)
    n = 120
    x1, x2 = rng.normal(size=n), rng.uniform(0, 5, size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": rng.choice(["red", "green", "blue"], size=n),
                          "price": 10 + 3 * x1 + x2, "kind": np.where(x1 > 0, "high", "low")})
    csv = folder / "table.csv"
    frame.to_csv(csv, index=False)
    db = folder / "shop.db"
    with sqlite3.connect(db) as conn:
        frame.to_sql("orders", conn, index=False)
    good = folder / "task.yaml"
    good.write_text(yaml.safe_dump(table_task(csv, epochs=1), sort_keys=False))
    with chdir(folder):
        cli("train", good, "--runs-dir", folder / "runs", "--no-track", "--quiet", check=0)
    (run,) = (folder / "runs").iterdir()
    return {"run": run, "csv": csv, "db": db}


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _fill(value, ctx: dict):
    if isinstance(value, str):
        for key, v in ctx.items():
            value = value.replace("{" + key + "}", str(v))
        return value
    if isinstance(value, dict):
        return {_fill(k, ctx): _fill(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ctx) for v in value]
    return value


def _write(tmp_path: Path, name: str, content, ctx: dict) -> None:
    path = tmp_path / name
    if content is None:  # "name/": a folder
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, RunCopy):
        shutil.copytree(ctx["run"], path)
        if content.killed:
            as_killed(path)
        for name in content.remove:
            (path / name).unlink()
        for name in content.garbage:
            (path / name).write_text("garbage{")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        path.write_text(yaml.safe_dump(_fill(content, ctx), sort_keys=False))
    else:
        path.write_text(_fill(content, ctx))


@pytest.mark.parametrize("args, files, env, expect, usage", CASES)
def test_a_mistake_is_one_line_with_exit_code_2(args, files, env, expect, usage, shared, tmp_path, request):
    ctx = {**shared, "tmp": tmp_path, "run_name": shared["run"].name, "runs": shared["run"].parent}
    if any("{busy_port}" in a for a in args):
        ctx["busy_port"] = request.getfixturevalue("busy_port")
    for name, content in files.items():
        _write(tmp_path, name, content, ctx)
    result = cli(*[_fill(a, ctx) for a in args], env={k: _fill(v, ctx) for k, v in env.items()})
    if usage:  # argparse: its usage line, then `deepstation VERB: error: ...`
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        line = result.stderr.strip().splitlines()[-1]
        assert ": error: " in line, result.stderr
    else:
        line = user_error(result)
        assert line.startswith("error: "), line
    for words in expect:
        assert words in line, line
    assert "Pw0rd42" not in result.stdout + result.stderr  # a password in a URL never shows


def test_cases_are_many_and_distinct():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 60


def test_device_cuda_without_a_gpu(shared, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: device cuda is no mistake here")
    path = tmp_path / T
    path.write_text(yaml.safe_dump(_fill(task(**{"trainer.device": "cuda"}), shared)))
    assert "cuda" in user_error(cli("train", path))
    path.write_text(yaml.safe_dump(_fill(task(**{"trainer.precision": "fp16", "trainer.device": "cpu"}), shared)))
    assert "fp16" in user_error(cli("train", path))


def test_predict_makes_the_output_folder(shared, tmp_path):
    """-o results/preds.csv where results/ does not exist: made, as `mkdir -p` would."""
    result = cli("predict", shared["run"], shared["csv"], "-o", "results/sub/preds.csv", check=0)
    assert "written to results/sub/preds.csv" in result.stderr
    assert len(pd.read_csv(tmp_path / "results" / "sub" / "preds.csv")) == 120


def test_a_failed_predict_leaves_no_output_folder(shared, tmp_path):
    user_error(cli("predict", shared["run"], "nothere.csv", "-o", "results/preds.csv"))
    assert not (tmp_path / "results").exists()


def test_a_closed_pipe_ends_quietly(shared):
    """`deepstation predict RUN in.csv | head -1`: the reader has gone; no traceback, the exit code of SIGPIPE."""
    for args in (["predict", shared["run"], shared["csv"]], ["schema"]):
        child = subprocess.Popen([sys.executable, "-m", "deepstation", *map(str, args)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=os.environ.copy())
        child.stdout.close()  # before the child writes: every write meets a closed pipe
        err = child.stderr.read().decode()
        child.stderr.close()
        assert child.wait(timeout=120) == 141, err
        assert err == "", err


def test_merge_keys_are_not_duplicates(shared, tmp_path):
    """`<<: {...}` and then a key of it again overrides it on purpose: no duplicate; a merged key nobody overrides
    comes through."""
    from deepstation.config import load_task

    text = yaml.safe_dump(_fill(task(), shared), sort_keys=False)
    path = tmp_path / T
    path.write_text(text.replace("trainer:\n", "trainer:\n  <<: {epochs: 7, seed: 3, grad_clip: 2.5}\n"))
    loaded = load_task(path)
    assert (loaded.trainer.epochs, loaded.trainer.seed, loaded.trainer.grad_clip) == (1, 0, 2.5)


def test_a_comma_at_the_end_of_each_row_shifts_no_column(tmp_path):
    """pandas reads one field more than the header as an index column, moving every value one column left."""
    from deepstation.data.sources import read_source

    path = tmp_path / "trailing.csv"
    path.write_text("x1,x2\n1,2,\n3,4,\n")
    frame = read_source(str(path)).frame
    assert frame.to_dict("list") == {"x1": [1, 3], "x2": [2, 4]}


def test_a_refused_write_is_one_line_and_any_other_os_error_a_traceback(monkeypatch):
    """A full disk or a folder without write permission is the user's to fix; an OSError without a file named or of
    another kind is a bug, and its traceback is kept."""
    import errno

    from deepstation.cli import schema

    def refuse(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/srv/runs/tiny/best.pt")

    monkeypatch.setattr(schema, "run", refuse)
    line = user_error(cli("schema"))
    assert line == "error: /srv/runs/tiny/best.pt: no space left on device; free some space or choose another disk"

    def fail(args):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(schema, "run", fail)
    with pytest.raises(OSError, match="Input/output error"):
        cli("schema")
