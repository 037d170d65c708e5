"""deepstation train TASK.yaml | --resume RUN_DIR"""
from __future__ import annotations

from deepstation.cli import non_negative, training_options, verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "train", "Train a task's model, validate each epoch, test the best epoch.",
                    "deepstation train examples/digits.yaml --epochs 5")
    p.add_argument("task", nargs="?", help="the task YAML")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an unfinished run from its last checkpoint")
    training_options(p)
    scale = p.add_argument_group("scale (Ray Train; see docs/cluster.md)")
    scale.add_argument("--workers", type=_workers, metavar="N", help="data-parallel training processes, or auto "
                       "for one per GPU (scale.workers)")
    scale.add_argument("--gpus-per-worker", type=non_negative, metavar="G", help="GPUs per worker (scale.gpus_per_worker)")
    scale.add_argument("--ray-address", metavar="ADDR", help="an existing Ray cluster (scale.ray_address); default: "
                       "a local one for the run")
    p.set_defaults(run=run)


def _workers(value: str):
    if value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        import argparse

        raise argparse.ArgumentTypeError(f"expected a positive whole number or auto, got {value!r}")
    return int(value)


def run(args) -> int:
    from deepstation.cli import check_runs_dir, render
    from deepstation.errors import DeepstationError
    from deepstation.run import train
    from deepstation.training.progress import Bar, Silent

    if bool(args.task) == bool(args.resume):
        raise DeepstationError("train: pass a task YAML, or --resume RUN_DIR (not both)")
    check_runs_dir(args.runs_dir)
    out = render.console(args.json)
    progress = Silent() if args.quiet else Bar(out)
    result = train(args.task, epochs=args.epochs, device=args.device, runs_dir=args.runs_dir, resume=args.resume,
                   progress=progress, track=args.track, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                   ray_address=args.ray_address)
    s = result.summary
    for warning in warnings(s):
        out.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    if not args.quiet:
        out.print(f"{s['task']}: best epoch {s['best_epoch']} of {s['epochs']} ({s['stopped']}) by {s['monitor']}, "
                  f"{s['parameters']:,} parameters, {_where(s)} {s['precision']}, {s['seconds']:.1f} s",
                  soft_wrap=True)
        out.print(render.metrics_table(s["metrics"], None))
        if "backtest" in s:
            mean = ", ".join(f"{k} {v:.4f}" for k, v in s["backtest"]["mean"].items() if v is not None)
            out.print(f"rolling-origin backtest, {len(s['backtest']['folds'])} origins, mean test: {mean}",
                      soft_wrap=True)
        out.print(f"run folder: {s['run_dir']}", soft_wrap=True)
    if args.json:
        render.print_json(s)
    return 0


def _where(summary: dict) -> str:
    scale = summary.get("scale") or {}
    if scale.get("workers", 1) > 1:
        return (f"{scale['workers']} Ray workers on {scale.get('worker_device') or summary['device']} "
                f"(global batch {scale['global_batch']})")
    return summary["device"]


def warnings(summary: dict) -> list[str]:
    data = summary.get("data", {})
    found = []
    if data.get("skipped"):
        found.append(f"{data['skipped']} sample(s) could not be decoded and were skipped (data.on_bad_sample: skip)")
    if (summary.get("scale") or {}).get("note"):
        found.append(summary["scale"]["note"])
    return found + unseen_warnings(data.get("unseen_labels", {}))


def unseen_warnings(unseen: dict) -> list[str]:
    found = []
    for where, labels in unseen.items():
        split, output = where.split("/")
        shown = ", ".join(map(repr, labels[:5])) + (" ..." if len(labels) > 5 else "")
        found.append(f"{split} rows of output `{output}` have label(s) {shown} never seen in training; "
                     f"they count as misses")
    return found
