"""Data as people download it: the UCR/UEA archive files, long and wide tables, files given per split, header-less
CSV and column patterns; and the mistakes each invites, refused in one line before anything is written."""
import json

import numpy as np
import pandas as pd
import pytest
import yaml

import deepstation
from conftest import cli, last_json, user_error, write_task

RUNS = "runs"


def waves(n: int, seed: int, lengths=(30, 30), channels: int = 1):
    """Two classes: a slow sine ("a") and a fast one ("b"), with noise; lengths drawn from the range."""
    rng = np.random.default_rng(seed)
    found = []
    for i in range(n):
        label = "ab"[i % 2]
        length = int(rng.integers(lengths[0], lengths[1] + 1))
        t = np.linspace(0, 1, length)
        freq = 2 if label == "a" else 6
        series = np.stack([np.sin(2 * np.pi * freq * t + k) for k in range(channels)], 1)
        found.append((label, (series + 0.1 * rng.normal(size=series.shape)).astype(np.float32)))
    return found


def wide_table(rows) -> pd.DataFrame:
    """A row per series: its label, then its values in columns v0, v1, ... (blank past a shorter series' end)."""
    return pd.DataFrame([{"label": label, **{f"v{t}": s[t, 0] for t in range(len(s))}} for label, s in rows])


def series_task(source, columns=("series",), epochs=2, **data) -> dict:
    return {"name": "waves", "data": {"source": source, **data},
            "inputs": [{"name": "wave", "type": "series", "columns": list(columns)}],
            "outputs": [{"name": "kind", "type": "category", "column": "label"}],
            "model": {"encoders": {"wave": {"kind": "cnn1d", "width": 8, "depth": 2}}},
            "trainer": {"epochs": epochs, "batch_size": 8, "monitor": "accuracy", "learning_rate": 0.01}}


def write_ucr_tsv(path, rows, label_as_float=False):
    longest = max(len(s) for _, s in rows)
    with open(path, "w") as f:
        for label, s in rows:
            values = [f"{v:.5f}" for v in s[:, 0]] + ["NaN"] * (longest - len(s))  # the archive pads with NaN
            number = "1" if label == "a" else "2"
            f.write("\t".join([f"{float(number):.7e}" if label_as_float else number, *values]) + "\n")


def write_ts(path, rows):
    channels = rows[0][1].shape[1]
    lines = ["# made by a test", "@problemName waves", "@timeStamps false", "@missing false",
             f"@univariate {'true' if channels == 1 else 'false'}", f"@dimensions {channels}",
             "@equalLength false", "@classLabel true a b", "@data"]
    for label, s in rows:
        lines.append(":".join(",".join(f"{v:.5f}" for v in s[:, k]) for k in range(channels)) + f":{label}")
    path.write_text("\n".join(lines) + "\n")


def test_ucr_tsv_pair_unequal_lengths_valid_carved_and_predicted(tmp_path):
    write_ucr_tsv(tmp_path / "W_TRAIN.tsv", waves(40, 0, (24, 32)), label_as_float=True)
    write_ucr_tsv(tmp_path / "W_TEST.tsv", waves(20, 1, (24, 32)))
    task = series_task({"train": "W_TRAIN.tsv", "test": "W_TEST.tsv"}, epochs=3)
    result = cli("train", write_task(tmp_path, task), "--json", check=0)
    summary = last_json(result.stdout)
    assert summary["data"]["rows"] == {"train": 34, "valid": 6, "test": 20}
    assert any("held out for validation" in n for n in summary["data"]["notes"])
    assert any("24 to 32 steps, padded" in n for n in summary["data"]["notes"])
    assert "note: data.source's files give no validation rows" in result.stderr
    assert set(json.loads((tmp_path / RUNS / summary["run"] / "preprocess.json").read_text())["outputs"]["kind"]
               ["labels"]) == {"1", "2"}  # 1.0000000e+00 is class "1", as in the test file
    predicted = pd.read_csv(pd.io.common.StringIO(cli("predict", summary["run_dir"], tmp_path / "W_TEST.tsv",
                                                      check=0).stdout))
    assert len(predicted) == 20 and set(predicted["kind_pred"].astype(str)) <= {"1", "2"}
    # each series' own steps travel with it into the model, and into its ONNX export (checked against torch)
    cli("export", summary["run_dir"], "-o", tmp_path / "w.onnx", check=0)
    exported = json.loads((tmp_path / "w.json").read_text())
    assert "wave.steps" in [i["name"] for i in exported["inputs"]] and exported["max_abs_diff"] < 1e-4


def test_ts_multivariate_unequal_series_column_and_dimension_pattern(tmp_path):
    write_ts(tmp_path / "train.ts", waves(30, 0, (10, 16), channels=2))
    write_ts(tmp_path / "test.ts", waves(12, 1, (10, 16), channels=2))
    source = {"train": str(tmp_path / "train.ts"), "test": str(tmp_path / "test.ts")}
    whole = deepstation.train(series_task(source), runs_dir=tmp_path / RUNS, track=False)
    assert whole.codecs["wave"].state["channels"] == 2 and whole.codecs["wave"].state["length"] == 16
    by_dim = deepstation.train(series_task(source, columns=["dim_*"]), runs_dir=tmp_path / RUNS, track=False)
    config = yaml.safe_load((by_dim.dir / "config.yaml").read_text())
    assert config["inputs"][0]["columns"] == ["dim_0", "dim_1"]  # the pattern, as it was expanded
    assert by_dim.codecs["wave"].state["channels"] == 2
    assert len(by_dim.predict(tmp_path / "test.ts")) == 12


def long_table(path, n=24, splits=("train", "test")):
    rows = []
    for i, (label, s) in enumerate(waves(n, 0, (12, 18))):
        split = splits[0] if i < n * 2 // 3 else splits[-1]
        steps = np.random.default_rng(i).permutation(len(s))  # rows in any order: `order` sorts them
        rows += [{"series_id": f"s{i}", "split": split, "label": label, "t": int(t), "value": float(s[t, 0])}
                 for t in steps]
    pd.DataFrame(rows).to_csv(path, index=False)
    return pd.DataFrame(rows)


def test_long_format_gathers_each_id_and_a_train_test_split_column_gets_valid_rows(tmp_path):
    frame = long_table(tmp_path / "long.csv")
    task = series_task("long.csv", columns=["value"], split={"column": "split"})
    task["inputs"][0].update(id="series_id", order="t")
    summary = last_json(cli("train", write_task(tmp_path, task), "--json", check=0).stdout)
    assert sum(summary["data"]["rows"].values()) == 24 and summary["data"]["rows"]["valid"] > 0
    assert summary["monitor"] == "valid.accuracy" and "accuracy" in summary["metrics"]["valid"]
    new = frame[frame.series_id.isin(["s1", "s2", "s3"])].drop(columns=["label", "split"])
    predicted = deepstation.load(summary["run_dir"]).predict(new)
    assert predicted["series_id"].tolist() == ["s1", "s2", "s3"] and "kind_pred" in predicted


def test_wide_table_with_a_pattern_and_a_header_less_csv(tmp_path):
    rows = waves(40, 0)
    wide = wide_table(rows)
    wide.to_csv(tmp_path / "wide.csv", index=False)
    run = deepstation.train(series_task(str(tmp_path / "wide.csv"), columns=["v*"], split={"valid": 0.2}),
                            runs_dir=tmp_path / RUNS, track=False)
    assert run.codecs["wave"].state["length"] == 30
    wide.to_csv(tmp_path / "bare.csv", index=False, header=False)
    task = series_task(str(tmp_path / "bare.csv"), columns=["col_[1-9]*"], header=False, split={"valid": 0.2})
    task["outputs"][0]["column"] = "col_0"
    run = deepstation.train(task, runs_dir=tmp_path / RUNS, track=False)
    assert run.codecs["wave"].state["length"] == 30 and run.targets["kind"].state["labels"] == ["a", "b"]


def mistake(tmp_path, task) -> str:
    line = user_error(cli("train", write_task(tmp_path, task)))
    assert not (tmp_path / RUNS).exists()  # refused before any run folder
    return line


def test_a_long_table_read_without_id_is_refused_not_trained_as_length_one_series(tmp_path):
    long_table(tmp_path / "long.csv")
    line = mistake(tmp_path, series_task("long.csv", columns=["value"], split={"column": "split"}))
    assert "one step long" in line and "inputs.wave.id" in line


@pytest.mark.parametrize("column,expected", [("label", "in column `label`"),
                                             ("split", "in column `split`")])
def test_a_label_or_split_that_changes_within_a_series_names_the_series(tmp_path, column, expected):
    frame = long_table(tmp_path / "long.csv")
    rows = frame.series_id == "s0"
    first, second = ("a", "b") if column == "label" else ("train", "test")
    frame.loc[rows, column] = np.where(np.arange(rows.sum()) % 2, second, first)  # alternating within s0
    frame.to_csv(tmp_path / "long.csv", index=False)
    task = series_task("long.csv", columns=["value"], split={"column": "split"})
    task["inputs"][0].update(id="series_id", order="t")
    line = mistake(tmp_path, task)
    assert "series 's0'" in line and expected in line


def test_pattern_and_split_file_mistakes_are_one_line(tmp_path):
    rows = waves(20, 0)
    wide = wide_table(rows)
    wide.to_csv(tmp_path / "wide.csv", index=False)
    line = mistake(tmp_path, series_task("wide.csv", columns=["x*"]))
    assert "'x*'" in line and "matches no column" in line and "columns are v0, v1" in line  # not the label
    wide.drop(columns=["v3"]).to_csv(tmp_path / "test.csv", index=False)
    line = mistake(tmp_path, series_task({"train": "wide.csv", "test": "test.csv"}, columns=["v*"]))
    assert "test.csv (data.source.test) lacks column `v3`" in line
    line = mistake(tmp_path, series_task({"train": "wide.csv", "test": "nowhere.csv"}, columns=["v*"]))
    assert "data.source.test" in line and "does not exist" in line
    task = series_task("wide.csv", columns=["v*"])
    task["inputs"][0]["order"] = "t"
    assert "inputs.wave.order" in mistake(tmp_path, task)


def test_a_ts_file_that_does_not_parse_names_the_line(tmp_path):
    write_ts(tmp_path / "train.ts", waves(10, 0, (10, 12)))
    text = (tmp_path / "train.ts").read_text().splitlines()
    text[11] = text[11].replace(",", ",x", 1)
    (tmp_path / "train.ts").write_text("\n".join(text))
    line = mistake(tmp_path, series_task("train.ts", split={"valid": 0.2}))
    assert "train.ts: line 12" in line


def test_series_normalised_each_by_its_own_level_and_spread():
    from deepstation.config import SeriesInput
    from deepstation.data.series import SeriesCodec
    from deepstation.data.sources import Table

    spec = SeriesInput(name="wave", type="series", columns=["series"], normalize="each")
    codec = SeriesCodec(spec)
    short, long = np.arange(4, dtype=np.float32)[:, None] * 10 + 100, np.linspace(0, 1, 6, dtype=np.float32)[:, None]
    table = Table(pd.DataFrame({"series": [short, long]}), "t", None)
    raw, _ = codec.read(table)
    codec.fit(raw)
    x = codec.encode(raw)["x"].numpy()
    assert x.shape == (2, 6, 1)
    assert np.allclose(x[0, :4, 0], (short[:, 0] - short.mean()) / short.std()) and np.allclose(x[0, 4:], 0)
    assert np.allclose(x[1, :, 0].mean(), 0, atol=1e-6) and np.allclose(x[1, :, 0].std(), 1, atol=1e-5)
    assert codec.notes() == ["inputs.wave: series of 4 to 6 steps, padded at the end (or cut) to 6"]


def test_series_normalised_both_ways_side_by_side():
    from deepstation.config import SeriesInput
    from deepstation.data.series import SeriesCodec
    from deepstation.data.sources import Table

    codec = SeriesCodec(SeriesInput(name="wave", type="series", columns=["series"], normalize="both"))
    series = [np.arange(5, dtype=np.float32)[:, None] * k + k for k in (1, 3)]
    raw, _ = codec.read(Table(pd.DataFrame({"series": series}), "t", None))
    codec.fit(raw)
    x = codec.encode(raw)["x"].numpy()
    assert x.shape == (2, 5, 2) and codec.shape()["channels"] == 2
    assert not np.allclose(x[0, :, 0], x[1, :, 0]) and np.allclose(x[0, :, 1], x[1, :, 1])  # level kept; shape alike


def test_review_mends_patterns_lengths_blanks_dates_and_kernels(tmp_path):
    """A pattern never takes the answer; test series do not decide the length; a shorter series in a wide table
    ends in blanks; dates and even kernels where they mean nothing are refused."""
    rows = waves(40, 0, (20, 30))
    wide = wide_table(rows)
    wide.to_csv(tmp_path / "bare.csv", index=False, header=False)  # shorter rows end in blanks
    task = series_task(str(tmp_path / "bare.csv"), columns=["col_*"], header=False, split={"valid": 0.2})
    task["outputs"][0]["column"] = "col_0"
    run = deepstation.train(task, runs_dir=tmp_path / "trained", track=False)
    config = yaml.safe_load((run.dir / "config.yaml").read_text())
    assert "col_0" not in config["inputs"][0]["columns"] and not run.summary["warnings"]  # no leakage
    train = wide.iloc[run.data.parts["train"].rows]
    assert run.codecs["wave"].state["length"] == int(train.drop(columns="label").notna().sum(axis=1).max())

    for key, value, expected in [("date", "when", "inputs.wave.date"), ("kernel", 4, "an even kernel (4)")]:
        task = series_task("bare.csv", header=False, columns=["col_[1-9]*"])
        task["outputs"][0]["column"] = "col_0"
        (task["inputs"][0] if key == "date" else task["model"]["encoders"]["wave"])[key] = value
        assert expected in mistake(tmp_path, task)
