"""Serving on loopback: latency and throughput of `deepstation serve` (torch eager), `deepstation serve --onnx`
(ONNX Runtime), both again with --workers 2, `mlflow models serve` on the same registered model, and 2 Ray Serve
replicas, for the digits CNN, the speech model and the airline forecaster; then 10,000 digits requests against
`deepstation serve` (errors, RSS).

    .venv/bin/python benchmarks/bench_serve.py [--models digits,speech,airline]
                                               [--servers torch,onnx,torch2,onnx2,mlflow,ray]
                                               [--requests 10000] [--no-write]

Each model is trained briefly (its figures are about serving, not accuracy), tracked into a temporary SQLite store,
registered, and exported to ONNX. Every server runs as its own process on 127.0.0.1; the clients are threads of
this process, each with one keep-alive connection. A request is one row: one digit image (8x8 numbers, as the
built-in set holds it), one spoken utterance (a WAV in base64), one series' history (the airline's 144 months, which
the forecaster answers with its 36-month forecast).

  latency      one client, requests one after another (after a warm-up): p50 and p99
  throughput   1, 8 and 32 clients, each sending as fast as its answers come, for a fixed count of requests
  model alone  Run.predict against OnnxModel.predict on one row in this process (no HTTP): the runtime's own share
Targets (issue 12): a digits request's p50 <= 5 ms through `deepstation serve`; ONNX Runtime >= 1.5x torch eager at
batch 1; 32 clients >= 3x the throughput of 1 client; no error in 10,000 requests; RSS at the end within 10 % of
after the warm-up.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import Contention, ROOT, add_options, command, machine, python_cmd, today, wait_for_quiet, write_section

MODELS = {  # name -> (task, epochs): enough to serve, not to score
    "digits": ("examples/digits.yaml", 2),
    "speech": ("examples/speech-digits.yaml", 1),
    "airline": ("examples/airline.yaml", 3),
}
SERVERS = ("torch", "onnx", "torch2", "onnx2", "mlflow", "ray")
CLIENTS = (1, 8, 32)
LATENCY_REQUESTS, WARMUP = 300, 30


# --- processes ---------------------------------------------------------------------------------------------------

def deepstation(*args, env) -> dict:
    done = subprocess.run([sys.executable, "-m", "deepstation", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"deepstation {' '.join(map(str, args))} failed: {done.stderr.strip()[-800:]}")
    return done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server started as a child process (its own process group), ready once GET /ping answers 200."""

    def __init__(self, argv, port: int, env, timeout: float = 180.0):
        self.port, self.log = port, tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                     start_new_session=True)
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{argv[:4]} exited with {self.proc.returncode}: {self.output()[-800:]}")
            try:
                if get(port, "/ping")[0] == 200:
                    self.started_s = time.monotonic() - began
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{argv[:4]} did not answer /ping in {timeout:.0f} s: {self.output()[-800:]}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def rss_mb(self) -> float:
        """The resident memory of the server's whole process group (Ray's replicas live in other processes)."""
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                if os.getpgid(int(pid)) != self.proc.pid:
                    continue
                status = Path(f"/proc/{pid}/status").read_text()
            except (OSError, ProcessLookupError):
                continue
            found = re.search(r"VmRSS:\s+(\d+) kB", status)
            total += int(found.group(1)) if found else 0
        return total / 1024

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


def get(port: int, path: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --- clients -----------------------------------------------------------------------------------------------------

def send_many(port: int, body: bytes, count: int, clients: int) -> dict:
    """`count` requests shared by `clients` threads, each on its own keep-alive connection: seconds, latencies,
    errors (non-200 answers and failed connections)."""
    latencies, errors, lock = [], [], threading.Lock()
    left = [count]

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, bad = [], []
        while True:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            began = time.perf_counter()
            try:
                conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                answer = response.read()
                if response.status != 200:
                    bad.append(f"{response.status}: {answer[:200]!r}")
            except (OSError, http.client.HTTPException) as err:
                bad.append(f"{type(err).__name__}: {err}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append(time.perf_counter() - began)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"seconds": time.perf_counter() - began, "latencies": sorted(latencies), "errors": errors}


def quantile(sorted_values, q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def measure(port: int, body: bytes, per_client: int) -> dict:
    send_many(port, body, WARMUP, 1)
    one = send_many(port, body, LATENCY_REQUESTS, 1)
    result = {"p50_ms": quantile(one["latencies"], 0.5) * 1e3, "p99_ms": quantile(one["latencies"], 0.99) * 1e3,
              "errors": len(one["errors"]), "first_error": (one["errors"] or [None])[0], "rps": {}}
    for clients in CLIENTS:
        run = send_many(port, body, max(per_client * clients, 60), clients)
        result["rps"][clients] = len(run["latencies"]) / run["seconds"]
        result["errors"] += len(run["errors"])
        result["first_error"] = result["first_error"] or (run["errors"] or [None])[0]
    return result


# --- the models and their requests -------------------------------------------------------------------------------

def request_body(run) -> tuple[bytes, object]:
    """One row of the run's own data as a scoring request, and the same row as a DataFrame (for the model alone)."""
    import numpy as np
    import pandas as pd

    from deepstation.data.sources import read_source
    from deepstation.data.series import forecasting_input

    task = run.task
    table = read_source(task.data.source, task.data.index, task.data.options)
    frame = table.frame
    inp = task.inputs[0]
    if forecasting_input(task):
        columns = [c for c in (inp.date, *inp.columns) if c]
        rows = frame[columns]
        data = [[str(v) if c == inp.date else float(v) for c, v in zip(columns, row)] for row in rows.itertuples(False)]
        return json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode(), rows.reset_index(drop=True)
    value = frame[inp.column].iloc[0]
    if isinstance(value, np.ndarray):  # built-in digits: 8x8 numbers
        body = {"instances": [{inp.column: value.tolist()}]}
        one = pd.DataFrame({inp.column: [value]})
    else:  # a file: its bytes in base64
        path = Path(value) if Path(value).is_absolute() else Path(table.base_dir) / value
        data = path.read_bytes()
        body = {"dataframe_records": [{inp.column: base64.b64encode(data).decode()}]}
        one = pd.DataFrame({inp.column: [str(path)]})
    return json.dumps(body).encode(), one


def model_alone(run_dir: Path, onnx: Path, one, reps: int = 200) -> dict:
    """Median seconds of one row's predict, torch eager (Run) against ONNX Runtime (OnnxModel), in this process,
    each with the threads `deepstation serve` gives the model (half the cores)."""
    import torch

    from deepstation.run import Run
    from deepstation.serve.onnx import OnnxModel

    threads = model_threads()
    torch.set_num_threads(threads)
    found = {}
    for name, model in (("torch", Run.load(run_dir, device="cpu")), ("onnx", OnnxModel(onnx, threads=threads))):
        for _ in range(10):
            model.predict(one.copy())
        times = []
        for _ in range(reps):
            began = time.perf_counter()
            model.predict(one.copy())
            times.append(time.perf_counter() - began)
        found[name] = sorted(times)[len(times) // 2]
    return found


def model_threads() -> int:
    """The model's CPU threads in `deepstation serve` by default: half the cores (the others answer HTTP)."""
    return max(1, len(os.sched_getaffinity(0)) // 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    ap.add_argument("--servers", default=",".join(SERVERS), help="comma-separated: " + ", ".join(SERVERS))
    ap.add_argument("--requests", type=int, default=10_000, help="the long digits run (default 10000; 0 skips it)")
    ap.add_argument("--per-client", type=int, default=40, help="requests per client in the throughput runs")
    add_options(ap)
    args = ap.parse_args()
    models, servers = args.models.split(","), args.servers.split(",")
    waited = wait_for_quiet(args.wait_quiet)
    began, contention = time.perf_counter(), Contention()
    work = Path(tempfile.mkdtemp(prefix="bench_serve."))
    store = f"sqlite:///{work / 'mlflow.db'}"
    env = {**os.environ, "DEEPSTATION_RUNS_DIR": str(work / "runs"), "DEEPSTATION_TRACKING_URI": store,
           "MLFLOW_TRACKING_URI": store, "DEEPSTATION_CACHE": str(work / "cache"),
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}  # mlflow starts uvicorn by name
    os.environ.update({k: env[k] for k in ("DEEPSTATION_TRACKING_URI", "MLFLOW_TRACKING_URI", "DEEPSTATION_CACHE")})
    sys.path.insert(0, str(ROOT))
    from deepstation.run import Run

    rows, alone, long_run = [], {}, None
    for name in models:
        yaml_path, epochs = MODELS[name]
        print(f"{name}: training {yaml_path} for {epochs} epoch(s)", file=sys.stderr, flush=True)
        trained = json.loads(deepstation("train", yaml_path, "--epochs", epochs, "--json", "--quiet",
                                         env=env).stdout.strip().splitlines()[-1])
        run_dir = Path(trained["run_dir"])
        deepstation("register", run_dir, f"bench-{name}", env=env)
        onnx = work / f"{name}.onnx"
        deepstation("export", run_dir, "-o", onnx, env=env)
        run = Run.load(run_dir, device="cpu")
        body, one = request_body(run)
        alone[name] = model_alone(run_dir, onnx, one)
        for server in servers:
            port = free_port()
            base = [sys.executable, "-m", "deepstation", "serve", "--port", port, "--quiet", "--device", "cpu"]
            argv = {"torch": base + [run_dir],
                    "onnx": base + ["--onnx", onnx],
                    "torch2": base + [run_dir, "--workers", 2],
                    "onnx2": base + ["--onnx", onnx, "--workers", 2],
                    "mlflow": [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/bench-{name}/1",
                               "--env-manager", "local", "--port", port, "--host", "127.0.0.1"],
                    "ray": base + [run_dir, "--replicas", 2]}[server]
            print(f"{name}: {server} server", file=sys.stderr, flush=True)
            try:
                proc = ServerProcess([str(a) for a in argv], port, env)
            except RuntimeError as err:
                print(f"{name}: {server} failed: {err}", file=sys.stderr)
                rows.append({"model": name, "server": server, "failed": " ".join(str(err).split())[-300:]})
                continue
            try:
                result = measure(port, body, args.per_client)
                result.update(model=name, server=server, started_s=proc.started_s)
                rows.append(result)
                if name == "digits" and server == "torch" and args.requests:
                    send_many(port, body, 500, 8)  # warm-up: allocator and caches settle
                    rss_before = proc.rss_mb()
                    long = send_many(port, body, args.requests, 8)
                    long_run = {"requests": len(long["latencies"]), "errors": len(long["errors"]),
                                "first_error": (long["errors"] or [None])[0], "seconds": long["seconds"],
                                "rss_before": rss_before, "rss_after": proc.rss_mb(),
                                "p50_ms": quantile(long["latencies"], 0.5) * 1e3,
                                "p99_ms": quantile(long["latencies"], 0.99) * 1e3}
            finally:
                proc.stop()
    body = report(rows, alone, long_run, args, time.perf_counter() - began, contention.report(), waited)
    print(body)
    if not args.no_write:
        write_section("bench_serve", body)
        print("wrote benchmarks/RESULTS.md", file=sys.stderr)
    return 0


def report(rows, alone, long_run, args, seconds, contention, waited) -> str:
    lines = [
        "## Serving: latency and throughput on loopback",
        "",
        f"Command: `{command(f'{python_cmd()} benchmarks/bench_serve.py')}` · {today()} · {seconds:.0f} s",
        f"Machine: {machine()}",
        "",
        "Each server in its own process on 127.0.0.1, the clients threads of the benchmark's process (they share the "
        "same cores). One row a request: a digit's 8x8 numbers, a spoken utterance as a base64 WAV, the airline's "
        f"144-month history (answered with a 36-month forecast). p50/p99: one client, {LATENCY_REQUESTS} requests "
        f"after {WARMUP} of warm-up. req/s: N clients, {args.per_client} requests each (at least 60), keep-alive. "
        "*torch*: `deepstation serve RUN`; *onnx*: `deepstation serve --onnx` (ONNX Runtime); *torch2*, *onnx2*: the "
        "same with `--workers 2` (two processes on the port, each with a copy of the model); *mlflow*: `mlflow "
        "models serve -m models:/NAME/1 --env-manager local` (the pyfunc flavour); *ray*: `deepstation serve RUN "
        "--replicas 2` (Ray Serve). Targets: digits p50 <= 5 ms (torch); 32 clients >= 3x one client (deepstation's "
        "servers, which batch concurrent requests; MLflow's does not).",
        "",
        "| model | server | p50 ms | p99 ms | req/s 1 client | req/s 8 | req/s 32 | 32 vs 1 | errors | start s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r['model']} | {r['server']} | failed: {r['failed']} | | | | | | | |")
            continue
        rps = r["rps"]
        gain = rps[32] / rps[1]
        p50 = f"{r['p50_ms']:.2f}"
        if r["model"] == "digits" and r["server"] == "torch":
            p50 = f"**{p50}**" + ("" if r["p50_ms"] <= 5 else " ✗")
        lines.append(f"| {r['model']} | {r['server']} | {p50} | {r['p99_ms']:.2f} | {rps[1]:,.0f} | {rps[8]:,.0f} | "
                     f"{rps[32]:,.0f} | {gain:.2f}x{'' if gain >= 3 or r['server'] == 'mlflow' else ' ✗'} | {r['errors']} | "
                     f"{r['started_s']:.1f} |")
    errors = [f"{r['model']}/{r['server']}: {r['first_error']}" for r in rows if r.get("first_error")]
    if errors:
        lines += ["", "First error of each server that had any: " + "; ".join(errors)]
    lines += ["", f"The model alone, one row, in the benchmark's process (median of 200 `predict` calls, no HTTP, "
              f"{model_threads()} thread(s) each, as `deepstation serve` gives the model; target: ONNX Runtime >= 1.5x "
              f"torch eager):", "",
              "| model | torch eager ms | ONNX Runtime ms | speed-up |", "|---|---|---|---|"]
    for name, t in alone.items():
        ratio = t["torch"] / t["onnx"]
        lines.append(f"| {name} | {t['torch'] * 1e3:.2f} | {t['onnx'] * 1e3:.2f} | **{ratio:.2f}x**"
                     f"{'' if ratio >= 1.5 else ' ✗'} |")
    if long_run:
        growth = long_run["rss_after"] / long_run["rss_before"] - 1
        lines += ["", f"Long run, digits on `deepstation serve` (torch), 8 clients: {long_run['requests']:,} requests in "
                      f"{long_run['seconds']:.1f} s, **{long_run['errors']} errors**, p50 {long_run['p50_ms']:.2f} ms, "
                      f"p99 {long_run['p99_ms']:.2f} ms; server RSS {long_run['rss_before']:.0f} MB after 500 requests "
                      f"of warm-up, {long_run['rss_after']:.0f} MB at the end (**{growth:+.1%}**; target within 10 %)."]
    if contention:  # the servers are this script's children, but their workers (Ray's, MLflow's) are not
        contention += " (The servers' own worker processes, Ray's and MLflow's, count as other processes here.)"
    lines += ["", " ".join(x for x in (contention, waited) if x)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
