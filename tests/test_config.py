"""The task schema: defaults, misspelt keys with suggestions, wrong types, cross-field rules, one-line errors."""
from __future__ import annotations

import copy
import json

import pytest

from conftest import ROOT, cli, image_task, user_error, write_task
from deepstation.config import Task, json_schema, load_task
from deepstation.errors import DeepstationError


def task(**changes) -> dict:
    t = image_task("builtin:digits")
    t["inputs"][0]["column"] = "image"
    for path, value in changes.items():
        node = t
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return t


def error_of(raw: dict) -> str:
    with pytest.raises(DeepstationError) as info:
        load_task(raw)
    return str(info.value)


def test_defaults_fill_in():
    t = load_task({"name": "t", "data": {"source": "builtin:digits"},
                   "inputs": [{"name": "image", "type": "image", "column": "image"}],
                   "outputs": [{"name": "digit", "type": "category", "column": "label"}]})
    assert t.trainer.optimizer == "adamw" and t.trainer.precision == "auto" and t.trainer.device == "auto"
    assert t.data.split.valid == 0.15 and t.encoder_for("image").kind == "cnn"


def test_misspelt_top_level_key_suggests():
    raw = task()
    raw["trainr"] = raw.pop("trainer")
    msg = error_of(raw)
    assert "unknown key `trainr`" in msg and "Did you mean `trainer`?" in msg


def test_misspelt_nested_key_names_the_path():
    msg = error_of(task(**{"trainer.learning_rat": 0.1}))
    assert "`trainer.learning_rat`" in msg and "Did you mean `learning_rate`?" in msg


def test_misspelt_key_inside_a_typed_list_entry():
    raw = task()
    raw["inputs"][0]["colum"] = raw["inputs"][0].pop("column")
    msg = error_of(raw)
    assert "`inputs[0].colum`" in msg and "Did you mean `column`?" in msg


def test_unknown_type_suggests():
    msg = error_of(task(**{"inputs.0.type": "imag"}))
    assert "inputs[0].type" in msg and "'imag'" in msg and "Did you mean `image`?" in msg


def test_missing_key():
    raw = task()
    del raw["outputs"][0]["column"]
    assert "missing key `outputs[0].column`" in error_of(raw)


def test_wrong_type_names_value():
    msg = error_of(task(**{"trainer.epochs": "ten"}))
    assert "`trainer.epochs`" in msg and "'ten'" in msg


def test_bad_device_string():
    assert "expected auto, cpu, cuda, cuda:N or mps" in error_of(task(**{"trainer.device": "gpu"}))


def test_split_must_leave_training_rows():
    assert "valid + test must be below 1" in error_of(task(**{"data.split.valid": 0.6, "data.split.test": 0.5}))


def test_encoder_for_unknown_input_suggests():
    raw = task()
    raw["model"]["encoders"] = {"imgae": {"kind": "cnn"}}
    msg = error_of(raw)
    assert "model.encoders.imgae" in msg and "Did you mean `image`?" in msg


def test_encoder_kind_must_fit_input_type(table_csv):
    from conftest import table_task

    raw = table_task(table_csv)
    raw["model"]["encoders"]["features"] = {"kind": "cnn"}
    assert "`cnn` cannot encode a table input; use mlp" in error_of(raw)


def test_duplicate_names():
    raw = task(**{"outputs.0.name": "image"})
    assert "the name `image` is used twice" in error_of(raw)


def test_relative_source_resolves_against_task_file(tmp_path):
    (tmp_path / "sub").mkdir()
    raw = task(**{"data.source": "data.csv"})
    t = load_task(write_task(tmp_path / "sub", raw))
    assert t.data.source == str((tmp_path / "sub" / "data.csv").resolve())


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndata:\n  source: [unclosed\n")
    with pytest.raises(DeepstationError, match=r"bad.yaml: line \d+: not valid YAML"):
        load_task(path)


def test_resolved_config_round_trips():
    t = load_task(task())
    again = Task.model_validate(json.loads(t.model_dump_json()))
    assert again == t


def test_schema_lists_the_sections():
    schema = json_schema()
    assert {"name", "data", "inputs", "outputs", "model", "trainer"} <= set(schema["properties"])


def test_examples_are_valid():
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        load_task(path)


@pytest.mark.parametrize("mutate, expected", [
    (lambda t: t.update(trainr=t.pop("trainer")), "Did you mean `trainer`?"),
    (lambda t: t["trainer"].update(epochs=-1), "`trainer.epochs`"),
    (lambda t: t["outputs"][0].pop("column"), "missing key `outputs[0].column`"),
])
def test_cli_config_errors_are_one_line_exit_2(tmp_path, mutate, expected):
    raw = copy.deepcopy(task())
    mutate(raw)
    line = user_error(cli("train", write_task(tmp_path, raw)))
    assert "task.yaml" in line and expected in line


def test_cli_missing_task_file(tmp_path):
    assert "task file not found" in user_error(cli("train", tmp_path / "nope.yaml"))


def test_cli_schema_prints_json():
    result = cli("schema", check=0)
    assert json.loads(result.stdout)["title"] == "deepstation task"


def test_a_sequence_output_needs_time_steps():
    raw = task()
    raw["outputs"][0] = {"name": "caption", "type": "sequence", "column": "caption"}
    raw["model"]["encoders"]["image"] = {"kind": "mlp"}
    assert "gives one vector, not the time steps" in error_of(raw)


def test_a_sequence_output_reads_one_input(table_csv):
    from conftest import table_task

    raw = table_task(table_csv)
    raw["outputs"][0] = {"name": "caption", "type": "sequence", "column": "kind"}
    assert "exactly one image, audio or series input" in error_of(raw)
