"""The Python side of benchmarks/gpu_check.sh (GPU readiness): small subcommands the script runs one by one, so a
step that fails or hangs is one step, and the report that collects them (`write`) needs nothing but the standard
library: it still runs when the install, torch or CUDA did not work.

    python3 benchmarks/gpu_check_helper.py env --work DIR               torch, CUDA, the GPUs -> DIR/env.json
    python3 benchmarks/gpu_check_helper.py matmul --work DIR            bf16 and fp16 matmul against the spec peak
    python3 benchmarks/gpu_check_helper.py task SRC DST --name N --max-seconds S [--set trainer.compile=true ...]
    python3 benchmarks/gpu_check_helper.py speech-data TASK.yaml        synthesise a task's builtin:speech set
    python3 benchmarks/gpu_check_helper.py unpack-deb DEB DEST          a .deb's files under DEST (no dpkg needed)
    python3 benchmarks/gpu_check_helper.py write --work DIR --results RESULTS.md --out OUTDIR [--final]

`write` turns DIR (steps.tsv, steps/NAME.{cmd,out,err}, env.json, matmul.json, the run folders) into the
"GPU check" section of RESULTS.md (between `<!-- gpu_check:start -->` and `<!-- gpu_check:end -->`, written to a
temporary file and renamed into place), and into OUTDIR/gpu_results.md, OUTDIR/RESULTS.md and OUTDIR/gpu_check.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (stdlib only, like this script)

ROOT = Path(__file__).resolve().parent.parent
SECTION = "gpu_check"
MATMUL_N = 8192
# why the run cannot show NCCL between workers here (measured when the script was prepared)
RAY_NOTE = ("Ray is not carried to the GPU machine: ray 2.60.0's cp312 manylinux wheel alone is 75.6 MiB, over the "
            "64 MiB the working tree may carry there")
LABELS = {
    "setup": "install the carried wheels (.whl) into a private folder, import deepstation's needs",
    "env": "torch, CUDA and the GPUs",
    "espeak": "espeak-ng for builtin:speech (carried .deb files, unpacked into a private folder)",
    "doctor": "the doctor's GPU check",
    "matmul": f"bf16 and fp16 matmul, {MATMUL_N}x{MATMUL_N}x{MATMUL_N}, the doctor's timer",
    "digits": "train examples/digits.yaml (CNN)",
    "speech-data": "synthesise builtin:speech for examples/speech-digits.yaml",
    "speech": "train examples/speech-digits.yaml (log-mel, conv, GRU, CTC)",
    "digits-compile": "train examples/digits.yaml with trainer.compile: true",
    "speech-compile": "train examples/speech-digits.yaml with trainer.compile: true",
    "gpu-tests": "pytest -m gpu: fp16 loss scaling with clipping, exact resume after SIGINT (bf16, fp16), "
                 "the loop over NCCL",
}
TRAIN_STEPS = ["digits", "speech", "digits-compile", "speech-compile"]


# --- steps that touch torch or deepstation (each imports what it needs inside) ---------------------------------------

def cmd_env(args) -> int:
    import platform
    import shutil
    import subprocess

    import torch

    info = {"python": platform.python_version(), "executable": sys.executable, "torch": torch.__version__,
            "cuda_build": torch.version.cuda, "cuda": torch.cuda.is_available(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "gpus": []}
    if info["cuda"]:
        info["cudnn"] = torch.backends.cudnn.version()
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            info["gpus"].append({"index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
                                 "memory_gib": round(p.total_memory / 2**30, 1),
                                 "multiprocessors": p.multi_processor_count})
    if shutil.which("nvidia-smi"):
        try:
            done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=30)
            info["driver"] = (done.stdout.strip().splitlines() or [None])[0]
        except (OSError, subprocess.SubprocessError) as err:
            info["driver"] = f"nvidia-smi failed: {err}"
    _write_json(Path(args.work) / "env.json", info)
    print(json.dumps(info))
    return 0


def cmd_matmul(args) -> int:
    """bf16 and fp16 (the doctor measures only one of them) through the doctor's own timer, against gpuspecs."""
    import torch

    from deepstation.workstation import gpuspecs
    from deepstation.workstation.checks.gpu import time_matmul
    from deepstation.workstation.checks.torch_cpu import matmul_rate

    rows = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(i)
            spec = gpuspecs.lookup(name)
            major = torch.cuda.get_device_capability(i)[0]
            for kind in (["bf16"] if major >= 8 else []) + ["fp16"]:
                rate = time_matmul(torch.device("cuda", i), kind, MATMUL_N, args.seconds) / 1e12
                peak = spec.tensor16 if spec else None
                rows.append({"gpu": i, "name": name, "card": spec.card if spec else None, "kind": kind,
                             "n": MATMUL_N, "tflops": round(rate, 1), "peak": peak,
                             "fraction": round(rate / peak, 3) if peak else None})
                print(json.dumps(rows[-1]), flush=True)
    else:  # the CPU dry run: the same code path on a small matrix, so the step and the report are exercised
        for kind, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            rate = matmul_rate(torch.device("cpu"), dtype, 512, 0.2) / 1e12
            rows.append({"gpu": None, "name": "cpu", "card": None, "kind": kind, "n": 512, "tflops": round(rate, 3),
                         "peak": None, "fraction": None})
            print(json.dumps(rows[-1]), flush=True)
    _write_json(Path(args.work) / "matmul.json", rows)
    return 0


def cmd_task(args) -> int:
    """A copy of a task YAML with the run's name, trainer.max_minutes (so a run stops cleanly inside its step's time
    limit) and KEY=VALUE settings (values read as YAML: true, auto, 3)."""
    import yaml

    task = yaml.safe_load(Path(args.src).read_text())
    task["name"] = args.name
    trainer = task.setdefault("trainer", {})
    trainer["max_minutes"] = round(max(args.max_seconds, 6) / 60, 2)
    for item in args.set:
        key, _, value = item.partition("=")
        *parents, last = key.split(".")
        node = task
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    Path(args.dst).write_text(yaml.safe_dump(task, sort_keys=False))
    print(", ".join([*args.set, f"trainer.max_minutes={trainer['max_minutes']}"]))
    return 0


def cmd_speech_data(args) -> int:
    """Synthesise (or find in the cache) the builtin:speech set of a task, with the task's own options, so the train
    step that follows reads the cache and the synthesis is timed on its own."""
    import yaml

    from deepstation.data.builtin import speech

    options = yaml.safe_load(Path(args.task).read_text())["data"].get("options") or {}
    began = time.perf_counter()
    frame = speech.load(**options)
    seconds = time.perf_counter() - began
    folder = Path(frame["path"].iloc[0]).parent
    print(json.dumps({"utterances": len(frame), "seconds": round(seconds, 2), "folder": str(folder),
                      "threads": max(1, min(8, os.cpu_count() or 1)), "espeak": speech.espeak_binary()}))
    return 0


def cmd_unpack_deb(args) -> int:
    """dpkg-deb -x without dpkg: a .deb is an ar archive holding data.tar.{xz,gz,zst,bz2,}."""
    import io
    import tarfile

    blob = Path(args.deb).read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise SystemExit(f"{args.deb}: not a .deb (ar) archive")
    at = 8
    while at + 60 <= len(blob):
        header = blob[at:at + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        body = blob[at + 60:at + 60 + size]
        at += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise SystemExit(f"{args.deb}: {name} is zstd-compressed; Python's tarfile cannot read it")
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                kwargs = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
                tar.extractall(args.dest, **kwargs)
            return 0
    raise SystemExit(f"{args.deb}: no data.tar member")


# --- the report (standard library only) ------------------------------------------------------------------------------

def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _common.write_text(path, json.dumps(value, indent=1, default=str) + "\n")


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _last_json(path: Path):
    """The last line of a file that parses as a JSON object (the `--json` convention), or None."""
    try:
        lines = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = Path(path).read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return ""
    return "\n".join(line[:300] for line in lines[-n:])


def read_steps(work: Path) -> list[dict]:
    steps = []
    try:
        lines = (work / "steps.tsv").read_text().splitlines()
    except OSError:
        return steps
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        name, rc, seconds = parts[:3]
        note = parts[3] if len(parts) > 3 else ""
        folder = work / "steps"
        steps.append({"name": name, "rc": rc, "seconds": float(seconds or 0), "note": note,
                      "cmd": (folder / f"{name}.cmd").read_text().strip() if (folder / f"{name}.cmd").exists() else "",
                      "out": folder / f"{name}.out", "err": folder / f"{name}.err"})
    return steps


def epochs_of(run_dir) -> list[dict]:
    records = []
    try:
        for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
            if line.strip():
                records.append(json.loads(line))
    except (OSError, ValueError):
        pass
    return records


def train_figures(step: dict) -> dict | None:
    summary = _last_json(step["out"])
    if not summary or "metrics" not in summary:
        return None
    epochs = epochs_of(summary.get("run_dir", ""))
    later = [e for e in epochs if e.get("epoch", 0) >= 2] or epochs
    rates = [e["samples_per_s"] for e in later if e.get("samples_per_s")]
    secs = [e["seconds"] for e in later if e.get("seconds") is not None]
    first = next((e for e in epochs if e.get("epoch") == 1), None)
    scale = summary.get("scale") or {}
    return {"run": summary.get("run"), "task": summary.get("task"), "device": summary.get("device"),
            "precision": summary.get("precision"), "epochs": summary.get("epochs"),
            "best_epoch": summary.get("best_epoch"), "stopped": summary.get("stopped"),
            "seconds": summary.get("seconds"), "parameters": summary.get("parameters"),
            "samples_per_s": round(statistics.median(rates), 1) if rates else None,
            "epoch_s": round(statistics.median(secs), 3) if secs else None,
            "first_epoch_s": first.get("seconds") if first else None,
            "test": (summary.get("metrics") or {}).get("test") or {}, "scale": scale,
            "rows": (summary.get("data") or {}).get("rows"), "torch": summary.get("torch")}


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _pct(fraction) -> str:
    return "–" if fraction is None else f"{fraction:.0%}"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _metrics_text(test: dict) -> str:
    shown = [(k, v) for k, v in test.items() if k != "loss" and isinstance(v, (int, float))]
    return ", ".join(f"{k} {v:.4f}" for k, v in shown[:5]) or "–"


def _status(step: dict) -> str:
    rc = step["rc"]
    if rc == "skip":
        return "not run"
    if rc == "0":
        return "ok"
    if rc in ("124", "137"):
        return f"timed out (exit {rc})"
    return f"failed (exit {rc})"


def build(work: Path, args) -> tuple[str, dict]:
    env = _read_json(work / "env.json") or {}
    steps = read_steps(work)
    by_name = {s["name"]: s for s in steps}
    on_cpu = os.environ.get("GPU_CHECK_ON_CPU") == "1" or args.on_cpu
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["## GPU check: the doctor's GPU check and training on the GPU", ""]
    total = f" · {args.elapsed:.0f} s in all (budget {args.budget} s)" if args.elapsed is not None else ""
    lines.append(f"Command: `{args.command}` · {now}{total}")
    gpus = env.get("gpus") or []
    if gpus:
        g = gpus[0]
        what = (f"{len(gpus)} x {g['name']}" if len(gpus) > 1 else g["name"]) + \
               f" ({g['memory_gib']:g} GiB, compute capability {g['capability']}, {g['multiprocessors']} SMs)"
    else:
        what = "no CUDA GPU"
    machine = (f"Machine: {what}, driver {env.get('driver') or '?'}, {env.get('cpus', '?')} CPU cores, "
               f"Python {env.get('python', '?')}, torch {env.get('torch', '?')} (CUDA build "
               f"{env.get('cuda_build') or 'none'}, cuDNN {env.get('cudnn', '–')})")
    lines.append(machine if env else "Machine: unknown (the env step did not finish)")
    lines.append("")
    if on_cpu:
        lines += ["**CPU dry run (`GPU_CHECK_ON_CPU=1`): every step ran without CUDA and with few epochs, to prove the "
                  "script; these are not GPU figures.**", ""]
    if not args.final:
        lines += ["**Incomplete: written after the last finished step; the script was still running (or was "
                  "stopped).**", ""]
    lines += ["Each step ran with a time limit inside the script's budget; a step that fails or runs out of time "
              "is recorded and the next one runs. Training: `python3 -m deepstation train TASK --no-track --json "
              "--quiet --workers auto` on a copy of the task with `precision: auto` and `max_minutes` (so a run "
              "stops cleanly inside its limit); `DEEPSTATION_MAX_EPOCHS` "
              + (f"was {os.environ['DEEPSTATION_MAX_EPOCHS']}" if os.environ.get("DEEPSTATION_MAX_EPOCHS")
                 else "was not set (full epochs)") + ".", ""]

    raw: dict = {"env": env, "steps": [], "doctor": None, "matmul": None, "train": {}}

    # the doctor's GPU rows
    doctor = _last_json(by_name["doctor"]["out"]) if "doctor" in by_name else None
    raw["doctor"] = doctor
    if doctor:
        lines += ["### The doctor's GPU check", "",
                  "`python3 -m deepstation doctor --only gpu --json`: a training step in 16-bit autocast, then dense "
                  "matmuls (n = 8192) and a device-to-device copy against the card's datasheet peak "
                  "(deepstation/workstation/gpuspecs.py).", "",
                  "| row | status | card | 16-bit TFLOP/s (% of peak) | tf32 TFLOP/s (%) | fp32 TFLOP/s (%) | "
                  "copy GB/s (% of peak) | host-to-device GB/s | s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in doctor.get("checks", []):
            m = row.get("measured") or {}
            t, f = m.get("tflops") or {}, m.get("fraction") or {}
            half = next((k for k in ("bf16", "fp16") if k in t), None)

            def cell(kind):
                return f"{_fmt(t.get(kind))} ({_pct(f.get(kind))})" if kind and kind in t else "–"

            copy = f"{_fmt(m.get('copy_gbs'))} ({_pct(f.get('bandwidth'))})" if "copy_gbs" in m else "–"
            card = _md(m.get("card") or m.get("name") or "–")
            lines.append(f"| {row.get('name')} | **{row.get('status')}** | {card}"
                         f" | {(half or '') + ' ' if half else ''}{cell(half)} | {cell('tf32')} | {cell('fp32')} | "
                         f"{copy} | {_fmt(m.get('h2d_gbs'))} | {_fmt(row.get('seconds'))} |")
        for row in doctor.get("checks", []):
            lines.append(f"\n{row.get('name')}: {_md(row.get('detail', ''))}")
        lines.append("")
    matmul = _read_json(work / "matmul.json")
    raw["matmul"] = matmul
    if matmul:
        lines += ["### bf16 and fp16 matmul", "",
                  f"The doctor's timer (`time_matmul`, about {args.matmul_seconds:g} s each after a warm-up) on both "
                  f"16-bit types; the datasheet's dense 16-bit tensor peak is the same for both.", "",
                  "| device | type | n | TFLOP/s | datasheet peak | % of peak |", "|---|---|---|---|---|---|"]
        for r in matmul:
            where = f"cuda:{r['gpu']} {r['card'] or r['name']}" if r.get("gpu") is not None else r["name"]
            lines.append(f"| {_md(where)} | {r['kind']} | {r['n']} | **{_fmt(r['tflops'])}** | {_fmt(r['peak'])} | "
                         f"{_pct(r['fraction'])} |")
        lines.append("")

    # training
    trained = [(name, by_name[name], train_figures(by_name[name])) for name in TRAIN_STEPS if name in by_name]
    if trained:
        lines += ["### Training", "",
                  "samples/s: training rows per second of an epoch's training phase (`metrics.jsonl`), median over "
                  "epochs 2 and later (epoch 1 holds CUDA warm-up and, with compile, the compilation, shown on its "
                  "own); train s: `summary.json` seconds (the epochs, validation and checkpoints); step s: the whole "
                  "command (start-up, data, the test). Test metrics of the best epoch.", "",
                  "| run | device, precision | compile | workers | epochs (stopped) | samples/s | epoch 1 s | "
                  "epoch s | train s | step s | test |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, step, fig in trained:
            raw["train"][name] = fig
            compiled = "yes" if name.endswith("-compile") else "no"
            if fig is None:
                lines.append(f"| {name} | – | {compiled} | – | – | – | – | – | – | "
                             f"{step['seconds']:.1f} | {_status(step)} |")
                continue
            sc = fig["scale"]
            workers = f"{sc.get('workers', '?')}" + (" (Ray)" if sc.get("ray") else "")
            lines.append(f"| {name} | {fig['device']}, {fig['precision']} | {compiled} | {workers} | "
                         f"{fig['epochs']} ({fig['stopped']}) | **{_fmt(fig['samples_per_s'])}** | "
                         f"{_fmt(fig['first_epoch_s'])} | {_fmt(fig['epoch_s'])} | {_fmt(fig['seconds'])} | "
                         f"{step['seconds']:.1f} | {_metrics_text(fig['test'])} |")
        lines.append("")
        speed = [(n, f) for n, _, f in trained if f and f.get("samples_per_s")]
        for base in ("digits", "speech"):
            a, b = dict(speed).get(base), dict(speed).get(f"{base}-compile")
            if a and b:
                lines.append(f"- compile: true against eager, {base}: {b['samples_per_s'] / a['samples_per_s']:.2f}x "
                             f"the samples/s; its first epoch (with the compilation) took "
                             f"{_fmt(b['first_epoch_s'])} s against {_fmt(a['first_epoch_s'])} s.")
        scales = [f["scale"] for _, _, f in trained if f]
        if scales:
            sc = scales[0]
            count = len(gpus)
            if sc.get("ray"):
                how = (f"`--workers auto` chose {sc.get('workers')} Ray workers (one per GPU), DDP over NCCL across "
                       f"{count} GPUs")
            else:
                how = (f"`--workers auto` chose {sc.get('workers', 1)} worker on {count} GPU(s) "
                       f"(gpus_per_worker {sc.get('gpus_per_worker')}): trained in this one process, no Ray and no "
                       f"NCCL" + (f" ({sc['note']})" if sc.get("note") else ""))
            lines.append(f"- {how}. NCCL between workers needs 2 GPUs or more and Ray Train (`deepstation[cluster]`); "
                         f"{RAY_NOTE}. The doctor's NCCL all-reduce row also appears only with 2 GPUs or more.")
        lines.append("")
    data = by_name.get("speech-data")
    made = _last_json(data["out"]) if data else None
    if made:
        lines += [f"builtin:speech: {made['utterances']} utterances synthesised (or found in the cache) by espeak-ng "
                  f"in {made['seconds']:.1f} s on {made['threads']} threads.", ""]

    # every step
    lines += ["### Steps", "", "| step | what | status | s | note |", "|---|---|---|---|---|"]
    for s in steps:
        raw["steps"].append({k: (str(v) if isinstance(v, Path) else v) for k, v in s.items()})
        lines.append(f"| {s['name']} | {_md(LABELS.get(s['name'], ''))} | {_status(s)} | {s['seconds']:.1f} | "
                     f"{_md(s['note'])} |")
    lines.append("")
    failed = [s for s in steps if s["rc"] not in ("0", "skip")]
    for s in failed:
        tail = _tail(s["err"]) or _tail(s["out"]) or "(no output)"
        lines += [f"`{s['name']}` ({_status(s)}): `{_md(s['cmd'])}`, last lines:", "", "```", tail, "```", ""]
    if steps:
        lines += ["Commands, in order:", "", "```"] + [f"{s['name']}: {s['cmd']}" for s in steps if s["cmd"]] + \
                 ["```"]
    return "\n".join(lines).rstrip() + "\n", raw


def write_section(results: Path, body: str) -> None:
    """Replace the gpu_check section of RESULTS.md, or add it before the hand-written `## Missed targets`."""
    _common.write_section(SECTION, body, path=results)


def cmd_write(args) -> int:
    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    body, raw = build(work, args)
    results = Path(args.results)
    write_section(results, body)
    _common.write_text(out / "gpu_results.md", body)
    _common.write_text(out / "RESULTS.md", results.read_text())
    _write_json(out / "gpu_check.json", raw)
    if args.final:
        print(body)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="gpu_check_helper.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("env")
    p.add_argument("--work", required=True)
    p = sub.add_parser("matmul")
    p.add_argument("--work", required=True)
    p.add_argument("--seconds", type=float, default=1.0)
    p = sub.add_parser("task")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--name", required=True)
    p.add_argument("--max-seconds", type=float, required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p = sub.add_parser("speech-data")
    p.add_argument("task")
    p = sub.add_parser("unpack-deb")
    p.add_argument("deb")
    p.add_argument("dest")
    p = sub.add_parser("write")
    p.add_argument("--work", required=True)
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    p.add_argument("--out", required=True)
    p.add_argument("--command", default="bash benchmarks/gpu_check.sh")
    p.add_argument("--budget", type=int, default=0)
    p.add_argument("--elapsed", type=float)
    p.add_argument("--matmul-seconds", type=float, default=1.0)
    p.add_argument("--on-cpu", action="store_true")
    p.add_argument("--final", action="store_true")
    args = ap.parse_args(argv)
    return {"env": cmd_env, "matmul": cmd_matmul, "task": cmd_task, "speech-data": cmd_speech_data,
            "unpack-deb": cmd_unpack_deb, "write": cmd_write}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
