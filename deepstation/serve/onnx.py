"""ONNX export of a finished run, and inference on ONNX Runtime without torch in the hot path.

`export(run, "model.onnx")` writes the network (every encoder and head, a batch axis of any size, and for audio a
time axis of any length) and beside it `model.json`: the task, what the codecs learned (preprocess.json), the
graph's input and output names and shapes, the versions that made it. The graph ends where the heads' decoding
starts: category probabilities, number values (standardised, with their quantiles), and for a sequence output the
per-frame log-probabilities and frame counts; the codecs (encode) and the decoding (argmax, CTC greedy decoding,
the output's own units, forecast levels) stay in Python, in numpy here.

    OnnxModel("model.onnx").predict("new.csv")   # the same columns as Run.predict
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
from pathlib import Path

import numpy as np

from deepstation import files
from deepstation.errors import DeepstationError

FORMAT = 1
OPSET = 18
TOLERANCE = 1e-4       # ONNX Runtime against torch: |a - b| <= TOLERANCE * (1 + |b|)
THREADS_ENV = "DEEPSTATION_ONNX_THREADS"


def sidecar(path) -> Path:
    """The JSON beside an ONNX file: model.onnx -> model.json."""
    return Path(path).with_suffix(".json")


# what the graph gives per head type: category probabilities, number values (standardised; forecasts [batch,
# horizon], with quantiles [batch, 1 + quantiles, horizon]), a sequence's per-frame log-probabilities and frames
HEAD_OUTPUTS = {"category": ["prob"], "number": ["value"], "sequence": ["log_probs", "lengths"]}


# --- export ----------------------------------------------------------------------------------------------------

def export(run, path) -> dict:
    """Export a finished run (a Run, a run folder or models:/NAME/VERSION) to `path` (.onnx), and its JSON beside
    it; check ONNX Runtime against torch on batches made from the codecs' state (a given Run's model is moved to
    the CPU). Returns the JSON's content, with the check's `max_abs_diff`."""
    import torch

    from deepstation.run import Run

    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise DeepstationError(f"{path}: expected a file name ending .onnx, such as {path.with_suffix('.onnx').name}")
    if not isinstance(run, Run):
        run = Run.load(run, device="cpu")
    model = run.model.to("cpu").eval()
    layout, heads = _layout(run.codecs), _heads(run.task)
    inputs = [f"{name}.{part}" for name, part in layout]
    outputs = [f"{name}.{key}" for name, kind in heads for key in HEAD_OUTPUTS[kind]]
    # the batch traced, and one of another size (and, for audio, length): the free axes are checked too
    checks = [_sample(run.codecs, layout, batch=3, seed=0), _sample(run.codecs, layout, batch=1, seed=1, short=True)]
    graph = _graph(model, layout, heads)
    with torch.no_grad():  # by the model as trained, whatever the export replaced
        expected = [[t.numpy() for t in graph(*batch)] for batch in checks]
    blob, exporter = _export(model, layout, heads, checks[0], inputs, outputs)
    session = _session(blob, threads=1)
    diff = max(_compare(session, inputs, outputs, batch, found) for batch, found in zip(checks, expected))
    read = {i.name: i for i in session.get_inputs()}
    meta = {
        "format": FORMAT, "run": run.id, "task": _task(run), "preprocess": run._state(),
        "inputs": [{"name": n, "dtype": str(t.numpy().dtype), "shape": _dims(read.get(n), t)}
                   for n, t in zip(inputs, checks[0])],
        "outputs": [{"name": o.name, "dtype": _dtype(o.type), "shape": _dims(o)} for o in session.get_outputs()],
        "heads": {name: {"type": kind, "outputs": [f"{name}.{k}" for k in HEAD_OUTPUTS[kind]]} for name, kind in heads},
        "opset": OPSET, "exporter": exporter, "max_abs_diff": diff, "versions": _versions(),
    }
    files.write_bytes(path, blob)
    files.write_json(sidecar(path), meta)
    return meta


def reference(run, features: dict) -> dict:
    """What the exported graph computes, computed by torch on the run's model (moved to the CPU):
    {"<output>.<key>": array} for encoded features ({input: {part: tensor}}); for checks and benchmarks against
    OnnxModel.run."""
    import torch

    layout, heads = _layout(run.codecs), _heads(run.task)
    graph = _graph(run.model.to("cpu").eval(), layout, heads)
    with torch.no_grad():
        found = graph(*[features[name][part] for name, part in layout])
    names = [f"{name}.{key}" for name, kind in heads for key in HEAD_OUTPUTS[kind]]
    return {name: t.numpy() for name, t in zip(names, found)}


def _heads(task) -> list:
    return [(o.name, o.type) for o in task.outputs]


def _layout(codecs: dict) -> list:
    """(input, part) per tensor the model reads, in the codecs' order: the graph's inputs are named input.part."""
    return [(name, part) for name, codec in codecs.items() for part in PARTS[codec.shape()["type"]](codec)]


PARTS = {  # what each codec's encode() gives
    "table": lambda c: ["num", "cat"],
    "image": lambda c: ["x"],
    "audio": lambda c: ["wave", "samples"],
    "series": lambda c: ["x", "cal", *(["steps"] if c.state.get("masked") else []),
                         *(["id"] if c.state.get("ids") else [])],
}


def _sample(codecs: dict, layout: list, batch: int, seed: int, short: bool = False) -> tuple:
    """A batch of the right shapes and kinds made from the codecs' state alone (no data is read): random values,
    indices within each embedding, waveforms of different lengths."""
    import torch

    g = torch.Generator().manual_seed(seed)
    made = []
    for name, part in layout:
        shape = codecs[name].shape()
        kind = shape["type"]
        if kind == "table" and part == "num":
            made.append(torch.randn(batch, shape["num"], generator=g))
        elif kind == "table":
            made.append(torch.stack([torch.randint(0, n, (batch,), generator=g) for n in shape["cat_sizes"]], 1)
                        if shape["cat_sizes"] else torch.zeros(batch, 0, dtype=torch.long))
        elif kind == "image":
            made.append(torch.randn(batch, shape["channels"], *shape["size"], generator=g))
        elif kind == "audio":
            longest = int(shape["sample_rate"] * (0.45 if short else 0.7))
            samples = torch.tensor([longest - 997 * i for i in range(batch)], dtype=torch.long)
            if part == "wave":  # silence past each one's length, as the codec pads
                wave = torch.randn(batch, longest, generator=g) * 0.5
                made.append(wave * (torch.arange(longest)[None, :] < samples[:, None]))
            else:
                made.append(samples)
        elif part == "x":
            made.append(torch.randn(batch, shape["length"], shape["channels"], generator=g))
        elif part == "cal":
            made.append(torch.randn(batch, shape["calendar"], generator=g))
        elif part == "steps":  # each series' own steps: some padded, one whole
            made.append(torch.tensor([shape["length"] - (7 * i) % shape["length"] for i in range(batch)]))
        else:
            made.append(torch.randint(0, shape["ids"], (batch,), generator=g))
    return tuple(made)


@functools.cache
def _graph_class():
    import torch
    from torch import nn

    from deepstation.models.assemble import EnsembleModel

    class Graph(nn.Module):
        """The task's model with flat tensor inputs (one per codec part) and flat outputs (HEAD_OUTPUTS)."""

        def __init__(self, model, layout, heads):
            super().__init__()
            self.model, self.layout, self.heads = model, layout, heads

        def forward(self, *tensors):
            features: dict = {}
            for (name, part), t in zip(self.layout, tensors):
                features.setdefault(name, {})[part] = t
            out = self._ensemble(features) if isinstance(self.model, EnsembleModel) else self.model(features)
            found = []
            for name, kind in self.heads:
                if kind == "category":
                    found.append(out[name].float().softmax(-1))
                elif kind == "number":
                    found.append(out[name].float())
                else:
                    logits, lengths = out[name]
                    found += [logits.float().log_softmax(-1), lengths]
            return tuple(found)

        def _ensemble(self, features):
            """EnsembleModel in evaluation, the median of its members, by a sort: torch.quantile has no ONNX op."""
            m = self.model
            outs = [member(m._crop(features, n)) for member, n in zip(m.members, m.lookbacks)]
            found = {}
            for name in outs[0]:
                ranked = torch.stack([o[name].float() for o in outs]).sort(dim=0).values
                low, high = (len(outs) - 1) // 2, len(outs) // 2
                found[name] = ranked[low] if low == high else ranked[low] + (ranked[high] - ranked[low]) * 0.5
            return found

    return Graph


def _graph(model, layout, heads):
    return _graph_class()(model, layout, heads).eval()


def _export(model, layout, heads, sample, inputs, outputs) -> tuple[bytes, str]:
    """The ONNX file's bytes, and the exporter that made them: torch.export (dynamo), else TorchScript tracing.
    A model with an audio encoder goes straight to TorchScript: its packed sequences do not trace with
    torch.export, and TorchScript's export turns them into ONNX GRUs with sequence lengths."""
    audio = any(part == "wave" for _, part in layout)
    free = [{0: "batch", 1: "samples"} if part == "wave" else {0: "batch"} for _, part in layout]
    tries = [("torchscript", _exportable(model))] if audio else [("dynamo", model), ("torchscript", model)]
    failures = []
    for how, candidate in tries:
        try:
            with _quiet():
                blob = EXPORTERS[how](_graph(candidate, layout, heads), sample, inputs, outputs, free)
            return blob, how
        except Exception as err:  # noqa: BLE001  (the exporters raise many kinds; the next one is tried)
            failures.append(f"{how}: {_one_line(err)}")
    kinds = sorted({_kind_of(e) for m in getattr(model, "members", None) or [model] for e in m.encoders.values()})
    raise DeepstationError(f"the model (encoders: {', '.join(kinds)}) could not be exported to ONNX ("
                           f"{'; '.join(failures)}); predict with the run folder instead")


def _by_dynamo(graph, sample, inputs, outputs, free) -> bytes:
    import torch

    dims = {}
    shapes = tuple({axis: dims.setdefault(n, torch.export.Dim(n, min=1)) for axis, n in f.items()} for f in free)
    # *tensors is one argument to torch.export: its shapes go in a tuple of one
    program = torch.onnx.export(graph, sample, input_names=inputs, output_names=outputs, opset_version=OPSET,
                                dynamo=True, dynamic_shapes=(shapes,), verbose=False)
    return program.model_proto.SerializeToString()


def _by_torchscript(graph, sample, inputs, outputs, free) -> bytes:
    import torch

    buffer = io.BytesIO()
    axes = {**dict(zip(inputs, free)),
            **{n: {0: "batch", 1: "frames"} if n.endswith(".log_probs") else {0: "batch"} for n in outputs}}
    torch.onnx.export(graph, sample, buffer, input_names=inputs, output_names=outputs, opset_version=OPSET,
                      dynamo=False, dynamic_axes=axes)
    return buffer.getvalue()


EXPORTERS = {"dynamo": _by_dynamo, "torchscript": _by_torchscript}


@contextlib.contextmanager
def _quiet():
    """The exporters talk (progress on stdout, warnings, log records, C++ warnings on stderr); the CLI prints one
    line, so none of it shows, and a failure is summed up in the error instead."""
    import logging
    import warnings

    logger = logging.getLogger("torch.onnx")
    level = logger.level
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        saved = None
    try:
        with open(os.devnull, "w") as null, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            logger.setLevel(logging.CRITICAL)
            if saved is not None:
                os.dup2(null.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        logger.setLevel(level)


def _exportable(model):
    """The model, or a copy of it in which each audio encoder computes its spectrogram without complex tensors
    (which TorchScript's export does not know)."""
    import copy

    from deepstation.models.encoders.audio import Audio

    model = copy.deepcopy(model)
    for member in getattr(model, "members", None) or [model]:
        for name, encoder in list(member.encoders.items()):
            if isinstance(encoder, Audio):
                member.encoders[name] = _audio_class()(encoder)
    return model


@functools.cache
def _audio_class():
    import math

    import torch
    from torch import nn

    from deepstation.models.encoders.audio import FLOOR, _inside, _subsampled, normalise

    class ExportAudio(nn.Module):
        """deepstation.models.encoders.audio.Audio in evaluation, its STFT a strided convolution with the windowed
        DFT basis (real parts, then imaginary): TorchScript's export knows no complex tensors, and ONNX Runtime's
        STFT op, with the gathers that take its real and imaginary parts apart, cost more than the rest of the
        model at batch 1. The export is checked against the original: a change there that is not made here stops
        the export."""

        def __init__(self, audio):
            super().__init__()
            self.audio = audio
            m = audio.frontend
            # the window's taps only: torch.stft centres the win_length window in n_fft points
            left = (m.n_fft - m.win_length) // 2
            n = torch.arange(left, left + m.win_length, dtype=torch.float64)
            k = torch.arange(m.n_fft // 2 + 1, dtype=torch.float64)[:, None]
            angle = 2 * math.pi * k * n / m.n_fft
            window = m.window.to(torch.float64)
            basis = torch.cat([torch.cos(angle) * window, torch.sin(angle) * window])  # [2 * bins, win_length]
            self.register_buffer("basis", basis.float()[:, None, :], persistent=False)
            self.register_buffer("filters", torch.cat([m.filters, m.filters]), persistent=False)  # [2 * bins, mels]
            self.pad = m.n_fft // 2 - left  # stft pads n_fft // 2 zeros each side; the taps start `left` further

        def forward(self, x: dict):
            a = self.audio
            feats, frames = self.log_mel(x["wave"], x["samples"])
            f, lengths = normalise(feats, frames)[:, None], frames
            for conv in a.conv:
                f, lengths = torch.relu(conv(f)), _subsampled(lengths)
                f = f * _inside(lengths, f.shape[2]).to(f.dtype)[:, None, :, None]
            steps = a.project(f.permute(0, 2, 1, 3).flatten(2))
            packed = nn.utils.rnn.pack_padded_sequence(steps, lengths, batch_first=True, enforce_sorted=False)
            out, _ = a.rnn(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=steps.shape[1])
            if a.temporal:
                return out, lengths
            mask = _inside(lengths, out.shape[1]).to(out.dtype)
            return (out * mask[..., None]).sum(1) / lengths.clamp(min=1)[:, None].to(out.dtype)

        def log_mel(self, wave, samples):
            m = self.audio.frontend
            padded = nn.functional.pad(wave.float()[:, None], (self.pad, self.pad))
            spec = nn.functional.conv1d(padded, self.basis, stride=m.hop)  # [batch, 2 * bins, frames]
            mel = (spec * spec).transpose(1, 2) @ self.filters  # real² + imaginary², summed into the mel bands
            return torch.log(mel.clamp(min=FLOOR)), m.frames(samples)

    return ExportAudio


def _kind_of(encoder) -> str:
    from deepstation.models.encoders import ENCODERS

    return next((k for k, cls in ENCODERS.items() if type(encoder) is cls), type(encoder).__name__)


def _one_line(err: Exception) -> str:
    import re

    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(err)).split()) or type(err).__name__
    return text[:200] + ("..." if len(text) > 200 else "")


def _compare(session, inputs, outputs, sample, expected) -> float:
    """The largest difference between ONNX Runtime's outputs and torch's; one beyond TOLERANCE stops the export."""
    read = _names(session)
    try:
        got = session.run(outputs, {n: t.numpy() for n, t in zip(inputs, sample) if n in read})
    except Exception as err:  # noqa: BLE001  (onnxruntime's errors are its own classes)
        raise DeepstationError(f"ONNX export: ONNX Runtime cannot run the exported model on a batch of "
                               f"{len(sample[0])} ({_one_line(err)}); please report it") from None
    worst = 0.0
    for name, a, b in zip(outputs, got, expected):
        if a.shape != b.shape:
            raise DeepstationError(f"ONNX export: output {name} has shape {list(a.shape)} on ONNX Runtime, "
                                   f"{list(b.shape)} on torch; please report it")
        if a.size == 0:
            continue
        a, b = a.astype(np.float64), b.astype(np.float64)
        gap = np.abs(a - b)
        worst = max(worst, float(gap.max()))
        if not (gap <= TOLERANCE * (1 + np.abs(b))).all():
            raise DeepstationError(f"ONNX export: output {name} differs from torch by up to {float(gap.max()):.3g} "
                                   f"(allowed: {TOLERANCE:g} x (1 + |value|)); the export is not trustworthy, please "
                                   f"report it")
    return worst


def _names(session) -> set:
    return {i.name for i in session.get_inputs()}


def _dims(info, tensor=None) -> list:
    """An input's or output's shape: numbers, and names for the free axes (batch, samples, ...)."""
    if info is None:  # an input the graph does not read (an empty part): its shape as traced
        return ["batch", *tensor.shape[1:]]
    return [d if isinstance(d, int) else str(d) for d in info.shape]


def _dtype(onnx_type: str) -> str:
    return {"tensor(float)": "float32", "tensor(int64)": "int64"}.get(onnx_type, onnx_type)


def _task(run) -> dict:
    """The task as its run folder stores it (passwords already replaced by ${VARIABLE})."""
    import yaml

    return yaml.safe_load(run.folder.config.read_text())


def _versions() -> dict:
    import onnx
    import onnxruntime
    import torch

    from deepstation import __version__

    return {"deepstation": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "python": sys.version.split()[0]}


def _session(model, threads: int | None = None, device: str = "cpu"):
    """One ONNX Runtime session: every graph optimisation, a fixed number of threads, one operator at a time."""
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise DeepstationError(f"--device {device}: this onnxruntime has no CUDA provider (found "
                                   f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu or use "
                                   f"--device cpu")
        index = device.split(":")[1] if ":" in device else "0"
        providers = [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]
    try:
        return ort.InferenceSession(model, sess_options=options, providers=providers)
    except Exception as err:  # noqa: BLE001  (onnxruntime's errors are its own classes)
        where = model if isinstance(model, (str, Path)) else "the exported model"
        raise DeepstationError(f"{where}: ONNX Runtime cannot load it ({_one_line(err)}); export it again with "
                               f"`deepstation export`") from None


def default_threads() -> int:
    """Threads per inference: $DEEPSTATION_ONNX_THREADS, else the cores this process may use, at most 4 (small
    models at small batches lose more to thread hand-offs than they gain beyond that)."""
    given = os.environ.get(THREADS_ENV)
    if given:
        if not given.isdigit() or int(given) < 1:
            raise DeepstationError(f"{THREADS_ENV}={given!r}: expected a positive whole number of threads")
        return int(given)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise DeepstationError("onnxruntime is not installed; install it with `pip install 'deepstation[serve]'` "
                               "(or `pip install onnxruntime`)") from None
    return onnxruntime


# --- inference -------------------------------------------------------------------------------------------------

class OnnxModel:
    """An exported model on ONNX Runtime: one session, made once; predict() gives what Run.predict gives."""

    def __init__(self, path, device: str = "cpu", threads: int | None = None):
        from deepstation.config import load_task
        from deepstation.data.prepare import make_codecs

        self.path = Path(path)
        meta_path = sidecar(self.path)
        if not self.path.is_file():
            raise DeepstationError(f"{self.path}: no such ONNX file; make one with `deepstation export RUN_DIR -o "
                                   f"{self.path}`")
        try:
            self.meta = files.read_json(meta_path)
        except FileNotFoundError:
            raise DeepstationError(f"{meta_path}: missing; the preprocessing written beside {self.path.name} by "
                                   f"`deepstation export` is needed to predict (export again)") from None
        except ValueError as err:
            raise DeepstationError(f"{meta_path}: not readable JSON ({err}); export again") from None
        if not isinstance(self.meta, dict) or self.meta.get("format") != FORMAT:
            raise DeepstationError(f"{meta_path}: not a deepstation export of format {FORMAT}; export again with "
                                   f"this version of deepstation")
        self.task = load_task(self.meta["task"])
        self.codecs, self.targets = make_codecs(self.task, self.meta["preprocess"])
        self.session = _session(str(self.path), threads=threads, device=device)
        wanted = _names(self.session)
        # the graph's inputs, each with the encoded feature it is: (input, part); parts it does not read are left out
        self.feeds = [(i["name"], tuple(i["name"].rsplit(".", 1))) for i in self.meta["inputs"] if i["name"] in wanted]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.heads = [(name, h["type"]) for name, h in self.meta["heads"].items()]
        self.batch_size = self.task.trainer.eval_batch_size

    @property
    def id(self) -> str | None:
        """The run the export was made from."""
        return self.meta.get("run")

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, run={self.id!r})"

    def run(self, features: dict) -> dict:
        """The graph's raw outputs ({"<output>.<key>": array}) for encoded features ({input: {part: tensor or
        array}}), in batches of trainer.eval_batch_size."""
        feed = {}
        for name, (inp, part) in self.feeds:
            value = features[inp][part]
            feed[name] = value if isinstance(value, np.ndarray) else value.numpy()
        rows = len(next(iter(feed.values()))) if feed else 0
        if rows == 0:
            raise DeepstationError("nothing to predict: no rows")
        if rows <= self.batch_size:  # the usual request: one call, no copies
            return dict(zip(self.outputs, self.session.run(self.outputs, feed)))
        chunks = [self.session.run(self.outputs, {n: v[start:start + self.batch_size] for n, v in feed.items()})
                  for start in range(0, rows, self.batch_size)]
        # audio is padded once for the whole table (encode_table), so every batch has as many frames
        return {name: np.concatenate([c[k] for c in chunks]) for k, name in enumerate(self.outputs)}

    def predict(self, data, ids=None, as_columns: bool = False):
        """Predictions for a DataFrame, a CSV/Parquet file, an image or audio file, or a folder of them: the input
        columns, then `<output>_pred` (and `<output>_prob` for categories); a forecasting task in long format
        (id, step, date, forecast, quantiles), as Run.predict gives them. A list of DataFrames gives a list of
        frames from one pass of the graph, as Run.predict does (for a forecast: a series each; as_columns: as
        {column: numpy values})."""
        from deepstation.data.prepare import encode_tables
        from deepstation.run import input_table, predictions

        many = isinstance(data, list)
        tables = [input_table(self.task, d) for d in (data if many else [data])]
        part, tables, bounds = encode_tables(self.codecs, self.targets, tables, self.task, ids)
        raw = self.run(part.features)
        preds = {name: decode_head(kind, raw, name) for name, kind in self.heads}
        frames = predictions(self.task, self.targets, tables, preds, bounds, as_columns)
        return frames if many else frames[0]


def decode_head(kind: str, raw: dict, name: str) -> dict:
    """A head's predictions from the graph's outputs, as the head's predict() gives them (numpy, lists)."""
    if kind == "category":
        prob = raw[f"{name}.prob"]
        best = prob.argmax(axis=-1)
        return {"class": best, "prob": np.take_along_axis(prob, best[:, None], axis=-1)[:, 0]}
    if kind == "number":
        out = raw[f"{name}.value"]
        if out.ndim == 3:  # [batch, 1 + quantiles, horizon]: the point forecast first
            return {"value": out[:, 0], "quantiles": out[:, 1:].transpose(0, 2, 1)}
        return {"value": out}
    return {"tokens": greedy(raw[f"{name}.log_probs"], raw[f"{name}.lengths"])}


def greedy(scores: np.ndarray, lengths: np.ndarray) -> list[list[int]]:
    """CTC greedy decoding, as SequenceHead.predict: the best token per frame within each row's frames, repeats
    merged, blanks (0) dropped."""
    best = scores.argmax(axis=-1)
    tokens = []
    for row, n in zip(best, lengths.tolist()):
        row = row[:n]
        if len(row):
            row = row[np.concatenate([[True], row[1:] != row[:-1]])]
        tokens.append(row[row != 0].tolist())
    return tokens
