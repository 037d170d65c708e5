"""`deepstation serve`: MLflow's scoring protocol over HTTP, on the standard library.

    GET  /ping           200 while the model is loaded
    GET  /version        deepstation's version and the model (run, task)
    POST /invocations    JSON (dataframe_split, dataframe_records, instances, inputs), CSV, or multipart files
    GET  /metrics        Prometheus text: requests, errors, latency and batch-size histograms
    GET  /openapi.json   an OpenAPI 3 document of the above, from the task's inputs and outputs; /docs links it

`Service.handle(method, path, headers, body)` is the whole protocol, shared by the threaded server below and the
Ray Serve replicas (serve/ray.py). Requests' rows go through one `Batcher` thread, which runs one forward pass for
the rows of every request waiting (up to max_batch rows, a series each for a forecast's requests, waiting at most
max_wait_ms for more while other requests are on their way). Every refused request is a 4xx with one line of JSON,
{"error": "..."}, naming the field.
"""
from __future__ import annotations

import hmac
import json
import math
import os
import queue
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from deepstation.errors import DeepstationError
from deepstation.serve.frames import RequestError, columns_frame, input_columns, parse_body, request_columns

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JSON = "application/json"
ROUTES = {"/ping": "GET", "/version": "GET", "/invocations": "POST", "/metrics": "GET", "/openapi.json": "GET",
          "/docs": "GET", "/health": "GET"}
OPEN = {"/ping", "/health"}  # answered without a token: load balancers' health checks carry none
PHRASES = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 411: "Length Required", 413: "Content Too Large", 415: "Unsupported Media Type",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


def digest(token: str) -> bytes:
    import hashlib

    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def error_body(message: str) -> bytes:
    return (json.dumps({"error": " ".join(str(message).split())}) + "\n").encode()


class Service:
    """The protocol around one model (a Run, or anything with .predict(frame) and .task; for a task whose rows are
    time steps of series, .predict(list of frames) too: one frame a request, answered in one pass; for a forecast,
    .predict(list of frames, as_columns=True): answers as {column: values})."""

    def __init__(self, model, *, token: str | None = None, max_batch: int = 64, max_wait_ms: float = 2.0,
                 max_body_mb: float = 10.0, max_rows: int = 1000, allowed=None, log=None,
                 token_digest: bytes | None = None):
        self.model, self.task = model, model.task
        # only the token's SHA-256 is kept (and sent to Ray replicas): the token itself is in no object or log
        self._token = token_digest or (digest(token) if token else None)
        self.max_body, self.max_rows = int(max_body_mb * 1024 * 1024), max_rows
        self.allowed = [Path(a) for a in allowed or []]
        self.log = log  # a callable taking one access-log line, or None
        self.metrics = Metrics(max_batch)
        self.active = 0  # /invocations requests inside handle(): the batcher waits for more only while there are
        self._lock = threading.Lock()
        self.batcher = Batcher(model.predict, max_batch, max_wait_ms / 1000, self, self.metrics)

    def close(self) -> None:
        self.batcher.close()

    def warm(self) -> bool:
        """Answer one request made up from what the model's codecs learned (pyfunc's input example) before the
        server says it is ready: the first request would otherwise pay for imports and first allocations (seconds,
        for a forecast on ONNX Runtime). Past the token check, not counted in /metrics. False when the model gives
        no example or the request fails (said on stderr: the server starts all the same)."""
        from deepstation.serve.examples import example_frame

        codecs = getattr(self.model, "codecs", None)
        try:
            frame = example_frame(self.task, codecs) if codecs is not None else None
            if frame is None:
                return False
            body = json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}})
            self._invocations({"content-type": JSON}, body.encode())
            return True
        except Exception as err:  # a bug, not a request: said in the log, and the server still starts
            print(f"warning: the warm-up request failed ({' '.join(str(err).split()) or type(err).__name__}); the "
                  f"first request will be slower", file=sys.stderr)
            return False
        finally:
            self.metrics = self.batcher._metrics = Metrics(self.batcher.max_batch)

    # -- the protocol --
    def check_length(self, path: str, headers: dict) -> tuple | None:
        """A response refusing the body by its declared length (before reading it), or None."""
        length = headers.get("content-length")
        if length is None:
            return None
        if not length.strip().isdigit():
            return self.refuse(path, 400, f"Content-Length: expected a whole number of bytes, got {length!r}")
        if int(length) > self.max_body:
            return self.refuse(path, 413, f"body: {int(length)} bytes is over the limit of {self.max_body} bytes "
                                          f"(--max-body-mb); send fewer rows per request")
        return None

    def refuse(self, path: str, status: int, message: str) -> tuple[int, dict, bytes]:
        """A response refusing a request before handle() (its body unread), counted in the metrics."""
        self._count(path, status, 0.0)
        return status, {"Content-Type": JSON}, error_body(message)

    def _count(self, path: str, status: int, seconds: float) -> None:
        route = path.split("?", 1)[0]
        self.metrics.request(route if route in ROUTES else "other", status, seconds)

    def handle(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        """One request: (status, response headers, body). `headers` has lower-case names. Never raises."""
        began = time.perf_counter()
        route = path.split("?", 1)[0]
        try:
            status, out_headers, out = self._route(method, route, headers, body)
        except RequestError as err:
            status, out_headers, out = err.status, {"Content-Type": JSON}, error_body(str(err))
        except Exception:  # a bug, not the request: the traceback goes to the server's log, never to the client
            traceback.print_exc(file=sys.stderr)
            status, out_headers, out = 500, {"Content-Type": JSON}, error_body("internal error; see the server's log")
        if status == 401:
            out_headers["WWW-Authenticate"] = 'Bearer realm="deepstation"'
        self._count(route, status, time.perf_counter() - began)
        return status, out_headers, out

    def _route(self, method, route, headers, body):
        if route not in OPEN and not self._authorised(headers.get("authorization")):
            given = "authorization" in headers
            raise RequestError("Authorization: " + ("wrong bearer token" if given else "missing; send the header "
                               "Authorization: Bearer TOKEN"), status=401)
        if route not in ROUTES:
            shown = route if len(route) <= 100 else route[:97] + "..."
            raise RequestError(f"path {shown!r}: no such route; the routes are {', '.join(sorted(ROUTES))}",
                               status=404)
        if method != ROUTES[route]:
            raise RequestError(f"method {method}: {route} takes {ROUTES[route]}", status=405)
        if route == "/invocations":
            return self._invocations(headers, body)
        if route in ("/ping", "/health"):
            return 200, {"Content-Type": JSON}, b'{"status": "ok"}\n'
        if route == "/version":
            return 200, {"Content-Type": JSON}, json.dumps(self.version()).encode() + b"\n"
        if route == "/metrics":
            return 200, {"Content-Type": "text/plain; version=0.0.4"}, self.metrics.text().encode()
        if route == "/openapi.json":
            return 200, {"Content-Type": JSON}, json.dumps(openapi(self.task, self.version())).encode()
        return 200, {"Content-Type": "text/html; charset=utf-8"}, DOCS.encode()

    def _authorised(self, header: str | None) -> bool:
        if self._token is None:
            return True
        scheme, _, given = (header or "").partition(" ")
        # compared in constant time (digests of equal length), whatever the header holds
        return hmac.compare_digest(digest(given.strip()), self._token) and scheme.lower() == "bearer"

    def _invocations(self, headers, body):
        with self._lock:
            self.active += 1
        try:
            if len(body) > self.max_body:
                raise RequestError(f"body: {len(body)} bytes is over the limit of {self.max_body} bytes "
                                   f"(--max-body-mb)", status=413)
            columns, rows = parse_body(headers.get("content-type", ""), body, self.task)
            if rows > self.max_rows:
                raise RequestError(f"body: {rows} rows is over the limit of {self.max_rows} rows per request "
                                   f"(--max-rows); split the request", status=413)
            result = self.batcher.predict(request_columns(self.task, columns, rows, self.allowed), rows)
        finally:
            with self._lock:
                self.active -= 1
        return 200, {"Content-Type": JSON}, json.dumps({"predictions": records(result)}).encode() + b"\n"

    def version(self) -> dict:
        from deepstation import __version__

        run = getattr(self.model, "id", None) or getattr(self.model, "path", None)
        return {"deepstation": __version__, "model": {"run": str(run) if run else None, "task": self.task.name,
                                                      "kind": type(self.model).__name__},
                "process": os.getpid()}  # which worker answered, with --workers


class Batcher:
    """One thread running the model: each pass takes the rows of every request waiting, up to max_batch rows."""

    def __init__(self, predict, max_batch: int, max_wait: float, service, metrics):
        self._predict, self.max_batch, self.max_wait = predict, max_batch, max_wait
        self._service, self._metrics, self._task = service, metrics, service.task
        # rows that are time steps (a forecast's history, series in long format) are gathered into series, and the
        # answer has rows of its own (series x steps): such requests go to the model as a list of frames, each read
        # alone, in one pass; a request counts as many rows as it has series (one without an id column)
        gathered = [i for i in self._task.inputs if i.type == "series" and (i.window or getattr(i, "id", None))]
        self.gathered, self._id = bool(gathered), gathered[0].id if gathered else None
        self._forecast = any(i.window for i in gathered)  # answered as columns: no DataFrame per request
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="deepstation-batcher", daemon=True)
        self._thread.start()

    def predict(self, columns: dict[str, list], rows: int) -> dict[str, list]:
        """The prediction columns for one request's checked input columns (frames.request_columns)."""
        if self.gathered:
            rows = len(set(map(str, columns[self._id]))) if self._id else 1
        job = _Job(columns, rows)
        self._queue.put(job)
        job.done.acquire()  # released by the batcher thread
        if job.error is not None:
            raise job.error
        return job.result

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        carry = None
        while True:
            job = carry or self._queue.get()
            carry = None
            if job is None:
                return
            batch, rows = [job], job.rows
            deadline = time.perf_counter() + self.max_wait
            while rows < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    left = deadline - time.perf_counter()
                    if left <= 0 or self._service.active <= len(batch):  # no other request on its way: go now
                        break
                    try:
                        job = self._queue.get(timeout=left)
                    except queue.Empty:
                        break
                if job is None:
                    self._queue.put(None)  # seen again after this batch
                    break
                if rows + job.rows > self.max_batch:
                    carry = job
                    break
                batch.append(job)
                rows += job.rows
            self._run(batch, rows)

    def _run(self, batch: list, rows: int) -> None:
        self._metrics.batch(rows)
        try:
            if self._forecast:
                results = self._predict([columns_frame(job.columns, self._task) for job in batch], as_columns=True)
            elif self.gathered:
                results = self._predict([columns_frame(job.columns, self._task) for job in batch])
            else:
                columns = batch[0].columns if len(batch) == 1 else \
                    {c: [v for job in batch for v in job.columns[c]] for c in batch[0].columns}
                result = self._predict(columns_frame(columns, self._task))
        except Exception as err:
            if len(batch) > 1:  # one request's bad value fails the pass: run each alone, so only it is refused
                for job in batch:
                    self._run([job], job.rows)
                return
            batch[0].fail(err)
            return
        if self.gathered:
            from deepstation.run import without_blobs

            for job, result in zip(batch, results):
                job.finish(_columns(result, list(result) if self._forecast else without_blobs(result).columns))
            return
        # plain lists from here: slicing them costs nothing, unlike a DataFrame's
        outputs = _columns(result, [c for c in result.columns if c not in columns])
        start = 0
        for job in batch:
            end = start + job.rows
            job.finish({c: values[start:end] for c, values in outputs.items()})
            start = end


class _Job:
    __slots__ = ("columns", "rows", "done", "result", "error")

    def __init__(self, columns: dict, rows: int):
        self.columns, self.rows, self.result, self.error = columns, rows, None, None
        self.done = threading.Lock()  # held until the batcher thread has an answer: cheaper than an Event
        self.done.acquire()

    def finish(self, result) -> None:
        self.result = result
        self.done.release()

    def fail(self, err: Exception) -> None:
        if isinstance(err, DeepstationError) and not isinstance(err, RequestError):
            err = RequestError(_reword(str(err)))
        elif not isinstance(err, DeepstationError):
            traceback.print_exception(err, file=sys.stderr)
        self.error = err
        self.done.release()


def _reword(message: str) -> str:
    """A codec's message about a table file, said of a request."""
    for advice in ("; fix or remove it, or set data.on_bad_sample: skip", "; fix or drop that row"):
        message = message.replace(advice, "")
    message = message.replace(" of data)", " of the request)")
    return message[len("data: "):] if message.startswith("data: ") else message


def _columns(frame, names) -> dict[str, list]:
    """{column: its values as JSON-ready Python objects}; NaN and infinity as null. `frame`: a DataFrame, or a
    forecast's {column: values}."""
    import numpy as np

    found = {}
    for name in names:
        values = np.asarray(frame[name])
        if values.dtype.kind == "f":
            values = np.where(np.isfinite(values), values, np.nan).astype(object)
            found[str(name)] = [None if v != v else v for v in values.tolist()]
        elif values.dtype.kind in "biu":
            found[str(name)] = values.tolist()
        elif values.dtype.kind == "M":  # a forecast's dates, as ISO 8601 text
            found[str(name)] = [None if v is None else v.isoformat() for v in values.astype("datetime64[us]").tolist()]
        else:
            found[str(name)] = [_plain(v) for v in values.tolist()]
    return found


def _plain(value):
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    if hasattr(value, "isoformat"):  # dates of a forecast
        return value.isoformat()
    return str(value)  # anything else without a JSON form


def records(columns: dict[str, list]) -> list[dict]:
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]


class Metrics:
    """Counters and histograms, rendered in Prometheus' text format."""

    def __init__(self, max_batch: int):
        self._lock = threading.Lock()
        self.requests: dict[tuple, int] = {}
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.batch_buckets = tuple(b for b in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if b < max_batch) + \
            (max_batch,)
        self.batches = [0] * (len(self.batch_buckets) + 1)
        self.batch_sum = 0

    def request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (route, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            if route == "/invocations":
                self.latency[_bucket(LATENCY_BUCKETS, seconds)] += 1
                self.latency_sum += seconds

    def batch(self, rows: int) -> None:
        with self._lock:
            self.batches[_bucket(self.batch_buckets, rows)] += 1
            self.batch_sum += rows

    def text(self) -> str:
        with self._lock:
            lines = ["# HELP deepstation_requests_total Requests answered, by route and status code.",
                     "# TYPE deepstation_requests_total counter"]
            lines += [f'deepstation_requests_total{{route="{r}",code="{c}"}} {n}'
                      for (r, c), n in sorted(self.requests.items())]
            errors = sum(n for (_, c), n in self.requests.items() if c >= 400)
            lines += ["# HELP deepstation_errors_total Requests answered with a 4xx or 5xx status.",
                      "# TYPE deepstation_errors_total counter", f"deepstation_errors_total {errors}"]
            lines += _histogram("deepstation_request_seconds", "Time to answer /invocations, in seconds.",
                                LATENCY_BUCKETS, self.latency, self.latency_sum)
            lines += _histogram("deepstation_batch_rows", "Rows per forward pass (batched requests).",
                                self.batch_buckets, self.batches, self.batch_sum)
        return "\n".join(lines) + "\n"


def _bucket(bounds, value) -> int:
    for i, bound in enumerate(bounds):
        if value <= bound:
            return i
    return len(bounds)


def _histogram(name, help_, bounds, counts, total) -> list[str]:
    lines, running = [f"# HELP {name} {help_}", f"# TYPE {name} histogram"], 0
    for bound, count in zip(bounds, counts):
        running += count
        lines.append(f'{name}_bucket{{le="{bound:g}"}} {running}')
    running += counts[-1]
    lines += [f'{name}_bucket{{le="+Inf"}} {running}', f"{name}_sum {total:.6g}", f"{name}_count {running}"]
    return lines


def openapi(task, version: dict) -> dict:
    """An OpenAPI 3 document of the scoring protocol, with the task's own columns."""
    kinds = {"number": {"type": "number"}, "category": {"type": ["string", "number"]},
             "key": {"type": ["string", "number"]},
             "image": {"type": ["string", "array"], "description": "the file's bytes in base64 (PNG, JPEG, ...), "
                       "or HEIGHT x WIDTH numbers"},
             "audio": {"type": "string", "description": "the file's bytes in base64 (WAV, FLAC, OGG, ...)"},
             "series": {"type": ["number", "array"]}}
    row = {"type": "object", "required": list(input_columns(task)),
           "properties": {c: kinds[k] for c, k in input_columns(task).items()}}
    outputs = {}
    for out in task.outputs:
        outputs[f"{out.name}_pred"] = {"type": "string" if out.type == "sequence" else "number"
                                       if out.type == "number" else ["string", "number"]}
        if out.type == "category":
            outputs[f"{out.name}_prob"] = {"type": "number"}
    error = {"type": "object", "properties": {"error": {"type": "string"}}}
    refused = {"description": "refused: the error names the field",
               "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
    request = {"oneOf": [
        {"type": "object", "properties": {"dataframe_records": {"type": "array", "items": row}}},
        {"type": "object", "properties": {"dataframe_split": {"type": "object", "properties": {
            "columns": {"type": "array", "items": {"type": "string"}}, "data": {"type": "array"}}}}},
        {"type": "object", "properties": {"instances": {"type": "array"}}},
        {"type": "object", "properties": {"inputs": {"type": "array"}}}]}
    media = [c for c, k in input_columns(task).items() if k in ("image", "audio")]
    bodies = {JSON: {"schema": request}, "text/csv": {"schema": {"type": "string"}}}
    if media:
        bodies["multipart/form-data"] = {"schema": {"type": "object", "properties": {
            c: {"type": "string", "format": "binary"} for c in media}}}
    simple = {"200": {"description": "OK"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"deepstation: {task.name}", "version": version["deepstation"],
                 "description": "MLflow's scoring protocol for one deepstation model."},
        "components": {"schemas": {"Row": row, "Error": error},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/invocations": {"post": {"summary": "predict", "requestBody": {"required": True, "content": bodies},
                                      "responses": {"200": {"description": "one prediction per row", "content": {
                                          JSON: {"schema": {"type": "object", "properties": {"predictions": {
                                              "type": "array", "items": {"type": "object",
                                                                         "properties": outputs}}}}}}},
                                                    "400": refused, "401": refused, "413": refused,
                                                    "415": refused}}},
            "/ping": {"get": {"summary": "health", "responses": simple}},
            "/version": {"get": {"summary": "deepstation's version and the model", "responses": simple}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": simple}},
        },
    }


DOCS = """<!doctype html><meta charset="utf-8"><title>deepstation serve</title>
<h1>deepstation serve</h1>
<p>MLflow's scoring protocol: <code>POST /invocations</code> with <code>dataframe_records</code>,
<code>dataframe_split</code>, <code>instances</code> or <code>inputs</code> (JSON), CSV, or files as
<code>multipart/form-data</code>. The <a href="openapi.json">OpenAPI document</a> lists this model's columns;
<a href="version">version</a>, <a href="metrics">metrics</a>.</p>
"""


# -- the threaded server ------------------------------------------------------------------------------------------

class Server(ThreadingHTTPServer):
    """A thread per connection (HTTP/1.1 keep-alive); stop() lets requests in flight finish."""

    daemon_threads = True  # idle keep-alive connections do not hold the exit; stop() waits for busy ones
    request_queue_size = 128

    def __init__(self, service: Service, host: str = "127.0.0.1", port: int = 0, sock=None):
        """Listening on host:port, or on `sock`, a listening socket shared with other workers (serve/workers.py)."""
        self.service, self.stopping, self.busy = service, False, 0
        self._busy_lock = threading.Condition()
        if ":" in host or sock is not None and sock.family == socket.AF_INET6:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler, bind_and_activate=sock is None)
        if sock is not None:
            self.socket.close()
            self.socket, self.server_address = sock, sock.getsockname()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> threading.Thread:
        """Serve on a thread (tests, notebooks); stop() ends it."""
        thread = threading.Thread(target=self.serve_forever, name="deepstation-serve", daemon=True)
        thread.start()
        return thread

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, let requests in flight finish (at most `timeout` seconds), stop the model's thread."""
        self.stopping = True
        self.shutdown()
        with self._busy_lock:
            self._busy_lock.wait_for(lambda: self.busy == 0, timeout=timeout)
        self.server_close()
        self.service.close()

    def enter(self) -> None:
        with self._busy_lock:
            self.busy += 1

    def leave(self) -> None:
        with self._busy_lock:
            self.busy -= 1
            self._busy_lock.notify_all()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "deepstation"
    timeout = 60  # a client that stops sending mid-request frees its thread after this many seconds

    def setup(self):
        import socket

        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def do_HEAD(self):
        self._serve(head=True)

    def handle_expect_100(self):
        refused = self.server.service.check_length(self.path, _lower(self.headers))
        if refused is not None:  # curl asks before sending a big body: refuse it unsent
            self._send(*refused, close=True)
            self._log(refused[0], len(refused[2]), time.perf_counter())
            self._discard(_lower(self.headers), seconds=1.0)
            return False
        return super().handle_expect_100()

    def _serve(self, head: bool = False) -> None:
        server, began = self.server, time.perf_counter()
        server.enter()
        try:
            headers = _lower(self.headers)
            refused = server.service.check_length(self.path, headers)
            if refused is None:
                body, refused = self._body(headers)
            if refused is not None:  # the body is left unread: the connection cannot carry another request
                status, out_headers, out = refused
                close = True
            else:
                status, out_headers, out = server.service.handle(self.command, self.path, headers, body)
                close = server.stopping  # a request on a connection open before SIGTERM is served, and the last
            self._send(status, out_headers, b"" if head else out, close=close)
            if refused is not None:
                self._discard(headers)
        finally:
            server.leave()
        self._log(status, len(out), began)

    def _log(self, status: int, size: int, began: float) -> None:
        log = self.server.service.log
        if log is not None:  # the path without its query; never a header (tokens live there)
            log(f'{self.client_address[0]} "{self.command} {self.path.split("?", 1)[0][:200]}" {status} {size} '
                f'{1000 * (time.perf_counter() - began):.1f}ms')

    def _body(self, headers: dict):
        service = self.server.service
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline(1026)
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    return None, service.refuse(self.path, 400, "Transfer-Encoding: chunked body with a bad chunk size")
                if size == 0:
                    while self.rfile.readline(1026) not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks), None
                total += size
                if total > service.max_body:
                    return None, service.refuse(self.path, 413, f"body: over the limit of {service.max_body} bytes "
                                                                f"(--max-body-mb); send fewer rows per request")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = int(headers.get("content-length") or 0)
        return (self.rfile.read(length) if length else b""), None

    def _discard(self, headers: dict, seconds: float = 5.0, most: int = 256 * 1024 * 1024) -> None:
        """After refusing a body unread: read and drop what the client still sends (a bounded time and amount),
        so that it sees the refusal rather than a reset connection."""
        import socket

        declared = headers.get("content-length", "")
        left = min(int(declared), most) if declared.strip().isdigit() else most
        deadline = time.monotonic() + seconds
        try:
            self.connection.shutdown(socket.SHUT_WR)
            while left > 0 and time.monotonic() < deadline:
                self.connection.settimeout(max(deadline - time.monotonic(), 0.01))
                chunk = self.rfile.read1(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _send(self, status: int, headers: dict, body: bytes, close: bool = False) -> None:
        head = [f"HTTP/1.1 {status} {PHRASES.get(status, 'Error')}", f"Content-Length: {len(body)}",
                *(f"{k}: {v}" for k, v in headers.items())]
        if close or self.close_connection:
            head.append("Connection: close")
            self.close_connection = True
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)  # one write: no Nagle stall

    def send_error(self, code, message=None, explain=None):
        """The standard library's own refusals (a bad request line, headers too long) as JSON too."""
        self.close_connection = True
        if code >= 500:  # 501: a method no do_X handles
            code = 405
        self._send(code, {"Content-Type": JSON}, error_body(f"{message or PHRASES.get(code, 'bad request')}"),
                   close=True)

    def log_message(self, format, *args):  # the access line is written by _serve, without headers
        pass


def _lower(headers) -> dict:
    return {k.lower(): v for k, v in headers.items()}
