"""The model registry: `deepstation register RUN NAME` makes a version of NAME from a run's `model/` artifacts;
`models:/NAME/VERSION` (or models:/NAME/latest) then loads like a run folder, from a local cache.

`model/` is also an MLflow pyfunc model (deepstation.serve.pyfunc: MLmodel beside the run files), so MLflow's own
`mlflow.pyfunc.load_model("models:/NAME/1")` and `mlflow models serve -m models:/NAME/1` use the same versions."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from deepstation import files
from deepstation.errors import DeepstationError

CACHE_ENV = "DEEPSTATION_CACHE"
MARK = ".deepstation-source"


def register(store, ref: str, name: str) -> dict:
    """A new version of the registered model `name` (created if missing) from a run's `model` artifacts."""
    from deepstation.track.runs import find_run

    run = find_run(store, ref)
    if run.info.status != "FINISHED" or run.data.tags.get("deepstation.kind") != "train":
        raise DeepstationError(f"run {run.info.run_id[:12]} ({run.data.tags.get('deepstation.run', '?')}) is "
                               f"{run.info.status.lower()}, not a finished training run; register a run that "
                               f"`deepstation train` completed")
    names = {a.path for a in store.call("list_artifacts", run.info.run_id, "model")}
    if "model/best.pt" not in names:
        raise DeepstationError(f"run {run.info.run_id[:12]} has no model/ artifacts (was it synced? "
                               f"`deepstation runs sync {run.data.tags.get('deepstation.run_dir', 'RUN_DIR')}`)")
    try:
        store.call("create_registered_model", name)
    except Exception as err:
        if "already exists" not in str(err).lower() and "RESOURCE_ALREADY_EXISTS" not in str(err):
            raise
    version = store.call("create_model_version", name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                         tags={"deepstation.run": run.data.tags.get("deepstation.run", "")})
    return {"name": name, "version": int(version.version), "run": run.info.run_id, "source": version.source,
            "uri": f"models:/{name}/{version.version}"}


def resolve(uri: str, store=None) -> Path:
    """models:/NAME/VERSION or models:/NAME/latest -> a local run folder (downloaded once into the cache)."""
    from deepstation.track.runs import current_store

    name, version = _parse(uri)
    store = store or current_store()
    if version == "latest":
        versions = store.call("search_model_versions", f"name='{name}'")
        if not versions:
            raise DeepstationError(f"{uri}: no registered model `{name}` with a version in {store.shown}; "
                                   f"`deepstation register RUN {name}` makes one")
        found = max(versions, key=lambda v: int(v.version))
    else:
        try:
            found = store.call("get_model_version", name, version)
        except Exception as err:
            raise DeepstationError(f"{uri}: no version {version} of registered model `{name}` in "
                                   f"{store.shown}") from err
    target = cache_dir() / _safe(name) / str(found.version)
    source = f"{found.source}\n{found.run_id}\n"
    if (target / MARK).is_file() and (target / MARK).read_text() == source:
        return target
    return _download(store, found, target, source)


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV)
    return Path(base) / "models" if base else Path.home() / ".cache" / "deepstation" / "models"


def _download(store, version, target: Path, source: str) -> Path:
    from mlflow.artifacts import download_artifacts

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        download_artifacts(artifact_uri=version.source, dst_path=str(staging), tracking_uri=store.uri)
        got = staging / "model" if (staging / "model").is_dir() else staging
        files.write_text(got / MARK, source)
        if target.exists():  # an older copy of another store's NAME/VERSION
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(got, target)  # whole or not at all: two processes may download at once
        except OSError:
            if not (target / MARK).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _parse(uri: str) -> tuple[str, str]:
    parts = uri[len("models:/"):].strip("/").split("/") if uri.startswith("models:/") else []
    if len(parts) != 2 or not parts[0] or not (parts[1].isdigit() or parts[1] == "latest"):
        raise DeepstationError(f"{uri}: expected models:/NAME/VERSION or models:/NAME/latest, such as "
                               f"models:/digits/1")
    return parts[0], parts[1]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
