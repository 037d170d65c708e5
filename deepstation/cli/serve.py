"""deepstation serve RUN_DIR|models:/NAME/VERSION [--host H --port N --token T] [--replicas N]"""
from __future__ import annotations

import argparse

from deepstation.cli import device_name, non_negative, positive, positive_int, verb_parser

TOKEN_ENV = "DEEPSTATION_SERVE_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_parser(sub, common):
    p = verb_parser(sub, common, "serve",
                    "Serve a finished run or a registered model over HTTP with MLflow's scoring protocol (POST "
                    "/invocations with dataframe_records, dataframe_split or instances; files as multipart), on "
                    "127.0.0.1 unless told otherwise; with --replicas N, as a Ray Serve deployment.",
                    "deepstation serve runs/digits-cnn-20261127-101500 --port 8000\n"
                    "  curl -s localhost:8000/invocations -F image=@7.png\n"
                    "  DEEPSTATION_SERVE_TOKEN=s3cret deepstation serve models:/digits/latest --host 0.0.0.0")
    p.add_argument("run_dir", metavar="RUN", nargs="?", help="a run folder, or models:/NAME/VERSION (or "
                   "models:/NAME/latest) from `deepstation register`; leave out with --onnx")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1); any other needs "
                   "--token or --insecure")
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--token", metavar="TOKEN", help=f"require `Authorization: Bearer TOKEN` (default: ${TOKEN_ENV}; "
                   "the variable keeps it out of the process list)")
    p.add_argument("--insecure", action="store_true", help="listen beyond this machine without a token")
    p.add_argument("--max-batch", type=positive_int, default=64, metavar="ROWS",
                   help="rows of concurrent requests run in one forward pass (default 64)")
    p.add_argument("--max-wait-ms", type=non_negative, default=2.0, metavar="MS",
                   help="how long a pass waits for more requests on their way (default 2)")
    p.add_argument("--max-body-mb", type=positive, default=10.0, metavar="MB",
                   help="largest request body (default 10); larger ones get 413")
    p.add_argument("--max-rows", type=positive_int, default=1000, metavar="N",
                   help="most rows in one request (default 1000); more get 413")
    p.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                   help="accept file paths inside DIR in image and audio columns (repeatable; default: none, only "
                        "files sent in the request)")
    p.add_argument("--device", default="auto", type=device_name, help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads for the model (default: half the cores; the rest answer HTTP)")
    p.add_argument("--onnx", metavar="FILE", help="serve an ONNX export (from `deepstation export`) on ONNX Runtime")
    p.add_argument("--quiet", action="store_true", help="no access log (one line per request on stderr)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="N processes answering on the port, each with its own copy of the model (default 1; one "
                        "process runs about one core of Python, whatever the cores)")
    p.add_argument("--replicas", type=positive_int, metavar="N",
                   help="run N replicas as a Ray Serve deployment (local Ray, or --ray-address)")
    p.add_argument("--ray-address", metavar="ADDR", help="an existing Ray cluster, such as ray://head:10001 or auto")
    p.add_argument("--gpus-per-replica", type=non_negative, metavar="G", help="GPUs per replica (default 0)")
    p.set_defaults(run=run)


def _port(value: str) -> int:
    if not value.strip().isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value!r}")
    return int(value)


def check_exposure(host: str, token: str | None, insecure: bool) -> None:
    """Another host than this machine's own only with a token, or when the user says --insecure."""
    from deepstation.errors import DeepstationError

    if host in LOOPBACK or host.startswith("127.") or token or insecure:
        return
    raise DeepstationError(f"--host {host}: would let any machine that reaches this one use the model; pass --token "
                           f"TOKEN (or set ${TOKEN_ENV}) so requests must carry it, or --insecure behind a proxy that "
                           f"checks them")


def run(args) -> int:
    import os
    import signal
    import sys
    import threading
    from pathlib import Path

    from deepstation.cli import check_run
    from deepstation.errors import DeepstationError

    token = args.token or os.environ.get(TOKEN_ENV) or None
    check_exposure(args.host, token, args.insecure)
    if (args.run_dir is None) == (args.onnx is None):
        raise DeepstationError("serve: pass a run folder (or models:/NAME/VERSION), or --onnx FILE; one of the two")
    for folder in args.allow_dir:
        if not Path(folder).is_dir():
            raise DeepstationError(f"--allow-dir {folder}: not a folder")
    if args.replicas is None and (args.ray_address or args.gpus_per_replica is not None):
        raise DeepstationError(f"{'--ray-address' if args.ray_address else '--gpus-per-replica'}: runs on Ray Serve; "
                               f"add --replicas N")
    options = dict(token=token, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_body_mb=args.max_body_mb,
                   max_rows=args.max_rows, allowed=args.allow_dir)
    if args.run_dir is not None:
        check_run(args.run_dir)
    if args.replicas is not None:
        from deepstation.serve import ray as on_ray

        if args.threads:
            raise DeepstationError("--threads: a Ray Serve replica has one CPU thread (num_cpus 1); leave it out")
        if args.workers > 1:
            raise DeepstationError("--workers: Ray Serve runs --replicas processes itself; leave --workers out")
        return on_ray.serve(args.run_dir, onnx=args.onnx, host=args.host, port=args.port, replicas=args.replicas,
                            gpus=args.gpus_per_replica or 0, address=args.ray_address, device=args.device,
                            quiet=args.quiet, **options)

    what = f"{args.onnx} (ONNX)" if args.onnx else args.run_dir
    host = f"[{args.host}]" if ":" in args.host else args.host
    if args.workers > 1:
        from deepstation.serve import workers

        run_dir = args.run_dir
        if run_dir is not None and str(run_dir).startswith("models:/"):
            from deepstation.track.registry import resolve

            run_dir = resolve(str(run_dir))  # once, here: every worker loads the same version from one local copy
        sock = workers.listen(args.host, args.port)
        threads = args.threads or max(1, _cores() // 2 // args.workers)
        banner = (f"serving {what} on http://{host}:{sock.getsockname()[1]} with {args.workers} workers (POST "
                  f"/invocations, GET /docs; {'token required' if token else 'no token'}; Ctrl-C stops)")
        code = workers.serve(sock, args.workers, dict(run_dir=run_dir, onnx=args.onnx, device=args.device,
                                                      threads=threads), options, args.quiet, banner)
        print("stopped", file=sys.stderr, flush=True)
        return code

    from deepstation.serve.http import Server, Service

    model = load_model(args.run_dir, args.onnx, args.device, args.threads)
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    service = Service(model, log=log, **options)
    service.warm()
    try:
        server = Server(service, args.host, args.port)
    except OSError as err:
        service.close()
        raise DeepstationError(f"--host {args.host} --port {args.port}: cannot listen ({err.strerror or err}); choose "
                               f"another port, or 0 for a free one") from None

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # stop accepting, finish the requests in flight, exit 0
        signal.signal(signum, lambda *_: stopping.set())
    print(f"serving {what} on http://{host}:{server.port} (POST /invocations, GET /docs; "
          f"{'token required' if token else 'no token'}; Ctrl-C stops)", file=sys.stderr, flush=True)
    server.start()
    while not stopping.wait(0.5):
        pass
    server.stop()
    print("stopped", file=sys.stderr, flush=True)
    return 0


def load_model(run_dir, onnx, device: str, threads: int | None = None):
    """The model behind the server: a Run, or an ONNX export on ONNX Runtime. On a CPU it gets `threads` threads
    (default: half the cores): one small request runs fastest on few, and the HTTP threads need the others."""
    threads = threads or max(1, _cores() // 2)
    if onnx is not None:
        from deepstation.serve.onnx import OnnxModel

        return OnnxModel(onnx, device="cpu" if device == "auto" else device, threads=threads)
    from deepstation.run import Run

    run = Run.load(run_dir, device=device)
    if run.plan.device.type == "cpu":
        import torch

        torch.set_num_threads(threads)  # before the batcher thread starts: it takes the setting when it first runs
    return run


def _cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
