"""deepstation predict RUN_DIR|models:/NAME/VERSION INPUT [-o out.csv]"""
from __future__ import annotations

from deepstation.cli import device_name, verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "predict",
                    "Predict with a finished run or a registered model: INPUT is a CSV/Parquet file, an image, or a "
                    "folder of images. A forecasting run forecasts past the end of each series, one row per series "
                    "and step (id, step, date, forecast, quantiles).",
                    "deepstation predict runs/digits-cnn-20261127-101500 scans/ -o predictions.csv\n"
                    "  deepstation predict models:/digits/latest scans/ -o predictions.csv")
    p.add_argument("run_dir", metavar="RUN", help="a run folder, or models:/NAME/VERSION (or models:/NAME/latest) "
                   "from `deepstation register`, downloaded once into ~/.cache/deepstation (or $DEEPSTATION_CACHE)")
    p.add_argument("input", metavar="INPUT")
    p.add_argument("-o", "--output", metavar="FILE", help="write .csv or .parquet (default: CSV on stdout)")
    p.add_argument("--device", default="auto", type=device_name, help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--ids", nargs="+", metavar="ID", help="forecasting many series: only these series (default: all)")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys
    from pathlib import Path

    from deepstation import files
    from deepstation.cli import check_output, check_run
    from deepstation.errors import DeepstationError
    from deepstation.run import Run, without_blobs

    if args.output and not args.output.lower().endswith((".csv", ".parquet")):
        raise DeepstationError(f"-o {args.output}: expected a .csv or .parquet file name")
    if args.output:
        check_output(args.output, "predictions.csv")
    check_run(args.run_dir)
    r = Run.load(args.run_dir, device=args.device)
    if args.ids and not any(getattr(i, "id", None) for i in r.task.inputs):
        raise DeepstationError(f"--ids: run {r.id} forecasts no series by id (its task has no series input with "
                               f"`id`); leave --ids out")
    frame = r.predict(args.input, ids=args.ids)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)  # results/preds.csv makes results/, as mkdir -p
    frame = without_blobs(frame)  # arrays (built-in images) do not belong in a CSV
    if not args.output:
        frame.to_csv(sys.stdout, index=False)
    elif args.output.lower().endswith(".parquet"):
        import io

        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        files.write_bytes(args.output, buffer.getvalue())
    else:
        files.write_text(args.output, frame.to_csv(index=False))
    if args.output:
        print(f"{len(frame)} prediction(s) written to {args.output}", file=sys.stderr)
    return 0
