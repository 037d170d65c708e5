"""deepstation export RUN_DIR|models:/NAME/VERSION [-o model.onnx]"""
from __future__ import annotations

from deepstation.cli import verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "export",
                    "Export a finished run's model to ONNX (any batch size; any length of audio), with its "
                    "preprocessing written beside it as JSON; ONNX Runtime's outputs are checked against torch's. "
                    "`deepstation serve --onnx` runs it.",
                    "deepstation export runs/digits-cnn-20261127-101500 -o digits.onnx")
    p.add_argument("run_dir", metavar="RUN", help="a run folder, or models:/NAME/VERSION (or models:/NAME/latest) "
                   "from `deepstation register`")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="the .onnx file to write, and beside it FILE's name with .json (default: RUN/model.onnx, or "
                   "NAME-VERSION.onnx here for models:/NAME/VERSION)")
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    from deepstation.cli import check_output, check_run
    from deepstation.errors import DeepstationError

    if args.output is not None and not args.output.lower().endswith(".onnx"):
        raise DeepstationError(f"-o {args.output}: expected a file name ending .onnx, such as "
                               f"{Path(args.output).with_suffix('.onnx')}")
    if args.output is not None:
        check_output(args.output, "model.onnx")
    check_run(args.run_dir)
    from deepstation.run import Run
    from deepstation.serve.onnx import export, sidecar

    r = Run.load(args.run_dir, device="cpu")
    out = Path(args.output) if args.output is not None else _default(args.run_dir, r)
    out.parent.mkdir(parents=True, exist_ok=True)  # as mkdir -p
    meta = export(r, out)
    size = out.stat().st_size
    ins = ", ".join(i["name"] for i in meta["inputs"])
    outs = ", ".join(o["name"] for o in meta["outputs"])
    print(f"{out} ({_size(size)}, {sidecar(out).name} beside it): inputs {ins}; outputs {outs}; max abs diff vs "
          f"torch {meta['max_abs_diff']:.2g}")
    return 0


def _default(ref: str, r):
    """RUN/model.onnx; for a registered model (its files live in a cache), NAME-VERSION.onnx here."""
    from pathlib import Path

    if ref.startswith("models:/"):
        return Path("-".join(p for p in ref[len("models:/"):].split("/") if p) + ".onnx")
    return r.dir / "model.onnx"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
