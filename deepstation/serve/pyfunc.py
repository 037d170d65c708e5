"""The MLflow pyfunc flavour: every finished, tracked run's model is logged under the run's `model/` artifacts as
an MLflow model, so MLflow's own tools load and serve it:

    mlflow.pyfunc.load_model("models:/NAME/1").predict(frame)      # the frame `deepstation predict` reads
    mlflow models serve -m models:/NAME/1 --env-manager local      # MLflow's scoring protocol

model/
  config.yaml, preprocess.json, best.pt, summary.json, run.json
                          the run files Run.load reads, as before this flavour: `model/` is still a run folder for
                          `deepstation register` and models:/ loading; MLmodel names them as the model's artifacts
  MLmodel                 flavour python_function, signature (inputs and outputs), input example, model_config
  deepstation_model.py    three lines that make a DeepstationModel (MLflow's "model from code": nothing is
                          pickled; MLflow 3.17 refuses to unpickle a python_model unless told to)
  input_example.json      a few rows of the task's inputs; serving_input_example.json, the same as a request
  requirements.txt, python_env.yaml, conda.yaml   naming deepstation (not used with --env-manager local)

The model is saved here with mlflow.pyfunc.save_model and sent with the store's log_artifacts (deepstation talks
to a store through its own MlflowClient, never MLflow's global tracking URI), so it is a run artifact, not one of
MLflow 3's "logged models". The serving environment needs deepstation installed (deepstation_model.py imports it);
with --env-manager local that is the environment that runs `mlflow models serve` (an activated virtualenv: MLflow
starts `uvicorn` by name, from PATH).

A request's image and audio columns hold base64 text (or bytes): deepstation.serve.frames turns them into what the
codecs read; a path is read only inside the folders the model was allowed: model_config {"allowed": [...]}
(`mlflow.pyfunc.load_model(uri, model_config=...)`) or $DEEPSTATION_SERVE_ALLOWED (folders separated by `:`, for
`mlflow models serve`); none by default. model_config {"device": "cpu"} picks the device (default auto). params
{"ids": [...]} forecasts only those series.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from deepstation.serve.examples import example_frame

ARTIFACT_PATH = "model"
ALLOWED_ENV = "DEEPSTATION_SERVE_ALLOWED"
MODEL_CODE = """\
# deepstation's MLflow model, loaded by `mlflow.pyfunc.load_model` ("model from code"); needs deepstation installed
import mlflow.models

from deepstation.serve.pyfunc import DeepstationModel

mlflow.models.set_model(DeepstationModel())
"""


class DeepstationModel(mlflow.pyfunc.PythonModel):
    """A finished run as an MLflow python model: predict(frame) is Run.predict(frame), less array columns."""

    def load_context(self, context):
        from deepstation.run import Run

        config = context.model_config or {}
        folder = Path(context.artifacts["best.pt"]).parent
        self.run = Run.load(folder, device=str(config.get("device", "auto")))
        allowed = config.get("allowed") or os.environ.get(ALLOWED_ENV) or []
        if isinstance(allowed, str):
            allowed = allowed.split(os.pathsep)
        self.allowed = [Path(p) for p in allowed if p] or None

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException

        from deepstation.errors import DeepstationError

        ids = (params or {}).get("ids") or None
        try:
            return predict_frame(self.run, model_input, self.allowed, ids=list(ids) if ids is not None else None)
        except DeepstationError as err:  # the request's fault: MLflow's scoring server answers 400 with the line
            raise MlflowException.invalid_parameter_value(str(err)) from err


def predict_frame(run, data, allowed: list[Path] | None = None, ids=None) -> pd.DataFrame:
    """What a pyfunc request gets: Run.predict of the frame (image/audio columns decoded by request_frame), with
    the columns that hold arrays or bytes (decoded inputs) left out, on a fresh 0..n-1 index."""
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    if any(i.type in ("image", "audio") for i in run.task.inputs):
        from deepstation.serve.frames import request_frame

        frame = request_frame(run.task, frame, allowed)
    from deepstation.run import without_blobs

    result = run.predict(frame.reset_index(drop=True), ids=ids)
    return without_blobs(result).reset_index(drop=True)


def log_model(store, run_id: str, folder) -> None:
    """Save the run folder's model as an MLflow pyfunc model and log it as the run's `model/` artifacts."""
    with tempfile.TemporaryDirectory(prefix="deepstation-pyfunc-") as tmp:
        path = Path(tmp) / ARTIFACT_PATH
        save_model(path, folder)
        store.call("log_artifacts", run_id, str(path), ARTIFACT_PATH)


def save_model(path, folder) -> Path:
    """The run in `folder` as an MLflow pyfunc model in `path` (which must not exist yet)."""
    import mlflow
    from mlflow.models import infer_signature

    from deepstation import __version__
    from deepstation.run import Run
    from deepstation.track.tracker import MODEL_FILES

    folder = Path(folder)
    run = Run.load(folder, device="cpu")
    try:
        example = example_frame(run.task, run.codecs)
    except Exception:  # a codec state of another shape: the model is still logged, without example and signature
        example = None
    signature = None
    if example is not None:
        with warnings.catch_warnings():  # MLflow's hint on integer columns, meant for its own users' data
            warnings.simplefilter("ignore", UserWarning)
            try:  # the output schema too, from the example's prediction
                signature = infer_signature(example, predict_frame(run, example.copy()))
            except Exception:  # an example the model cannot read (a codec's own limits): the inputs alone
                signature = infer_signature(example)
        if any(i.type == "series" and i.id for i in run.task.inputs):  # many series: params {"ids": [...]}
            from mlflow.models import ModelSignature
            from mlflow.types.schema import ParamSchema, ParamSpec

            signature = ModelSignature(signature.inputs, signature.outputs,
                                       ParamSchema([ParamSpec("ids", "string", [], (-1,))]))
    artifacts = {name: str(folder / name) for name in MODEL_FILES if (folder / name).is_file()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="deepstation-pyfunc-code-") as tmp:
        code = Path(tmp) / "deepstation_model.py"  # MLflow's "model from code": nothing is pickled
        code.write_text(MODEL_CODE)
        # requirements named, never inferred: MLflow would otherwise load the model in a subprocess to find them
        with _quiet("mlflow.pyfunc"):  # "Validating input example against model signature" on every run's end
            mlflow.pyfunc.save_model(
                str(path), python_model=str(code), artifacts=artifacts, signature=signature, input_example=example,
                pip_requirements=[f"deepstation=={__version__}"],
                metadata={"deepstation.task": run.task.name, "deepstation.run": run.id},
                model_config={"device": "auto", "allowed": ""})  # what load_model(model_config=...) may override
    _flatten(path)
    return path


def _flatten(path: Path) -> None:
    """Move the run files from `artifacts/` to the model's top, beside MLmodel, and point MLmodel at them there:
    `model/` is then a run folder as well (what `deepstation register` and `models:/` loading read, as before
    the pyfunc flavour), and MLflow's loader finds each artifact where MLmodel says it is."""
    from mlflow.models import Model

    mlmodel = Model.load(str(path / "MLmodel"))
    for name, info in mlmodel.flavors["python_function"].get("artifacts", {}).items():
        moved = path / Path(info["path"]).name
        os.replace(path / info["path"], moved)
        info["path"] = moved.name
    shutil.rmtree(path / "artifacts", ignore_errors=True)
    mlmodel.save(str(path / "MLmodel"))


@contextmanager
def _quiet(name: str):
    """MLflow's INFO lines of one logger held back (its warnings still show)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)
