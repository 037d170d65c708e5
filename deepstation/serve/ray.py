"""`deepstation serve ... --replicas N`: the same protocol as a Ray Serve deployment of N replicas.

Each replica holds a `Service` (serve/http.py) around its own copy of the model and answers through
`Service.handle`, so routes, checks, errors, batching and metrics are the standalone server's. The model's files
(a run folder's five files, or an ONNX export and its JSON) travel to the replicas through Ray's object store: a
cluster's nodes need no shared filesystem. Ray Serve's proxy listens on --host/--port.

On this machine, a local Ray is started with its temp dir under /tmp (removed on exit) and Ray's auth token and
usage report turned off, as for training (deepstation/scale/ray.py); with --ray-address, an existing cluster.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from deepstation.errors import DeepstationError

INSTALL = "pip install 'deepstation[serve]'"
RUN_FILES = ("run.json", "config.yaml", "preprocess.json", "summary.json", "best.pt")
APP = "deepstation"


def require():
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError as err:
        raise DeepstationError(f"--replicas: serving on Ray needs Ray Serve, which is not installed ({err}); install "
                               f"it with `{INSTALL}`, or leave out --replicas") from None


def model_files(run_dir, onnx) -> tuple[str, dict[str, bytes]]:
    """(folder name, {file name: bytes}): what a replica needs to load the model anywhere."""
    if onnx is not None:
        from deepstation.serve.onnx import sidecar

        path = Path(onnx)
        if not path.is_file() or not sidecar(path).is_file():
            raise DeepstationError(f"--onnx {onnx}: no such export (the .onnx file and its .json beside it); make one "
                                   f"with `deepstation export RUN -o {path.name}`")
        return path.stem, {path.name: path.read_bytes(), sidecar(path).name: sidecar(path).read_bytes()}
    if str(run_dir).startswith("models:/"):
        from deepstation.track.registry import resolve

        run_dir = resolve(str(run_dir))
    from deepstation.run import RunFolder

    folder = RunFolder.open(run_dir)
    if not folder.summary.exists():
        raise DeepstationError(f"{folder.path}: the run is incomplete; resume it with `deepstation train --resume "
                               f"{folder.path}`")
    return folder.path.name, {name: (folder.path / name).read_bytes() for name in RUN_FILES}


class Replica:
    """One Ray Serve replica: the model's files written to a temp folder, loaded, and served by a Service."""

    def __init__(self, name: str, blobs: dict, onnx: bool, device: str, options: dict, quiet: bool):
        from deepstation.cli.serve import load_model
        from deepstation.serve.http import Service

        self._folder = Path(tempfile.mkdtemp(prefix="ds-serve-")) / name
        self._folder.mkdir()
        for file, data in blobs.items():
            (self._folder / file).write_bytes(data)
        onnx_file = next((self._folder / f for f in blobs if f.endswith(".onnx")), None) if onnx else None
        model = load_model(None if onnx else self._folder, onnx_file, device, threads=1)  # num_cpus 1 a replica
        log = None if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
        self.service = Service(model, log=log, **options)
        self.service.warm()

    async def __call__(self, request):
        import asyncio

        from starlette.responses import Response

        headers = {k.lower(): v for k, v in request.headers.items()}
        # the path as the client sent it (Ray Serve's proxy moves its route prefix into root_path)
        path = (request.scope.get("raw_path") or request.scope["path"].encode()).decode("latin-1")
        refused = self.service.check_length(path, headers)
        if refused is None:
            body = await request.body()
            # the model runs on the replica's threads, not its event loop
            refused = await asyncio.get_running_loop().run_in_executor(
                None, self.service.handle, request.method, path, headers, body)
        status, out_headers, out = refused
        return Response(out, status_code=status, headers=out_headers)

    def __del__(self):
        if getattr(self, "_folder", None) is not None:
            shutil.rmtree(self._folder.parent, ignore_errors=True)


def deploy(run_dir, *, onnx=None, replicas: int, gpus: float = 0.0, device: str = "auto", quiet: bool = False,
           host: str = "127.0.0.1", port: int = 8000, token: str | None = None, files=None, **options):
    """Run the deployment on the Ray this process is connected to (ray.init done); returns its handle.
    `files`: model_files(run_dir, onnx), when already read."""
    from ray import serve

    from deepstation.serve.http import digest

    name, blobs = files or model_files(run_dir, onnx)
    options = {**options, "token_digest": digest(token) if token else None}
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # its INFO lines on the driver: ours says enough
    serve.start(http_options={"host": host, "port": port}, logging_config={"log_level": "WARNING"})
    deployment = serve.deployment(Replica, name=APP).options(
        num_replicas=replicas, ray_actor_options={"num_cpus": 1, "num_gpus": gpus},
        max_ongoing_requests=max(100, 2 * options.get("max_batch", 64)))
    if gpus and device == "auto":
        device = "cuda"
    return serve.run(deployment.bind(name, blobs, onnx is not None, device, options, quiet), name=APP,
                     route_prefix="/")


def serve(run_dir, *, onnx=None, host: str, port: int, replicas: int, gpus: float = 0.0, address=None,
          device: str = "auto", quiet: bool = False, **options) -> int:
    """`deepstation serve --replicas N`: connect (or start a local Ray), deploy, serve until SIGTERM or Ctrl-C."""
    require()
    import ray
    from ray import serve as ray_serve

    from deepstation.scale.ray import RAY_ENV, _cores, _environ

    files = model_files(run_dir, onnx)  # a wrong run or export is one line before Ray starts
    port = port or _free_port(host)
    temp = None
    with _environ(RAY_ENV):
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            temp = Path(tempfile.mkdtemp(prefix="ds-ray-", dir="/tmp" if os.path.isdir("/tmp") else None))
            ray.init(address="local", num_cpus=max(_cores(), replicas + 1), _temp_dir=str(temp),
                     include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        try:
            _check_gpus(replicas, gpus, ray.cluster_resources(), address)
            stopping = threading.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stopping.set())
            deploy(run_dir, onnx=onnx, replicas=replicas, gpus=gpus, device=device, quiet=quiet, host=host,
                   port=port, files=files, **options)
            what = f"{onnx} (ONNX)" if onnx else run_dir
            shown = f"[{host}]" if ":" in host else host
            print(f"serving {what} on http://{shown}:{port} with {replicas} Ray Serve replica(s) "
                  f"({'token required' if options.get('token') else 'no token'}; Ctrl-C stops)", file=sys.stderr,
                  flush=True)
            while not stopping.wait(0.5):
                pass
            ray_serve.shutdown()  # replicas finish the requests they hold
        finally:
            ray.shutdown()
            if temp is not None:
                shutil.rmtree(temp, ignore_errors=True)
    print("stopped", file=sys.stderr, flush=True)
    return 0


def _check_gpus(replicas: int, gpus: float, resources: dict, address) -> None:
    have = float(resources.get("GPU", 0))
    if replicas * gpus > have:
        where = f"the Ray cluster at {address}" if address else "this machine"
        raise DeepstationError(f"--gpus-per-replica {gpus:g}: {replicas} replica(s) need {replicas * gpus:g} GPU(s); "
                               f"{where} has {have:g}; lower --replicas or --gpus-per-replica")


def _free_port(host: str) -> int:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
