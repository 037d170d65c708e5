"""The task schema: what goes in, what comes out, the model and the trainer.

A task is YAML validated by pydantic. Unknown keys are rejected with the file, the key path and a
"did you mean"; every error becomes one line (see `load_task`). No torch here: `deepstation schema`
and `--help` stay fast.
"""
from __future__ import annotations

import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deepstation.errors import DeepstationError, did_you_mean

Activation = Literal["relu", "gelu", "silu", "tanh"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- data -------------------------------------------------------------------------------------


class Split(Strict):
    """Fractions of the rows held out for validation and test; deterministic by seed."""

    valid: float = Field(0.15, ge=0, lt=1)
    test: float = Field(0.15, ge=0, lt=1)
    seed: int = 0
    column: Optional[str] = Field(None, description="A column of train/valid/test naming each row's split; "
                                                    "the fractions are then not used, but for `valid` where the "
                                                    "column names no valid rows")
    backtest: int = Field(1, ge=1, description="Forecasting: test this many origins, each a horizon before the "
                                               "next (rolling origin), training a model for each; metrics averaged")

    @model_validator(mode="after")
    def _leaves_training_rows(self):
        if self.valid + self.test >= 1:
            raise ValueError(f"valid + test must be below 1 to leave rows for training, got {self.valid} + {self.test}")
        return self


class SqlQuery(Strict):
    url: str = Field(description="A SQLAlchemy URL such as sqlite:///data.db or postgresql://user@host/db; "
                                 "$NAME or ${NAME} is read from the environment (keep passwords there)")
    query: str = Field(description="The SELECT whose rows become the table; a table name alone reads the whole table")
    chunksize: int = Field(50_000, ge=1, description="Rows fetched per round trip, for large tables")


class SqlSource(Strict):
    sql: SqlQuery


class SplitFiles(Strict):
    """Data that comes split: one file (or folder) per split, read alike and marked with its split."""

    train: str = Field(description="The training rows' file")
    test: str = Field(description="The test rows' file")
    valid: Optional[str] = Field(None, description="The validation rows' file; default: data.split.valid of the "
                                                   "training rows, stratified")


class Data(Strict):
    source: Union[str, SqlSource, SplitFiles] = Field(
        description="A CSV, TSV or Parquet file, a UCR/UEA .tsv or sktime .ts archive file, a folder of images "
                    "with an index CSV, builtin:NAME, {sql: {url, query}} to read rows from a SQL database, or "
                    "{train: FILE, test: FILE, valid: FILE} for data that comes split")
    index: str = Field("index.csv", description="For a folder source: the CSV inside it listing path,label rows")
    header: bool = Field(True, description="false: the CSV/TSV has no header row; its columns are named "
                                           "col_0, col_1, ...")
    split: Split = Split()
    on_bad_sample: Literal["error", "skip"] = "error"
    options: dict[str, Any] = Field(default_factory=dict, description="Settings of a builtin: source, such as its size")


# --- inputs -----------------------------------------------------------------------------------


class TableInput(Strict):
    name: str
    type: Literal["table"]
    columns: list[str] = Field(default_factory=list, description="Numeric columns, standardised on train")
    categorical: list[str] = Field(default_factory=list, description="Category columns, learned as embeddings")

    @model_validator(mode="after")
    def _has_columns(self):
        if not self.columns and not self.categorical:
            raise ValueError("a table input needs `columns` (numeric) or `categorical`, or both")
        return self


class ImageInput(Strict):
    name: str
    type: Literal["image"]
    column: str = Field(description="The column holding image paths (or arrays, for built-in sets)")
    size: Optional[tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]] = Field(
        None, description="[height, width]; default: the first image's size")
    channels: Optional[Literal[1, 3]] = Field(None, description="1 (grayscale) or 3 (RGB); default: the first image's")
    resize: Literal["stretch", "pad", "crop"] = Field(
        "pad", description="An image of another size than `size`: pad (keep the aspect ratio, scale to fit and pad "
                           "the rest), crop (keep the aspect ratio, scale to cover and cut the centre) or stretch")


class AudioInput(Strict):
    name: str
    type: Literal["audio"]
    column: str = Field(description="The column holding audio file paths (WAV, FLAC, ...), relative to the index file")
    sample_rate: int = Field(16000, ge=1000, description="Audio is resampled to this rate")
    n_mels: int = Field(40, ge=8, description="Mel bands of the log-mel spectrogram (computed in torch)")
    augment: bool = Field(True, description="SpecAugment-style time and frequency masking while training")


class SeriesInput(Strict):
    """A window of past values (forecasting), or, with `window` left out, a whole series held in each row."""

    name: str
    type: Literal["series"]
    columns: list[str] = Field(min_length=1, description="Value columns (rows in time order; or, with `id`, one "
                                                         "column per channel of a long table); or one column of "
                                                         "arrays; patterns such as \"v*\" name many")
    window: Optional[int] = Field(None, ge=2, description="Past steps the model sees; leave out when each row holds "
                                                         "a whole series")
    date: Optional[str] = Field(None, description="Date column: parsed, checked for order and duplicates")
    calendar: bool = Field(False, description="Add month-of-year and day-of-week features of the forecast origin")
    transform: Literal["none", "log"] = Field("none", description="log for series that grow by multiples")
    id: Optional[str] = Field(None, description="The column naming each row's series (long format: one row per "
                                                "series and time step). Forecasting: one global model learns from "
                                                "the windows of every series; otherwise each id's rows are gathered "
                                                "into one series, one sample")
    order: Optional[str] = Field(None, description="A column of whole time steps (t) ordering each series' rows, "
                                                   "when there is no `date`; default: the row order")
    length: Optional[int] = Field(None, ge=2, description="Whole series of different lengths are brought to this "
                                                          "length (see `unequal`); default: the longest")
    normalize: Literal["train", "each", "both"] = Field(
        "train", description="Whole series: train standardises each channel by the training rows' mean and std; "
                             "each z-normalises every series by its own (the UCR archive's way: shape over level); "
                             "both gives the model the two side by side (twice the channels)")
    unequal: Literal["pad", "resample"] = Field(
        "pad", description="Whole series of different lengths: pad (at the end, with the channel's mean; longer ones "
                           "are cut) or resample (linear interpolation to `length`)")
    season: Optional[int] = Field(None, ge=1, description="Steps per season (12 monthly, 4 quarterly, 1 none), for "
                                                          "seasonal naive, MASE and the references; default: from "
                                                          "the dates, else 1")
    scaling: Literal["auto", "difference", "ratio"] = Field(
        "auto", description="How a window is made relative to its level (its mean): difference subtracts it, "
                            "ratio divides by it (x / level - 1); auto: ratio for many series without log, else "
                            "difference (after log, a difference is a ratio)")
    embed_id: int = Field(0, ge=0, description="With `id`: the size of a learned embedding of each series' id, read "
                                                "beside the window (0: none)")
    min_history: Optional[int] = Field(None, ge=1, description="Forecast from origins with at least this many past "
                                                               "points, padding the window on the left with the "
                                                               "series' first value; default: the whole window")
    max_origins: Optional[int] = Field(None, ge=1, description="Train on the latest N origins of each series only "
                                                               "(recent windows; N-BEATS' history limit)")


Input = Annotated[Union[TableInput, ImageInput, AudioInput, SeriesInput], Field(discriminator="type")]


# --- outputs ----------------------------------------------------------------------------------


class CategoryOutput(Strict):
    name: str
    type: Literal["category"]
    column: str
    allow_single_class: bool = Field(False, description="Train even when the training rows hold one class only "
                                                        "(every prediction is then that class)")


Loss = Literal["mse", "huber", "mae", "smape", "mase"]
FORECAST_LOSSES = ("smape", "mase")  # computed on the forecast in the output's units: forecasting only


class NumberOutput(Strict):
    name: str
    type: Literal["number"]
    column: str
    loss: Loss = Field("mse", description="mse, huber or mae on the standardised values; for forecasting also "
                                          "smape and mase (MAE over the series' in-sample naive error), as the "
                                          "metrics score")
    horizon: int = Field(1, ge=1, description="Steps ahead to predict, with a series input's window")
    quantiles: Optional[list[Annotated[float, Field(gt=0, lt=1)]]] = Field(
        None, description="Also predict these quantiles (pinball loss), e.g. [0.1, 0.5, 0.9]: prediction intervals "
                          "from the outermost two, scored by coverage and MSIS")

    @field_validator("quantiles")
    @classmethod
    def _sorted(cls, value):
        if value is not None and (len(value) < 2 or sorted(set(value)) != list(value)):
            raise ValueError(f"expected at least two different quantiles in increasing order, got {value}")
        return value


class SequenceOutput(Strict):
    """Text (a caption, a transcript) predicted as tokens over the encoder's time steps with a CTC head."""

    name: str
    type: Literal["sequence"]
    column: str
    unit: Literal["char", "word"] = Field("char", description="Tokens: characters or space-separated words")


Output = Annotated[Union[CategoryOutput, NumberOutput, SequenceOutput], Field(discriminator="type")]


# --- model ------------------------------------------------------------------------------------


class MlpEncoder(Strict):
    """The canonical feed-forward network: Linear -> activation -> dropout, `depth` times."""

    kind: Literal["mlp"]
    width: int = Field(128, ge=1)
    depth: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    activation: Activation = "relu"


class CnnEncoder(Strict):
    """Conv blocks (conv, batch norm, activation, pooling), channels doubling per block."""

    kind: Literal["cnn"]
    width: int = Field(32, ge=1)
    depth: int = Field(3, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    activation: Activation = "relu"


class AudioEncoder(Strict):
    """Log-mel frames -> conv layers (subsampling time by 4) -> a bidirectional GRU."""

    kind: Literal["audio"]
    width: int = Field(64, ge=1)
    depth: int = Field(2, ge=1, description="GRU layers")
    dropout: float = Field(0.1, ge=0, lt=1)


class Cnn1dEncoder(Strict):
    """Convolutions over time, batch-normalised; the width doubles twice over the first layers."""

    kind: Literal["cnn1d"]
    width: int = Field(32, ge=1)
    depth: int = Field(3, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    activation: Activation = "relu"
    kernel: int = Field(5, ge=1, description="Steps each convolution reads; odd, so that every layer keeps the "
                                             "steps aligned")
    dilation: int = Field(1, ge=1, description="Layer i reads every dilation**i-th step: 2 doubles the reach per "
                                               "layer, for long series")
    pool: Literal["mean", "max", "meanmax"] = Field(
        "mean", description="How the steps become one vector: their mean, their max, or both side by side")
    stride: int = Field(1, ge=1, description="The first layer's stride: 4 keeps every 4th step, for series of "
                                             "thousands of steps (a sequence output then has fewer steps)")

    @field_validator("kernel")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"an even kernel ({value}) shifts the steps at every layer; use {value + 1} or {value - 1}")
        return value


class GruEncoder(Strict):
    kind: Literal["gru"]
    width: int = Field(64, ge=1)
    depth: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)


class TransformerEncoder(Strict):
    kind: Literal["transformer"]
    width: int = Field(64, ge=8, description="Model dimension (a multiple of heads)")
    depth: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)


class NBeatsEncoder(Strict):
    """N-BEATS (generic): blocks of MLPs, each taking what the blocks before it left unexplained of the window
    (the backcast residual) and adding its part of the forecast. Forecasting only: it gives the forecast itself."""

    kind: Literal["nbeats"]
    blocks: int = Field(4, ge=1)
    layers: int = Field(3, ge=1, description="Hidden layers per block")
    width: int = Field(256, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    lookback: Optional[int] = Field(None, ge=2, description="Read only the last N steps of the window")


Encoder = Annotated[Union[MlpEncoder, CnnEncoder, AudioEncoder, Cnn1dEncoder, GruEncoder, TransformerEncoder,
                          NBeatsEncoder], Field(discriminator="kind")]
ENCODER_CONFIGS = {"mlp": MlpEncoder, "cnn": CnnEncoder, "audio": AudioEncoder, "cnn1d": Cnn1dEncoder,
                   "gru": GruEncoder, "transformer": TransformerEncoder, "nbeats": NBeatsEncoder}

# Which encoder kinds can read which input type; the first is the default.
ENCODERS_FOR = {"table": ["mlp"], "image": ["cnn", "mlp"], "audio": ["audio"],
                "series": ["mlp", "cnn1d", "gru", "transformer", "nbeats"]}
# Kinds that can give time steps to a sequence output (see deepstation.models.encoders).
TEMPORAL_KINDS = ["cnn", "audio", "cnn1d", "gru", "transformer"]


class Combiner(Strict):
    kind: Literal["concat"] = "concat"
    width: int = Field(0, ge=0, description="Hidden layer after concatenation; 0 for none")
    dropout: float = Field(0.0, ge=0, lt=1)


class Ensemble(Strict):
    """K members trained together in one run (disjoint weights, each with its own loss), combined by the median."""

    members: int = Field(5, ge=1)
    lookbacks: list[Annotated[int, Field(ge=2)]] = Field(
        default_factory=list, description="Forecasting: member i reads the last lookbacks[i % len] steps of the "
                                          "window; default: the whole window")
    losses: list[Loss] = Field(default_factory=list, description="Member i trains with losses[i % len]; default: "
                                                                 "the output's loss")


class ModelSpec(Strict):
    encoders: dict[str, Encoder] = Field(default_factory=dict, description="Per input name; default by input type")
    combiner: Combiner = Combiner()
    ensemble: Optional[Ensemble] = Field(None, description="Forecasting: an ensemble of members differing in seed, "
                                                           "lookback and loss, combined by the median")
    base: Literal["none", "naive", "seasonal_naive"] = Field(
        "none", description="Forecasting: add the network's output to this classical forecast read off the window, "
                            "so that it learns the correction (a hybrid)")


# --- trainer ----------------------------------------------------------------------------------

DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d+)?"


class Trainer(Strict):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(1024, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="For sgd")
    schedule: Literal["constant", "cosine", "onecycle"] = "constant"
    grad_clip: Optional[float] = Field(None, gt=0, description="Clip the gradient norm to this value")
    monitor: str = Field("loss", description="Validation metric that picks the best epoch and drives early stopping")
    patience: Optional[int] = Field(None, ge=1, description="Stop after this many epochs without improvement")
    seed: int = 0
    device: str = Field("auto", description="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False
    max_minutes: Optional[float] = Field(None, gt=0, description="Stop cleanly after the epoch that passes this")
    checkpoint_every: float = Field(10.0, ge=0, description="Seconds between checkpoints when epochs are short "
                                                            "(an epoch of 1 s or more is always checkpointed; so "
                                                            "are the last epoch and an interrupted one); 0: every "
                                                            "epoch")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(DEVICE_PATTERN, value):
            raise ValueError(f"expected auto, cpu, cuda, cuda:N or mps, got {value!r}")
        return value


# --- tracking and scale -----------------------------------------------------------------------


class Tracking(Strict):
    """Where runs are recorded (MLflow). Default: $DEEPSTATION_TRACKING_URI, else sqlite:///mlflow.db here."""

    enabled: bool = True
    uri: Optional[str] = Field(None, description="An MLflow tracking URI: sqlite:///file.db, postgresql://..., "
                                                 "http://host:port; overrides $DEEPSTATION_TRACKING_URI")
    experiment: Optional[str] = Field(None, description="The MLflow experiment; default: the task's name")


class Scale(Strict):
    """Data-parallel training on Ray Train: the same trainer in `workers` processes (DDP)."""

    workers: Union[Literal["auto"], Annotated[int, Field(ge=1)]] = Field(
        1, description="Training processes; 1 trains in this process without Ray; auto: one per GPU of this machine")
    gpus_per_worker: Optional[float] = Field(None, ge=0, description="GPUs per worker; default 1 when the "
                                                                     "trainer's device is a GPU, else 0")
    ray_address: Optional[str] = Field(None, description="An existing Ray cluster (auto or ray://host:10001); "
                                                         "default: a local cluster started for the run")
    batch: Literal["global", "per_worker"] = Field(
        "global", description="global: trainer.batch_size is split across workers (same optimisation as one "
                              "process); per_worker: each worker takes trainer.batch_size rows per step")
    lr_scaling: Literal["none", "linear", "sqrt"] = Field(
        "none", description="With batch: per_worker, multiply the learning rate by workers (linear) or its root")
    max_failures: int = Field(2, ge=0, description="Times Ray restarts the workers after one dies, from the last "
                                                   "checkpoint")


# --- the task ---------------------------------------------------------------------------------


class Task(Strict):
    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    data: Data
    inputs: list[Input] = Field(min_length=1)
    outputs: list[Output] = Field(min_length=1)
    model: ModelSpec = ModelSpec()
    trainer: Trainer = Trainer()
    tracking: Tracking = Tracking()
    scale: Scale = Scale()

    def encoder_for(self, name: str):
        """The encoder config of an input: the task's, or the default for its type."""
        if name in self.model.encoders:
            return self.model.encoders[name]
        kind = ENCODERS_FOR[self.input(name).type][0]
        return ENCODER_CONFIGS[kind](kind=kind)

    def input(self, name: str):
        return next(i for i in self.inputs if i.name == name)


def _semantic_checks(task: Task) -> None:
    """Cross-field rules pydantic cannot express field by field; raises ValueError with a key path."""
    names = [f.name for f in task.inputs] + [f.name for f in task.outputs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"inputs/outputs: the name `{dupes[0]}` is used twice; give each input and output its own name")
    if any(o.type == "sequence" for o in task.outputs) and (len(task.inputs) != 1 or task.inputs[0].type == "table"):
        raise ValueError("outputs: a sequence output reads the time steps of one input; give the task exactly one "
                         "image, audio or series input")
    if any(o.type == "sequence" for o in task.outputs):
        name = task.inputs[0].name
        kind = task.encoder_for(name).kind
        if kind not in TEMPORAL_KINDS:
            raise ValueError(f"model.encoders.{name}.kind: `{kind}` gives one vector, not the time steps a sequence "
                             f"output needs; use {' or '.join(k for k in ENCODERS_FOR[task.inputs[0].type] if k in TEMPORAL_KINDS)}")
    input_names = [i.name for i in task.inputs]
    for name, enc in task.model.encoders.items():
        if name not in input_names:
            raise ValueError(f"model.encoders.{name}: no input is named `{name}`; inputs are {', '.join(input_names)}."
                             + did_you_mean(name, input_names))
        allowed = ENCODERS_FOR[task.input(name).type]
        if enc.kind not in allowed:
            raise ValueError(f"model.encoders.{name}.kind: `{enc.kind}` cannot encode a {task.input(name).type} "
                             f"input; use {' or '.join(allowed)}")
    _forecasting_checks(task)


def _forecasting_checks(task: Task) -> None:
    forecasting = next((i for i in task.inputs if i.type == "series" and i.window), None)
    for i in task.inputs:
        if i.type == "series" and not i.window:
            for key in ("season", "max_origins", "min_history"):
                if getattr(i, key) not in (None, False):
                    raise ValueError(f"inputs.{i.name}.{key}: only a forecasting input (with `window`) takes "
                                     f"`{key}`; set inputs.{i.name}.window or remove `{key}`")
            if i.date:
                raise ValueError(f"inputs.{i.name}.date: only a forecasting input (with `window`) reads dates; to "
                                 f"order the rows of each series of a long table, set `id` and `order`")
            if i.order and not i.id:
                raise ValueError(f"inputs.{i.name}.order: `order` sorts the rows of each series named by `id`; set "
                                 f"inputs.{i.name}.id or remove `order`")
        if i.type == "series" and i.window and (i.length is not None or i.unequal != "pad" or i.normalize != "train"):
            key = "length" if i.length is not None else "unequal" if i.unequal != "pad" else "normalize"
            raise ValueError(f"inputs.{i.name}.{key}: a forecasting input reads windows of `window` steps, each "
                             f"relative to its level (`scaling`); remove `{key}`")
        if i.type == "series" and i.embed_id and not i.window:
            raise ValueError(f"inputs.{i.name}.embed_id: an id embedding is for forecasting many series (`window` "
                             f"and `id`); remove it")
        if i.type == "series" and i.embed_id and not i.id:
            raise ValueError(f"inputs.{i.name}.embed_id: an id embedding needs `id` naming each row's series")
        if i.type == "series" and i.window and i.min_history and i.min_history > i.window:
            raise ValueError(f"inputs.{i.name}.min_history: {i.min_history} is longer than the window ({i.window}); "
                             f"lower it or leave it out")
    for o in task.outputs:
        if o.type == "number" and o.loss in FORECAST_LOSSES and not forecasting:
            raise ValueError(f"outputs.{o.name}.loss: `{o.loss}` scores forecasts; it needs a series input with "
                             f"`window`; use mse, huber or mae")
        if o.type == "number" and o.quantiles and not forecasting:
            raise ValueError(f"outputs.{o.name}.quantiles: prediction intervals are for forecasts; they need a "
                             f"series input with `window`")
    if forecasting and isinstance(task.data.source, SplitFiles):
        raise ValueError("data.source: a forecasting task holds out each series' last points for validation and test "
                         "itself; give one file with the whole series")
    uses_nbeats = [n for n, e in task.model.encoders.items() if e.kind == "nbeats"]
    if uses_nbeats and not forecasting:
        raise ValueError(f"model.encoders.{uses_nbeats[0]}.kind: `nbeats` forecasts; it needs a series input with "
                         f"`window` and a number output with `horizon`")
    if uses_nbeats and task.model.combiner.width:
        raise ValueError("model.combiner.width: an nbeats encoder gives the forecast itself; set the width to 0")
    if task.model.base != "none":
        out = next((o for o in task.outputs if o.type == "number"), None)
        if not forecasting or out is None:
            raise ValueError(f"model.base: `{task.model.base}` is a forecast; it needs a series input with `window` "
                             f"and a number output")
        if out.column not in forecasting.columns:
            raise ValueError(f"model.base: `{task.model.base}` repeats past values of `{out.column}`; add it to "
                             f"inputs.{forecasting.name}.columns")
    ens = task.model.ensemble
    if ens is None:
        return
    if not forecasting:
        raise ValueError("model.ensemble: ensembles are for forecasting tasks (a series input with `window`)")
    too_long = [n for n in ens.lookbacks if n > forecasting.window]
    if too_long:
        raise ValueError(f"model.ensemble.lookbacks: {too_long[0]} is longer than inputs.{forecasting.name}.window "
                         f"({forecasting.window}); raise the window or lower the lookback")


# --- loading and errors -----------------------------------------------------------------------


def load_task(source: Union[str, Path, dict], *, base_dir: Union[str, Path, None] = None) -> Task:
    """Read and validate a task from a YAML path or a dict; relative data paths resolve against the file."""
    if isinstance(source, dict):
        raw, label, base = source, "task", Path(base_dir or os.getcwd())
    else:
        path = Path(source)
        label, base = str(path), path.resolve().parent
        raw = _read_yaml(path)
    try:
        task = Task.model_validate(raw)
        _semantic_checks(task)
    except ValidationError as err:
        raise DeepstationError(f"{label}: {format_validation_error(err)}") from err
    except ValueError as err:
        raise DeepstationError(f"{label}: {err}") from err
    return _resolve_paths(task, base)


def _read_yaml(path: Path) -> dict:
    import yaml

    if path.is_dir():
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
        if not found:
            raise DeepstationError(f"{path} is a folder with no .yaml file in it; pass a task YAML file, such as "
                                   f"examples/digits.yaml")
        held = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise DeepstationError(f"{path} is a folder; pass a task YAML file in it, e.g. {path / found[0]} (it holds "
                               f"{held})")
    if not path.is_file():
        near = [p.name for p in path.parent.glob("*") if p.suffix.lower() in (".yaml", ".yml")] \
            if path.parent.is_dir() else []
        raise DeepstationError(f"{path}: task file not found; pass the path of a task YAML such as "
                               f"examples/digits.yaml." + did_you_mean(path.name, near))
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DeepstationError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at position {err.start}, line "
                               f"{line}); save the file as UTF-8") from None
    except OSError as err:
        raise DeepstationError(f"{path}: cannot read the task file ({err.strerror or err})") from None
    try:
        raw = _load_unique(text, path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise DeepstationError(f"{path}: {where}not valid YAML ({problem}); fix the indentation or quoting there") from err
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise DeepstationError(f"{path}: expected a mapping of keys (name, data, inputs, outputs, ...), "
                               f"got {got}; see examples/digits.yaml")
    return raw


def _load_unique(text: str, path: Path):
    """yaml.safe_load, except that a key written twice in one mapping is an error (YAML keeps the last silently).
    The node tree is checked before it is built into dicts, so the message can give the key's path."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_unique_keys(node, path, "", set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_unique_keys(node, path: Path, where: str, seen: set) -> None:
    import yaml

    if id(node) in seen:  # an alias: checked where its anchor is
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_unique_keys(item, path, f"{where}[{i}]", seen)
    elif isinstance(node, yaml.MappingNode):
        lines: dict = {}
        for key, value in node.value:
            # `<<: *base` and then a key of base written again overrides it on purpose: not a duplicate
            name = key.value if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge" else None
            full = where if name is None else f"{where}.{name}" if where else name
            if name is not None:
                if (key.tag, name) in lines:
                    first, again = lines[key.tag, name], key.start_mark.line + 1
                    at = f"lines {first} and {again}" if first != again else f"both on line {again}"
                    raise DeepstationError(f"{path}: key `{full}` is written twice ({at}); YAML would silently "
                                           f"keep the last one, so delete or rename one of them")
                lines[key.tag, name] = key.start_mark.line + 1
            _check_unique_keys(value, path, full, seen)


def _resolve_paths(task: Task, base: Path) -> Task:
    source = task.data.source
    if isinstance(source, SqlSource):
        # sqlite:///data.db names a file relative to the task file, like a CSV path; sqlite:////abs/data.db,
        # :memory:, file: URIs, a leading $VARIABLE and other databases stay as written
        match = re.fullmatch(r"(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?", source.sql.url, flags=re.DOTALL)
        path = match.group(2) if match else ""
        if not path or path.startswith(("/", "$", ":memory:", "file:")) or Path(path).is_absolute():
            return task
        url = match.group(1) + str((base / path).resolve()) + (match.group(3) or "")
        sql = source.sql.model_copy(update={"url": url})
        new = source.model_copy(update={"sql": sql})
    elif isinstance(source, SplitFiles):
        new = source.model_copy(update={k: str((base / v).resolve()) for k, v in source.model_dump().items() if v})
    elif source.startswith("builtin:") or Path(source).is_absolute():
        return task
    else:
        new = str((base / source).resolve())
    data = task.data.model_copy(update={"source": new})
    return task.model_copy(update={"data": data})


def format_validation_error(err: ValidationError) -> str:
    """All of pydantic's errors as one line, each with its key path and, for a misspelt key, a suggestion."""
    parts = []
    for e in err.errors():
        path, model = _walk(e["loc"][:-1]) if e["type"] == "extra_forbidden" else _walk(e["loc"])
        if e["type"] == "extra_forbidden":
            key = e["loc"][-1]
            allowed = list(model.model_fields) if model else []
            full = f"{path}.{key}" if path else str(key)
            hint = did_you_mean(key, allowed) or (f" Allowed keys: {', '.join(allowed)}." if allowed else "")
            parts.append(f"unknown key `{full}`.{hint}")
        elif e["type"] == "missing":
            parts.append(f"missing key `{path}`: it is required")
        elif e["type"] == "union_tag_invalid":
            ctx = e.get("ctx", {})
            tags = re.findall(r"'([^']+)'", str(ctx.get("expected_tags", "")))
            got = ctx.get("tag")
            parts.append(f"`{path}.{ctx.get('discriminator', 'type').strip(chr(39))}`: unknown value {got!r}; "
                         f"expected one of {', '.join(tags)}." + did_you_mean(got, tags))
        elif e["type"] == "union_tag_not_found":
            disc = str(e.get("ctx", {}).get("discriminator", "type")).strip("'")
            parts.append(f"missing key `{path}.{disc}`: it says which kind this entry is")
        else:
            got = e.get("input")
            shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
            parts.append(f"`{path}`: {e['msg'][0].lower()}{e['msg'][1:]}{shown}")
    return "; ".join(parts[:3]) + (f"; and {len(parts) - 3} more" if len(parts) > 3 else "")


def _walk(loc) -> tuple[str, Any]:
    """Follow a pydantic error location through the schema: (dotted path for people, model class there)."""
    shown, tp = "", Task
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(part, int):
            shown += f"[{part}]"
            args = typing.get_args(tp)
            tp = args[0] if args else None
            continue
        members = _union_members(tp)
        if members:  # a discriminated union: the tag is in loc but not in the YAML
            tagged = [m for m in members if part in _tags(m)]
            if tagged:
                tp = tagged[0]
                continue
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            tp = None
        shown += f".{part}" if shown else str(part)
    tp = _unwrap(tp)
    return shown, tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _unwrap(tp):
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return tp


def _union_members(tp):
    if typing.get_origin(tp) is Union:
        return [_unwrap(a) for a in typing.get_args(tp)]
    return []


def _tags(model) -> set:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return set()
    tags = set()
    for field in model.model_fields.values():
        if typing.get_origin(field.annotation) is Literal:
            tags.update(str(a) for a in typing.get_args(field.annotation))
    return tags


def json_schema() -> dict:
    schema = Task.model_json_schema()
    schema["title"] = "deepstation task"
    return schema
