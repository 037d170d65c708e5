"""Write the notebooks `deepstation lab` ships (deepstation/notebooks/*.ipynb), without outputs.

    .venv/bin/python tools/make_notebooks.py           # write them
    .venv/bin/python tools/make_notebooks.py --check   # exit 1 if a committed notebook differs from this script

Edit the cells here, not in the .ipynb files. Every Python notebook honours DEEPSTATION_MAX_EPOCHS (set by
smoke tests): the library caps the epochs with it, and the notebook then takes small data too; unset, a
notebook runs the seed task at its real settings.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from deepstation.workstation.kernel import DISPLAY_NAME, KERNEL_NAME

OUT = Path(__file__).resolve().parents[1] / "deepstation" / "notebooks"

PYTHON = {"kernelspec": {"name": KERNEL_NAME, "display_name": DISPLAY_NAME, "language": "python"},
          "language_info": {"name": "python"}}
R = {"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}, "language_info": {"name": "R"}}

SETUP = '''\
%matplotlib inline
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

import deepstation
from deepstation.compare import compare

# Smoke runs (the tests) set DEEPSTATION_MAX_EPOCHS, which caps every run's epochs; they get small data too.
QUICK = bool(os.environ.get("DEEPSTATION_MAX_EPOCHS"))


def side_by_side(result):
    """Learned features, hand-picked features and the classical references, scored on the same rows."""
    split = result["split"]
    rows = {"deep: learned features": result["deep"]["metrics"][split]}
    baseline = result["baseline"]
    if baseline and "metrics" in baseline:
        rows[f"hand-picked features: {baseline['name']}"] = baseline["metrics"][split]
    elif baseline:  # it could not apply to this data: said, not scored
        print(f"hand-picked features ({baseline['name']}): not applicable: {baseline['skipped']}")
    for reference in result.get("references") or []:
        rows[f"classical: {reference['name']}"] = reference["metrics"]["test"]
    return pd.DataFrame(rows).T.drop(columns="loss", errors="ignore")


def show(fig):
    """Display a figure in the notebook whichever matplotlib backend is active (drawing a report switches it)."""
    display(fig)
    plt.close(fig)


def learning_curve(run_dir):
    """Loss per epoch, from the run folder's metrics.jsonl (a JSON object per epoch)."""
    lines = Path(run_dir, "metrics.jsonl").read_text().splitlines()
    history = [json.loads(line) for line in lines if line.strip()]
    curve = pd.DataFrame({split: [h[split]["loss"] if split in h else None for h in history]
                          for split in ("train", "valid")}, index=[h["epoch"] for h in history])
    ax = curve.dropna(axis=1, how="all").plot(figsize=(6, 2.5), title="loss per epoch", xlabel="epoch", marker=".")
    show(ax.figure)'''

COMPARE_NOTE = ("`compare` trains the deep model into a run folder (`runs/<name>-<timestamp>/`, or "
                "`$DEEPSTATION_RUNS_DIR`), fits the hand-picked-features baseline on the same split, scores both "
                "with the same metrics and writes `report.html` into the run folder.")


def captions() -> list:
    return [
        new_markdown_cell(
            "# Image → caption: reading handwritten digit strips\n\n"
            "Each image holds 3 to 6 of scikit-learn's handwritten digits side by side; the caption is their words "
            "(\"four one seven\"). The deep model learns its own features: a CNN keeps the image's width as time, "
            "a GRU reads across it and a CTC head writes the words. The baseline uses hand-picked features: it cuts "
            "the strip at empty columns, describes each glyph by zoning, projections and HOG, and classifies it "
            "with an SVM.\n\n"
            "The same task as `examples/digit-captions.yaml` (`deepstation compare examples/digit-captions.yaml`)."),
        new_code_cell(SETUP),
        new_markdown_cell("## The data\n\nTest strips are drawn from glyphs never seen in training (the `split` "
                          "column), so the score measures reading new handwriting."),
        new_code_cell('''\
from deepstation.data.builtin.strips import load as digit_strips

OPTIONS = {"n": 120 if QUICK else 3000, "height": 16, "width": 96}
strips = digit_strips(**OPTIONS)
strips["split"].value_counts()'''),
        new_code_cell('''\
fig, axes = plt.subplots(4, 1, figsize=(6, 3.2))
for ax, (_, row) in zip(axes, strips.head(4).iterrows()):
    ax.imshow(row["image"], cmap="gray_r")
    ax.set_title(row["caption"], fontsize=9)
    ax.axis("off")
fig.tight_layout()
show(fig)'''),
        new_markdown_cell("## The task\n\nA task is a dict or a YAML file: what goes in, what comes out, the "
                          "model and the trainer."),
        new_code_cell('''\
task = {
    "name": "digit-captions",
    "data": {"source": "builtin:digit-strips", "options": OPTIONS, "split": {"column": "split"}},
    "inputs": [{"name": "image", "type": "image", "column": "image"}],
    "outputs": [{"name": "caption", "type": "sequence", "column": "caption", "unit": "word"}],
    "model": {"encoders": {"image": {"kind": "cnn", "width": 32, "depth": 3, "dropout": 0.1}}},
    "trainer": {"epochs": 25, "batch_size": 64, "optimizer": "adamw", "learning_rate": 3e-3, "weight_decay": 1e-4,
                "schedule": "onecycle", "grad_clip": 5.0, "monitor": "loss", "seed": 0},
}'''),
        new_markdown_cell("## Learned features beside hand-picked ones\n\n" + COMPARE_NOTE + " Lower `wer` (word "
                          "error rate) and `cer` (character error rate) are better."),
        new_code_cell('''\
result = compare(task)
side_by_side(result)'''),
        new_code_cell('learning_curve(result["deep"]["run_dir"])'),
        new_markdown_cell("## Reading strips it has never seen\n\n`deepstation.load(run_dir)` gives the finished "
                          "run back; `predict` takes a DataFrame, a CSV, an image or a folder of images."),
        new_code_cell('''\
run = deepstation.load(result["deep"]["run_dir"])
test = strips[strips["split"] == "test"].head(8)
read = run.predict(test[["image"]])
pd.DataFrame({"caption": test["caption"].to_numpy(), "read": read["caption_pred"].to_numpy()})'''),
        new_code_cell('print("report:", result["report"])'),
        new_markdown_cell("Next: change the encoder's `width` and `depth`, or `OPTIONS[\"n\"]`, and run the "
                          "notebook again; each run is a new folder, so results stay side by side."),
    ]


def forecasting() -> list:
    return [
        new_markdown_cell(
            "# Series → prices: forecasting\n\n"
            "Forecast a whole horizon of a price-like series from the window before it. The deep model learns from "
            "windows of the log series relative to their level (an MLP); the hand-picked baseline regresses on lags "
            "and rolling means (ridge), and the classical references (naive, seasonal naive, Naive2, ETS, Theta) are "
            "fitted as the M4 competition did. The last horizon is held out for test, and no training target "
            "reaches into it.\n\n"
            "`SERIES` picks the task: `airline` (monthly airline passengers 1949-1960, the last 36 months held out; "
            "`examples/airline.yaml`) or `cpi` (the US consumer price index, quarterly 1959-2009, the last 8 "
            "quarters held out; `examples/cpi.yaml`)."),
        new_code_cell(SETUP),
        new_code_cell('''\
from deepstation.data.builtin.series import airline, cpi

SERIES = "airline"  # or "cpi"

TASKS = {
    "airline": {
        "name": "airline",
        "data": {"source": "builtin:airline", "split": {"valid": 0}},
        "inputs": [{"name": "history", "type": "series", "columns": ["passengers"], "date": "date", "window": 36,
                    "transform": "log"}],
        "outputs": [{"name": "next", "type": "number", "column": "passengers", "horizon": 36}],
        "model": {"encoders": {"history": {"kind": "mlp", "width": 64, "depth": 1, "dropout": 0.0}}},
        "trainer": {"epochs": 300, "batch_size": 16, "optimizer": "adamw", "learning_rate": 3e-3,
                    "weight_decay": 1e-3, "schedule": "cosine", "seed": 0},
    },
    "cpi": {
        "name": "cpi",
        "data": {"source": "builtin:cpi", "split": {"valid": 0.1}},
        "inputs": [{"name": "history", "type": "series", "columns": ["cpi"], "date": "date", "window": 16,
                    "transform": "log"}],
        "outputs": [{"name": "next", "type": "number", "column": "cpi", "horizon": 8}],
        "model": {"encoders": {"history": {"kind": "mlp", "width": 64, "depth": 2, "dropout": 0.0}}},
        "trainer": {"epochs": 150, "batch_size": 32, "optimizer": "adamw", "learning_rate": 2e-3,
                    "weight_decay": 1e-4, "schedule": "cosine", "seed": 0},
    },
}
task = TASKS[SERIES]
column, horizon = task["outputs"][0]["column"], task["outputs"][0]["horizon"]
series = {"airline": airline, "cpi": cpi}[SERIES]()
series.tail()'''),
        new_code_cell('show(series.plot(x="date", y=column, figsize=(7, 2.5), legend=False, title=SERIES).figure)'),
        new_markdown_cell("## Learned features beside hand-picked ones\n\n" + COMPARE_NOTE + " `mape` and `smape` "
                          "are percentages; `mase` below 1 beats the seasonal naive forecast."),
        new_code_cell('''\
result = compare(task)
side_by_side(result)'''),
        new_code_cell('learning_curve(result["deep"]["run_dir"])'),
        new_markdown_cell("## The forecast against what happened\n\n`predict` takes the history (a DataFrame with "
                          "the date and value columns) and forecasts the next `horizon` points after it, one row per step."),
        new_code_cell('''\
run = deepstation.load(result["deep"]["run_dir"])
forecast = run.predict(series.iloc[:-horizon])
held_out = series.iloc[-horizon:]
predicted = forecast["forecast"].to_numpy()  # one row per step: step, date, forecast

recent = series.iloc[-4 * horizon:]
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(recent["date"], recent[column], label="actual")
ax.plot(held_out["date"], predicted, label="deep model's forecast")
ax.axvline(held_out["date"].iloc[0], color="grey", lw=0.8)
ax.set_title(f"{SERIES}: the last {horizon} points were held out")
ax.legend()
show(fig)'''),
        new_code_cell('print("report:", result["report"])'),
        new_markdown_cell("Next: set `SERIES = \"cpi\"`, or change the `window` and the encoder, and run again. "
                          "`r-tour.ipynb` fits R's classical models to the same airline series."),
    ]


def transcription() -> list:
    return [
        new_markdown_cell(
            "# Audio → words: transcribing spoken digits\n\n"
            "Utterances of 1 to 4 digit words, synthesised by espeak-ng in many voices; test voices are never heard "
            "in training. The deep model computes a log-mel spectrogram in torch, reads it with strided "
            "convolutions and a bidirectional GRU, and a CTC head writes the words. The baseline uses hand-picked "
            "features: MFCCs per word segment and an SVM; pocketsphinx, an HMM recogniser, is the classical "
            "reference when it is installed.\n\n"
            "The same task as `examples/speech-digits.yaml`. The audio is synthesised once and cached (in "
            "`$DEEPSTATION_DATA_DIR`, default `~/.cache/deepstation`); it needs `espeak-ng` "
            "(`apt-get install espeak-ng`)."),
        new_code_cell(SETUP),
        new_code_cell('''\
from IPython.display import Audio

from deepstation.data.builtin.speech import load as spoken_digits

OPTIONS = {"n": 40 if QUICK else 1200, "min_words": 1, "max_words": 2 if QUICK else 4, "seed": 0}
speech = spoken_digits(**OPTIONS)
speech.groupby("split")["voice"].agg(["count", "nunique"]).rename(columns={"nunique": "voices"})'''),
        new_code_cell('''\
first = speech.iloc[0]
print(f"{first['text']!r}, spoken by {first['voice']}")
Audio(filename=first["path"])'''),
        new_code_cell('''\
task = {
    "name": "speech-digits",
    "data": {"source": "builtin:speech", "options": OPTIONS, "split": {"column": "split"}},
    "inputs": [{"name": "audio", "type": "audio", "column": "path", "sample_rate": 16000, "n_mels": 40,
                "augment": True}],
    "outputs": [{"name": "text", "type": "sequence", "column": "text", "unit": "word"}],
    "model": {"encoders": {"audio": {"kind": "audio", "width": 64, "depth": 2, "dropout": 0.1}}},
    "trainer": {"epochs": 20, "batch_size": 16, "eval_batch_size": 256, "optimizer": "adamw",
                "learning_rate": 3e-3, "weight_decay": 1e-4, "schedule": "onecycle", "grad_clip": 5.0,
                "monitor": "wer", "seed": 0},
}'''),
        new_markdown_cell("## Learned features beside hand-picked ones\n\n" + COMPARE_NOTE + " Lower `wer` (word "
                          "error rate) is better."),
        new_code_cell('''\
result = compare(task)
side_by_side(result)'''),
        new_code_cell('learning_curve(result["deep"]["run_dir"])'),
        new_markdown_cell("## Transcribing voices it has never heard"),
        new_code_cell('''\
run = deepstation.load(result["deep"]["run_dir"])
test = speech[speech["split"] == "test"].head(8)
heard = run.predict(test[["path"]])
pd.DataFrame({"voice": test["voice"].to_numpy(), "said": test["text"].to_numpy(),
              "transcribed": heard["text_pred"].to_numpy()})'''),
        new_code_cell('print("report:", result["report"])'),
    ]


def tour() -> list:
    return [
        new_markdown_cell(
            "# deepstation: a tour\n\n"
            "This lab runs on this machine, bound to 127.0.0.1 and protected by the token in its URL. The "
            "**Python (deepstation)** kernel is the Python environment deepstation is installed in.\n\n"
            "| notebook | what it shows |\n| --- | --- |\n"
            "| [captions.ipynb](captions.ipynb) | images → caption: digit strips read by a CNN + GRU + CTC, beside "
            "segmentation, HOG and an SVM |\n"
            "| [forecasting.ipynb](forecasting.ipynb) | series → prices: airline passengers or US CPI, beside lag "
            "features with ridge regression, ETS, Theta and the naive forecasts |\n"
            "| [transcription.ipynb](transcription.ipynb) | audio → words: spoken digits, beside MFCCs with an SVM "
            "and pocketsphinx |\n"
            "| [r-tour.ipynb](r-tour.ipynb) | the R kernel: classical forecasts of the same airline series, and a "
            "deepstation run's metrics read from R |"),
        new_code_cell('''\
import os
import sys

import pandas as pd

import deepstation

print(f"deepstation {deepstation.__version__}, Python {sys.version.split()[0]} at {sys.executable}")'''),
        new_markdown_cell("## Is this machine ready?\n\nThe doctor checks the tools, the GPU (or the CPU) and the "
                          "Jupyter setup, measures what it can, and says how to fix what fails; "
                          "`deepstation doctor` in a terminal runs the full set."),
        new_code_cell('''\
from deepstation.workstation.doctor import diagnose

report = diagnose(quick=True)
print(("ready" if report["ok"] else "not ready") + f" ({report['seconds']:.1f} s)")
pd.DataFrame(report["checks"], columns=["name", "status", "detail", "measured", "fix"])'''),
        new_markdown_cell("## Where training runs\n\n`device: auto` takes CUDA, then Apple's MPS, then the CPU; "
                          "`precision: auto` takes bf16 on GPUs that have it."),
        new_code_cell('''\
from deepstation.training.device import plan

chosen = plan("auto", "auto")
print(f"device {chosen.device}, precision {chosen.precision}")'''),
        new_markdown_cell("## The library in a few lines\n\nA task as a dict (or a YAML path), trained into a run "
                          "folder; the finished run predicts. The same as `deepstation train "
                          "examples/digits-mlp.yaml`."),
        new_code_cell('''\
QUICK = bool(os.environ.get("DEEPSTATION_MAX_EPOCHS"))  # smoke runs (tests) cap the epochs

task = {
    "name": "digits-mlp",
    "data": {"source": "builtin:digits", "split": {"valid": 0.15, "test": 0.15, "seed": 0}},
    "inputs": [{"name": "image", "type": "image", "column": "image"}],
    "outputs": [{"name": "digit", "type": "category", "column": "label"}],
    "model": {"encoders": {"image": {"kind": "mlp", "width": 64 if QUICK else 256, "depth": 2, "dropout": 0.2}}},
    "trainer": {"epochs": 40, "batch_size": 64, "learning_rate": 2e-3, "schedule": "cosine", "seed": 0},
}
run = deepstation.train(task)
print(run.dir)
run.metrics["test"]'''),
        new_code_cell('''\
from deepstation.data.builtin.digits import load as digits

some = digits().sample(5, random_state=1)
predicted = deepstation.load(run.dir).predict(some[["image"]])
pd.DataFrame({"label": some["label"].to_numpy(), "predicted": predicted["digit_pred"].to_numpy(),
              "probability": predicted["digit_prob"].round(3).to_numpy()})'''),
        new_markdown_cell("## The command line\n\nEvery verb has `--help` with an example."),
        new_code_cell('!"{sys.executable}" -m deepstation --help'),
    ]


def r_tour() -> list:
    return [
        new_markdown_cell(
            "# R beside deepstation\n\n"
            "The **R** kernel (`ir`), registered in deepstation's environment by `make setup-r`. The series "
            "`forecasting.ipynb` learns from ships with R too: monthly airline passengers, 1949-1960."),
        new_code_cell('''\
data(AirPassengers)
summary(AirPassengers)'''),
        new_code_cell('''\
options(repr.plot.width = 7, repr.plot.height = 3)
plot(AirPassengers, ylab = "passengers (thousands)")'''),
        new_markdown_cell("## Classical forecasts of the same held-out 36 months\n\nThe Box-Jenkins airline model "
                          "(seasonal ARIMA on the log series) and Holt-Winters, scored by MAPE (%) like "
                          "deepstation's models."),
        new_code_cell('''\
horizon <- 36
train <- window(AirPassengers, end = c(1957, 12))
held_out <- window(AirPassengers, start = c(1958, 1))
mape <- function(forecast) round(mean(abs(forecast - held_out) / held_out) * 100, 2)

airline_model <- arima(log(train), order = c(0, 1, 1), seasonal = c(0, 1, 1))
holt_winters <- HoltWinters(train, seasonal = "multiplicative")
data.frame(
  model = c("seasonal ARIMA(0,1,1)(0,1,1)12 on log", "Holt-Winters, multiplicative season"),
  test_mape = c(mape(exp(predict(airline_model, n.ahead = horizon)$pred)),
                mape(predict(holt_winters, n.ahead = horizon)))
)'''),
        new_markdown_cell("## A deepstation run, read from R\n\nRuns are folders: `summary.json` holds a finished "
                          "run's metrics, `metrics.jsonl` a JSON object per epoch. Run `forecasting.ipynb` first."),
        new_code_cell('''\
runs_dir <- Sys.getenv("DEEPSTATION_RUNS_DIR", "runs")
summaries <- sort(Sys.glob(file.path(runs_dir, "airline-*", "summary.json")))
if (length(summaries) == 0) {
  cat("No finished airline run in", runs_dir, "yet: run forecasting.ipynb, then this cell again.\\n")
} else {
  latest <- dirname(tail(summaries, 1))
  run <- jsonlite::fromJSON(file.path(latest, "summary.json"))
  cat("deep model", basename(latest), "- test MAPE:", round(run$metrics$test$mape, 2), "%\\n")
  epochs <- jsonlite::stream_in(file(file.path(latest, "metrics.jsonl")), verbose = FALSE)
  print(tail(data.frame(epoch = epochs$epoch, train_loss = epochs$train$loss)))
}'''),
    ]


NOTEBOOKS = {"tour.ipynb": (tour, PYTHON), "captions.ipynb": (captions, PYTHON),
             "forecasting.ipynb": (forecasting, PYTHON), "transcription.ipynb": (transcription, PYTHON),
             "r-tour.ipynb": (r_tour, R)}


def build(name: str) -> str:
    make, metadata = NOTEBOOKS[name]
    cells = make()
    for i, cell in enumerate(cells):
        cell["id"] = f"{Path(name).stem}-{i}"  # stable ids: regenerating changes nothing
    notebook = new_notebook(cells=cells, metadata=metadata)
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed notebook is out of date")
    args = parser.parse_args(argv)
    stale = []
    OUT.mkdir(exist_ok=True)
    for name in NOTEBOOKS:
        path, text = OUT / name, build(name)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text)
    extra = sorted(p.name for p in OUT.glob("*.ipynb") if p.name not in NOTEBOOKS)
    if args.check and (stale or extra):
        print(f"out of date: {', '.join(stale + extra)}; run tools/make_notebooks.py", file=sys.stderr)
        return 1
    if not args.check:
        print(f"wrote {', '.join(stale) or 'nothing (all up to date)'} in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
