"""deepstation serve: MLflow's scoring protocol over HTTP. Tiny runs trained once per module; servers in this
process on free ports; every bad request a 4xx with one line of JSON naming the field, and the next request served."""
from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import cli, image_task, table_task, user_error, wait_until

TOKEN = "s3cret-token-for-tests"


# -- fixtures ----------------------------------------------------------------------------------------------------

def _table(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 120
    x1, x2 = rng.normal(size=n), rng.uniform(0, 5, size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    price = 10 + 3 * x1 + x2 + rng.normal(scale=0.1, size=n)
    path = folder / "table.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "price": price}).to_csv(path, index=False)
    return path


def _images(folder: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir()
    rows = []
    for i in range(60):
        Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8)).save(folder / f"{i:03d}.png")
        rows.append({"path": f"{i:03d}.png", "label": int(digits.target[i])})
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A table run (number output) and an image run (category output), one epoch each, untracked."""
    from deepstation.run import train

    root = tmp_path_factory.mktemp("serve")
    table = train(table_task(_table(root), epochs=1), runs_dir=root / "runs", track=False)
    images = _images(root / "images")
    image = train(image_task(images / "index.csv", epochs=1), runs_dir=root / "runs", track=False)
    return {"table": table, "image": image, "images": images, "root": root}


class Served:
    def __init__(self, model, **options):
        from deepstation.serve.http import Server, Service

        self.log: list[str] = []
        self.service = Service(model, log=self.log.append, **options)
        self.server = Server(self.service, "127.0.0.1", 0)
        self.server.start()
        self.port = self.server.port

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def request(self, method="GET", path="/ping", body=b"", headers=None, content_type=None):
        if isinstance(body, (dict, list)):
            body, content_type = json.dumps(body).encode(), content_type or "application/json"
        headers = dict(headers or {})
        if content_type:
            headers["Content-Type"] = content_type
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def predict(self, payload, **kw):
        status, body = self.request("POST", "/invocations", payload, **kw)
        assert status == 200, body
        return json.loads(body)["predictions"]

    def raw(self, data: bytes) -> tuple[int, bytes]:
        """Bytes as sent, for requests http.client will not make; (status, body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(data)
            received = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        return int(head.split()[1]), body


@pytest.fixture(scope="module")
def table_server(runs):
    with Served(runs["table"], max_rows=50, max_body_mb=1) as served:
        yield served


@pytest.fixture(scope="module")
def image_server(runs):
    with Served(runs["image"], allowed=[runs["images"]]) as served:
        yield served


class FakeAudioModel:
    """An audio task with a stand-in predict: the protocol's checks, without training a speech model."""

    def __init__(self):
        from deepstation.config import load_task

        self.task = load_task({"name": "speech", "data": {"source": "x.csv"},
                               "inputs": [{"name": "audio", "type": "audio", "column": "path"}],
                               "outputs": [{"name": "text", "type": "sequence", "column": "text"}]})

    def predict(self, frame):
        from deepstation.data.audio import AudioCodec

        codec = AudioCodec(self.task.inputs[0])
        lengths = [len(codec._decode(v, Path.cwd())) for v in frame["path"]]
        return frame.assign(text_pred=[f"{n} samples" for n in lengths])


@pytest.fixture(scope="module")
def audio_server():
    with Served(FakeAudioModel()) as served:
        yield served


def _png(seed=0) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(seed).random((8, 8)) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _broken_pixels() -> bytes:
    """A PNG whose chunks and checksums are sound but whose pixels do not inflate: refused only by decoding."""
    import struct
    import zlib

    png = _png()
    at = png.index(b"IDAT") - 4
    size = struct.unpack(">I", png[at:at + 4])[0]
    data = b"\x78\x9c" + b"\xff" * (size - 2)
    chunk = struct.pack(">I", size) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    return png[:at] + chunk + png[at + 12 + size:]


def _wav(seconds=0.1, rate=16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.sin(np.arange(int(rate * seconds)) / 5) * 8000).astype("<i2").tobytes())
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _multipart(fields: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    boundary = "deepstation-test-boundary"
    parts = []
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


ROW = {"x1": 0.5, "x2": 1.0, "colour": "red"}


# -- good requests -------------------------------------------------------------------------------------------------

def test_every_json_orientation_gives_the_same_predictions(table_server, runs):
    rows = [ROW, {"x1": -1.0, "x2": 3.0, "colour": "blue"}]
    expected = runs["table"].predict(pd.DataFrame(rows))["price_pred"].tolist()
    records = table_server.predict({"dataframe_records": rows})
    split = table_server.predict({"dataframe_split": {"columns": list(ROW), "data": [list(r.values()) for r in rows]}})
    instances = table_server.predict({"instances": rows})
    columns = table_server.predict({"inputs": {c: [r[c] for r in rows] for c in ROW}})
    csv = table_server.predict(pd.DataFrame(rows).to_csv(index=False).encode(), content_type="text/csv")
    for answer in (records, split, instances, columns, csv):
        assert [list(p) for p in answer] == [["price_pred"]] * 2
        assert [p["price_pred"] for p in answer] == pytest.approx(expected, rel=1e-5)


def test_ping_version_docs_openapi(table_server, runs):
    assert table_server.request("GET", "/ping")[0] == 200
    status, body = table_server.request("GET", "/version")
    version = json.loads(body)
    assert status == 200 and version["model"] == {"run": runs["table"].id, "task": "tiny", "kind": "Run"}
    status, body = table_server.request("GET", "/openapi.json")
    spec = json.loads(body)
    assert status == 200 and spec["openapi"].startswith("3.")
    assert set(spec["components"]["schemas"]["Row"]["required"]) == {"x1", "x2", "colour"}
    assert b"openapi.json" in table_server.request("GET", "/docs")[1]


def test_images_as_base64_arrays_multipart_and_allowed_paths(image_server, runs):
    png = (runs["images"] / "007.png").read_bytes()
    expected = runs["image"].predict(pd.DataFrame({"path": [str(runs["images"] / "007.png")]}))
    digit = expected["digit_pred"].iloc[0]
    by_b64 = image_server.predict({"dataframe_records": [{"path": _b64(png)}]})
    by_url = image_server.predict({"instances": [f"data:image/png;base64,{_b64(png)}"]})
    by_obj = image_server.predict({"instances": [{"path": {"b64": _b64(png)}}]})
    by_path = image_server.predict({"instances": ["007.png"]})
    pixels = (np.asarray(__import__("PIL.Image").Image.open(io.BytesIO(png))) / 255.0).tolist()
    by_array = image_server.predict({"instances": [pixels]})
    body, kind = _multipart([("path", "7.png", png), ("path", "8.png", png)])
    by_upload = image_server.predict(body, content_type=kind)
    for answer in (by_b64, by_url, by_obj, by_path, by_array, by_upload[:1]):
        assert answer[0]["digit_pred"] == digit
        assert answer[0]["digit_prob"] == pytest.approx(float(expected["digit_prob"].iloc[0]), abs=1e-4)
    assert len(by_upload) == 2


def test_audio_bytes_reach_the_codec(audio_server):
    body, kind = _multipart([("audio", "a.wav", _wav(0.1))])
    assert audio_server.predict(body, content_type=kind) == [{"text_pred": "1600 samples"}]
    assert audio_server.predict({"instances": [_b64(_wav(0.2, rate=8000))]}) == [{"text_pred": "3200 samples"}]


def test_concurrent_requests_share_forward_passes(runs):
    with Served(runs["table"], max_batch=64, max_wait_ms=50) as served:
        barrier, answers = threading.Barrier(16), []

        def client(i):
            barrier.wait()
            answers.append(served.predict({"dataframe_records": [{**ROW, "x1": i / 10}]})[0]["price_pred"])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        expected = runs["table"].predict(pd.DataFrame([{**ROW, "x1": i / 10} for i in range(16)]))["price_pred"]
        assert sorted(answers) == pytest.approx(sorted(expected.tolist()), rel=1e-5)
        metrics = served.request("GET", "/metrics")[1].decode()
        passes = int(re.search(r"^deepstation_batch_rows_count (\d+)$", metrics, re.M).group(1))
        assert _metric(metrics, "deepstation_batch_rows_sum") == 16 and passes < 16, metrics


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    """A monthly series forecast 3 steps ahead from 12 months (one epoch): a request is one series' history."""
    from deepstation.run import train

    root = tmp_path_factory.mktemp("forecast")
    t = np.arange(60)
    pd.DataFrame({"month": pd.date_range("2001-01-01", periods=60, freq="MS").strftime("%Y-%m-%d"),
                  "sales": 100 + t + 10 * np.sin(2 * np.pi * t / 12)}).to_csv(root / "sales.csv", index=False)
    task = {"name": "sales", "data": {"source": str(root / "sales.csv"), "split": {"valid": 0}},
            "inputs": [{"name": "history", "type": "series", "columns": ["sales"], "date": "month", "window": 12}],
            "outputs": [{"name": "next", "type": "number", "column": "sales", "horizon": 3}],
            "model": {"encoders": {"history": {"kind": "mlp", "width": 8, "depth": 1}}},
            "trainer": {"epochs": 1, "batch_size": 8, "device": "cpu", "seed": 0}}
    return train(task, runs_dir=root / "runs", track=False), pd.read_csv(root / "sales.csv")


class Gated:
    """A model whose passes wait for `gate`, counted: `entered`, and what each was given (rows of a frame, or frames
    of a list)."""

    def __init__(self, model):
        self.model, self.task, self.gate = model, model.task, threading.Event()
        self.entered, self.passes = 0, []

    def predict(self, data, **options):
        self.entered += 1
        assert self.gate.wait(30)
        self.passes.append(len(data))
        return self.model.predict(data, **options)


def _while_busy(run, first: dict, others: dict) -> tuple[Gated, dict, str]:
    """Requests (JSON bodies) sent while the model is busy with `first` (its pass waits at the gate until the others
    have queued up, so that they share the next pass). Returns the model, {name: (status, body)} and the server's
    /metrics text."""
    model = Gated(run)
    with Served(model, max_wait_ms=5000) as served:
        answers = {}

        def send(name, body):
            answers[name] = served.request("POST", "/invocations", body)

        threads = [threading.Thread(target=send, args=item) for item in [("first", first), *others.items()]]
        threads[0].start()
        wait_until(lambda: model.entered == 1)
        for t in threads[1:]:
            t.start()
        wait_until(lambda: served.service.active == len(threads))
        model.gate.set()
        for t in threads:
            t.join(30)
        return model, answers, served.request("GET", "/metrics")[1].decode()


def _history(rows: pd.DataFrame) -> dict:
    return {"dataframe_split": {"columns": ["month", "sales"], "data": rows.values.tolist()}}


def test_concurrent_forecasts_of_different_series_share_one_pass(forecast_run):
    """Two histories (no id column) that wait together: answered by one pass of a list of two frames, each answer
    as the run gives it for that history alone."""
    run, sales = forecast_run
    histories = {"long": sales, "doubled": sales.iloc[:40].assign(sales=lambda f: 2 * f["sales"])}
    model, answers, metrics = _while_busy(run, _history(sales.iloc[:30]),
                                          {name: _history(rows) for name, rows in histories.items()})
    assert model.passes == [1, 2]
    assert _metric(metrics, "deepstation_batch_rows_sum") == 3  # series per pass: 1, then 2
    assert _metric(metrics, "deepstation_batch_rows_count") == 2
    found = {}
    for name, history in histories.items():
        status, body = answers[name]
        assert status == 200, body
        found[name] = json.loads(body)["predictions"]
        alone = run.predict(history.reset_index(drop=True))
        assert [a["date"][:10] for a in found[name]] == alone["date"].dt.strftime("%Y-%m-%d").tolist()
        assert [a["forecast"] for a in found[name]] == pytest.approx(alone["forecast"].tolist(), rel=1e-5)
    assert found["long"] != found["doubled"]


def test_a_too_short_series_in_a_batch_fails_only_its_request(forecast_run):
    run, sales = forecast_run
    model, answers, _ = _while_busy(run, _history(sales), {"good": _history(sales.iloc[:20]),
                                                           "short": _history(sales.iloc[:5])})
    assert model.passes == [1, 2, 1, 1]  # the pass of two fails, then each runs alone
    assert answers["first"][0] == answers["good"][0] == 200
    _check_refusal("short series", *answers["short"], 400, "has 5 points")


def _metric(text: str, name: str) -> float:
    return float(re.search(rf"^{re.escape(name)} (\S+)$", text, re.M).group(1))


def test_metrics_count_requests_errors_and_latency(runs):
    with Served(runs["table"], max_body_mb=1) as served:
        for _ in range(3):
            served.predict({"instances": [ROW]})
        served.request("POST", "/invocations", {"instances": [{"x1": 1}]})
        served.request("GET", "/nowhere")
        served.request("POST", "/invocations", b"0" * (2 << 20), content_type="application/json")  # refused unread
        text = served.request("GET", "/metrics")[1].decode()
        assert _metric(text, 'deepstation_requests_total{route="/invocations",code="200"}') == 3
        assert _metric(text, 'deepstation_requests_total{route="/invocations",code="400"}') == 1
        assert _metric(text, 'deepstation_requests_total{route="other",code="404"}') == 1
        assert _metric(text, 'deepstation_requests_total{route="/invocations",code="413"}') == 1
        assert _metric(text, "deepstation_errors_total") == 3
        assert _metric(text, "deepstation_request_seconds_count") == 5
        assert _metric(text, 'deepstation_request_seconds_bucket{le="+Inf"}') == 5
        assert "# TYPE deepstation_batch_rows histogram" in text


# -- bad requests --------------------------------------------------------------------------------------------------

def _table_bad(s: Served):
    big = b'{"instances": [' + b'{"x1": 1, "x2": 2, "colour": "red"}, ' * 40000 + b"{}]}"  # over --max-body-mb 1
    many = {"dataframe_records": [ROW] * 51}
    post = lambda body, **kw: s.request("POST", "/invocations", body, **kw)  # noqa: E731
    return {
        "no body": (lambda: post(b"", content_type="application/json"), 400, "body"),
        "invalid json": (lambda: post(b'{"instances": [', content_type="application/json"), 400, "JSON"),
        "wrong content type": (lambda: post(b"x1=1", content_type="text/plain"), 415, "Content-Type"),
        "no content type": (lambda: post(b'{"instances": []}'), 415, "Content-Type"),
        "missing column": (lambda: post({"dataframe_records": [{"x1": 1, "colour": "red"}]}), 400, "`x2`"),
        "text in a number column": (lambda: post({"instances": [{**ROW, "x1": "abc"}]}), 400, "`x1`"),
        "null in a number column": (lambda: post({"instances": [{**ROW, "x2": None}]}), 400, "`x2`"),
        "NaN in a number column": (lambda: post(b'{"instances": [{"x1": NaN, "x2": 1, "colour": "red"}]}',
                                                content_type="application/json"), 400, "`x1`"),
        "bool in a number column": (lambda: post({"instances": [{**ROW, "x1": True}]}), 400, "`x1`"),
        "list in a category column": (lambda: post({"instances": [{**ROW, "colour": [1]}]}), 400, "`colour`"),
        "json nested too deeply": (lambda: post(b"[" * 100000 + b"]" * 100000, content_type="application/json"),
                                   400, "JSON"),
        "not utf-8": (lambda: post(b'{"instances": ["\xff\xfe"]}', content_type="application/json"), 400, "JSON"),
        "no rows": (lambda: post({"dataframe_records": []}), 400, "rows"),
        "unknown format": (lambda: post({"rows": [ROW]}), 400, "dataframe_split"),
        "two formats": (lambda: post({"instances": [ROW], "dataframe_records": [ROW]}), 400, "one of"),
        "json array": (lambda: post([ROW]), 400, "JSON object"),
        "records not objects": (lambda: post({"dataframe_records": [[1, 2, "red"]]}), 400, "dataframe_records"),
        "split row too short": (lambda: post({"dataframe_split": {"columns": ["x1", "x2", "colour"], "data": [[1]]}}),
                                400, "dataframe_split.data[0]"),
        "split without columns": (lambda: post({"dataframe_split": {"data": [[1, 2, "red"]]}}), 400,
                                  "dataframe_split"),
        "bare values for three columns": (lambda: post({"instances": [1, 2]}), 400, "instances"),
        "ragged columns": (lambda: post({"inputs": {"x1": [1, 2], "x2": [1], "colour": ["a", "b"]}}), 400, "inputs"),
        "too many rows": (lambda: post(many), 413, "--max-rows"),
        "body over the limit": (lambda: post(big, content_type="application/json"), 413, "--max-body-mb"),
        "50 MB body": (lambda: post(b"0" * (50 * 1024 * 1024), content_type="application/json"), 413, "--max-body-mb"),
        "50 MB announced, not sent": (lambda: s.raw(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                                    b"application/json\r\nContent-Length: 52428800\r\n\r\n{"),
                                      413, "--max-body-mb"),
        "50 MB chunked": (lambda: s.raw(b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                        b"Content-Type: application/json\r\n\r\n" +
                                        (b"100000\r\n" + b"0" * 0x100000 + b"\r\n") * 50 + b"0\r\n\r\n"),
                          413, "--max-body-mb"),
        "bad chunk size": (lambda: s.raw(b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                         b"\r\nzz\r\n"), 400, "chunk"),
        "bad content length": (lambda: s.raw(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n"),
                               400, "Content-Length"),
        "garbage request line": (lambda: s.raw(b"HELLO\r\n\r\n"), 400, "request"),
        "unknown route": (lambda: s.request("GET", "/predict"), 404, "/predict"),
        "wrong method": (lambda: s.request("GET", "/invocations"), 405, "POST"),
        "delete": (lambda: s.request("DELETE", "/ping"), 405, "GET"),
        "unreadable csv": (lambda: post(b'"a\n', content_type="text/csv"), 400, "CSV"),
        "csv without the columns": (lambda: post(b"a,b\n1,2\n", content_type="text/csv"), 400, "`x1`"),
    }


def _image_bad(s: Served, runs):
    png = _png()
    broken = png[:20] + b"\x00" * 8 + png[28:]
    post = lambda body, **kw: s.request("POST", "/invocations", body, **kw)  # noqa: E731
    outside = runs["root"] / "outside.png"
    outside.write_bytes(png)
    escape = os.path.relpath(outside, runs["images"])
    link = runs["images"] / "link.png"
    if not link.is_symlink():
        link.symlink_to(outside)
    upload_text, text_kind = _multipart([("path", None, b"hello")])
    upload_junk, junk_kind = _multipart([("path", "x.png", b"not an image at all")])
    return {
        "corrupt png in base64": (lambda: post({"instances": [_b64(broken)]}), 400, "`path`, row 1"),
        "text in base64": (lambda: post({"instances": [_b64(b"just some text, no image")]}), 400, "`path`"),
        "bad data url": (lambda: post({"instances": ["data:image/png;base64,!!!!"]}), 400, "base64"),
        "empty b64 object": (lambda: post({"instances": [{"path": {"b64": ""}}]}), 400, "`path`"),
        "absolute path outside": (lambda: post({"instances": ["/etc/passwd"]}), 400, "outside the allowed"),
        "relative path escaping": (lambda: post({"instances": [escape]}), 400, "outside the allowed"),
        "link inside pointing outside": (lambda: post({"instances": ["link.png"]}), 400, "outside the allowed"),
        "NUL in a path": (lambda: post({"instances": ["a\u0000.png"]}), 400, "no usable path"),
        "missing file inside": (lambda: post({"instances": ["999.png"]}), 400, "no such file"),
        "number for an image": (lambda: post({"instances": [{"path": 3}]}), 400, "`path`"),
        "ragged pixels": (lambda: post({"instances": [[[0.1, 0.2], [0.3]]]}), 400, "`path`"),
        "pixels of one row": (lambda: post({"instances": [[0.1, 0.2, 0.3]]}), 400, "HEIGHT x WIDTH"),
        "multipart without a file": (lambda: post(upload_text, content_type=text_kind), 400, "no file"),
        "multipart junk file": (lambda: post(upload_junk, content_type=junk_kind), 400, "`path`, row 1"),
        "multipart without boundary": (lambda: post(b"--x--", content_type="multipart/form-data"), 400, "boundary"),
    }


def _audio_bad(s: Served):
    wav = _wav()
    corrupt = wav[:12] + b"\xff" * 24 + wav[36:]
    post = lambda body, **kw: s.request("POST", "/invocations", body, **kw)  # noqa: E731
    return {
        "corrupt wav in base64": (lambda: post({"instances": [_b64(corrupt)]}), 400, "`path`, row 1"),
        "png for a sound": (lambda: post({"instances": [_b64(_png())]}), 400, "sound file"),
        "path with no folder allowed": (lambda: post({"instances": ["a.wav"]}), 400, "--allow-dir"),
        "pixels for a sound": (lambda: post({"instances": [[[0.1]]]}), 400, "`path`"),
    }


def _check_refusal(name, status, body, want_status, want_text):
    assert status == want_status, f"{name}: {status} {body[:300]!r}"
    assert 400 <= status < 500, name
    assert body.endswith(b"\n") and body.count(b"\n") == 1, f"{name}: {body!r}"
    answer = json.loads(body)
    assert list(answer) == ["error"] and isinstance(answer["error"], str), name
    assert want_text in answer["error"], f"{name}: {answer['error']}"
    assert "Traceback" not in answer["error"] and 'File "' not in answer["error"], name


def test_bad_requests_are_refused_with_one_json_line_and_the_next_is_served(table_server, image_server,
                                                                           audio_server, runs):
    cases = [(table_server, _table_bad(table_server)), (image_server, _image_bad(image_server, runs)),
             (audio_server, _audio_bad(audio_server))]
    good = {table_server: {"instances": [ROW]}, image_server: {"instances": [_b64(_png())]},
            audio_server: {"instances": [_b64(_wav())]}}
    names = [name for _, table in cases for name in table]
    assert len(set(names)) == len(names) >= 40
    for server, table in cases:
        for name, (send, want_status, want_text) in table.items():
            status, body = send()
            _check_refusal(name, status, body, want_status, want_text)
            assert len(server.predict(good[server])) == 1, f"not served after {name}"


def test_a_bad_row_in_a_batch_fails_only_its_request(runs):
    """Two requests in one pass, one with a value the codec refuses only when it decodes: the other is served."""
    image = {"instances": [_b64(_png())]}
    model, results, _ = _while_busy(runs["image"], image, {"good": image,
                                                           "bad": {"instances": [_b64(_broken_pixels())]}})
    assert model.passes == [1, 2, 1, 1]  # the pass of both fails, then each runs alone
    assert results["first"][0] == results["good"][0] == 200
    _check_refusal("broken pixels", *results["bad"], 400, "column `path`")
    message = json.loads(results["bad"][1])["error"]
    assert "cannot decode image" in message and "row 1 of the request" in message, message


# -- security ----------------------------------------------------------------------------------------------------

def test_token_is_required_compared_and_never_logged(runs):
    with Served(runs["table"], token=TOKEN) as served:
        body = {"instances": [ROW]}
        for headers, why in (({}, "missing"), ({"Authorization": "Bearer wrong"}, "wrong"),
                             ({"Authorization": f"Basic {TOKEN}"}, "wrong"),
                             ({"Authorization": TOKEN}, "wrong")):
            status, answer = served.request("POST", "/invocations", body, headers=headers)
            _check_refusal(f"token {why}", status, answer, 401, why)
        assert served.request("GET", "/metrics")[0] == 401
        assert served.request("GET", "/ping")[0] == 200  # health checks carry no token
        status, answer = served.request("POST", "/invocations", body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and "price_pred" in json.loads(answer)["predictions"][0]
        assert served.log and not any(TOKEN in line or "Authorization" in line for line in served.log)


def test_another_host_needs_a_token_or_insecure(runs, monkeypatch):
    monkeypatch.delenv("DEEPSTATION_SERVE_TOKEN", raising=False)
    line = user_error(cli("serve", runs["table"].dir, "--host", "0.0.0.0"))
    assert "--host 0.0.0.0" in line and "--token" in line and "--insecure" in line
    line = user_error(cli("serve", runs["table"].dir, "--ray-address", "auto"))
    assert "--replicas" in line
    line = user_error(cli("serve", runs["table"].dir, "--allow-dir", "nowhere"))
    assert "--allow-dir nowhere" in line
    line = user_error(cli("serve", "--port", "0"))
    assert "--onnx" in line


def test_help_has_an_example_and_the_server_loads_only_in_serve():
    result = cli("serve", "--help", check=0)
    assert "example:" in result.stdout and "deepstation serve runs/" in result.stdout
    code = ("import sys; from deepstation.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('deepstation.serve', 'torch', 'pandas', 'ray'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- the command ---------------------------------------------------------------------------------------------------

def test_sigterm_finishes_the_request_in_flight_and_exits_0(runs, tmp_path):
    err = tmp_path / "stderr.txt"
    with open(err, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "deepstation", "serve", str(runs["table"].dir), "--port",
                                    "0"], stderr=stderr, stdout=subprocess.DEVNULL,
                                   env={**os.environ, "DEEPSTATION_SERVE_TOKEN": ""})
    try:
        line = wait_until(lambda: re.search(r"serving .* on http://127\.0\.0\.1:(\d+)", err.read_text()),
                          what="the serving line")
        port = int(line.group(1))
        body = json.dumps({"instances": [ROW]}).encode()
        request = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body))
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(request + body)  # a first request: the connection is accepted and served
        assert _response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(request + body[:10])  # the next one in flight: half its body sent
        process.send_signal(signal.SIGTERM)
        sock.sendall(body[10:])
        answer = _response(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer, answer
        assert b"price_pred" in answer
        assert process.wait(timeout=30) == 0
        assert "stopped" in err.read_text() and "Traceback" not in err.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _response(sock) -> bytes:
    """One whole response from a keep-alive connection."""
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def _length(answer: bytes) -> int:
    found = re.search(rb"Content-Length: (\d+)", answer)
    return int(found.group(1)) if found else 0


# -- frames (shared with the pyfunc model) -----------------------------------------------------------------------

def test_request_frame_checks_columns_and_decodes_files(runs, tmp_path):
    from deepstation.serve.frames import RequestError, Upload, request_frame

    task = runs["image"].task
    frame = request_frame(task, pd.DataFrame({"path": [_b64(_png()), _png()]}))
    assert all(isinstance(v, Upload) for v in frame["path"]) and "bytes" in repr(frame["path"][0])
    with pytest.raises(RequestError, match=r"column `path`: missing from the request; expected columns path"):
        request_frame(task, pd.DataFrame({"image": [1]}))
    (tmp_path / "a.png").write_bytes(_png())
    assert request_frame(task, pd.DataFrame({"path": ["a.png"]}), [tmp_path])["path"][0] == str(tmp_path / "a.png")
    with pytest.raises(RequestError, match="refused"):
        request_frame(task, pd.DataFrame({"path": [str(tmp_path / "a.png")]}))


def test_codecs_decode_file_bytes():
    from deepstation.config import load_task
    from deepstation.data.audio import AudioCodec
    from deepstation.data.image import ImageCodec
    from deepstation.data.sources import Table
    from deepstation.errors import DeepstationError

    task = load_task(image_task("x.csv"))
    codec = ImageCodec(task.inputs[0])
    assert codec._decode(_png(), Path.cwd()).shape == (1, 8, 8)
    with pytest.raises(DeepstationError, match=r"cannot decode image \(cannot identify image file; row 1 of t\)"):
        codec.read(Table(pd.DataFrame({"path": [b"junk"]}), "t", Path.cwd()))
    audio = AudioCodec(FakeAudioModel().task.inputs[0])
    assert audio._decode(_wav(0.1), Path.cwd()).shape == (1600,)


# -- Ray Serve -----------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_ray_serve_replicas_speak_the_same_protocol(runs, tmp_path):
    pytest.importorskip("ray.serve")
    err = tmp_path / "stderr.txt"
    with open(err, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "deepstation", "serve", str(runs["table"].dir), "--port",
                                    "0", "--replicas", "2", "--max-rows", "5"], stderr=stderr,
                                   stdout=subprocess.DEVNULL, env={**os.environ, "DEEPSTATION_SERVE_TOKEN": TOKEN})
    try:
        serving = r"serving .* on http://127\.0\.0\.1:(\d+) with 2 Ray Serve"
        line = wait_until(lambda: re.search(serving, err.read_text()) or process.poll() is not None, timeout=300,
                          what="Ray Serve")
        assert process.poll() is None, err.read_text()
        port, auth = int(line.group(1)), {"Authorization": f"Bearer {TOKEN}"}

        def request(method, path, body=b"", headers=None):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if isinstance(body, dict):
                body, headers = json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()

        expected = runs["table"].predict(pd.DataFrame([ROW]))["price_pred"].iloc[0]
        for _ in range(8):
            status, body = request("POST", "/invocations", {"dataframe_records": [ROW]}, auth)
            assert status == 200 and json.loads(body)["predictions"][0]["price_pred"] == pytest.approx(expected)
        _check_refusal("ray: missing token", *request("POST", "/invocations", {"instances": [ROW]}), 401, "missing")
        _check_refusal("ray: missing column", *request("POST", "/invocations", {"instances": [{"x1": 1}]}, auth),
                       400, "`x2`")
        _check_refusal("ray: too many rows", *request("POST", "/invocations", {"instances": [ROW] * 6}, auth),
                       413, "--max-rows")
        _check_refusal("ray: unknown route", *request("GET", "/nope", headers=auth), 404, "/nope")
        status, body = request("GET", "/version", headers=auth)
        assert status == 200 and json.loads(body)["model"]["run"] == runs["table"].id
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0, err.read_text()
        assert "stopped" in err.read_text() and TOKEN not in err.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
