"""`deepstation serve ... --workers N`: N processes answering on one listening socket.

One process answers HTTP and runs its model's Python (reading requests, windowing a forecast's history, writing the
answer) under one interpreter lock, so on a machine of several cores it is held to about one core of Python
whatever the model costs. With --workers N, the parent binds the socket and starts N worker processes (spawned:
nothing of the parent's threads or torch state is forked), each with its own copy of the model, its own batcher and
its own /metrics, taking connections from the shared socket as the kernel hands them out. SIGTERM or SIGINT to the
parent stops every worker the way one server stops (requests in flight finish); a worker that dies stops them all,
and a worker whose parent is gone stops itself.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import socket
import sys
import threading

from deepstation.errors import DeepstationError


def listen(host: str, port: int) -> socket.socket:
    """The listening socket the workers share (non-blocking: a worker that loses the race for a connection goes
    back to waiting instead of blocking in accept)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise DeepstationError(f"--host {host} --port {port}: cannot listen ({err.strerror or err}); choose another "
                               f"port, or 0 for a free one") from None
    sock.setblocking(False)
    return sock


def serve(sock: socket.socket, workers: int, load: dict, options: dict, quiet: bool, banner: str) -> int:
    """Run `workers` processes on `sock` until SIGTERM or SIGINT (0), or until one of them dies (1); `banner` is
    said once every worker is ready. Raises when the model cannot be loaded. `load`: load_model's arguments;
    `options`: Service's."""
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    stop = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(i, sock, load, options, quiet, ready, stop, os.getpid()),
                         name=f"deepstation-worker-{i}", daemon=False) for i in range(workers)]
    # a signal sets a thread Event, never the processes' one: its lock may be held right then by the same thread
    halt = threading.Event()
    before = {signum: signal.signal(signum, lambda *_: halt.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _run(procs, ready, stop, halt, banner)
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        sock.close()


def _run(procs: list, ready, stop, halt: threading.Event, banner: str) -> int:
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers start with Ctrl-C ignored, as they keep it
    try:
        for proc in procs:
            proc.start()
    finally:
        signal.signal(signal.SIGINT, handler)
    failed = refused = None
    started = 0
    while started < len(procs) and not halt.is_set() and failed is None:
        try:
            index, error = ready.get(timeout=0.5)
        except queue.Empty:
            dead = next((p for p in procs if p.exitcode is not None), None)
            failed = f"{dead.name} exited with {dead.exitcode} while loading the model" if dead else None
            continue
        if error:  # the model cannot be loaded (the same in every worker): said as it is
            failed = refused = error
        started += 1
    if failed is None and not halt.is_set():
        print(banner, file=sys.stderr, flush=True)
    while failed is None and not halt.wait(0.5):
        dead = next((p for p in procs if p.exitcode is not None), None)
        if dead is not None:
            failed = f"{dead.name} exited with {dead.exitcode}"
    stop.set()
    for proc in procs:
        proc.join(timeout=60)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
    if refused is not None:
        raise DeepstationError(refused)
    if failed is not None and not halt.is_set():
        print(f"error: serve --workers: {failed}; the other workers were stopped", file=sys.stderr, flush=True)
        return 1
    return 0


def _worker(index: int, sock: socket.socket, load: dict, options: dict, quiet: bool, ready, stop, parent: int) -> None:
    from deepstation.cli.serve import load_model
    from deepstation.serve.http import Server, Service

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    halt = threading.Event()  # SIGTERM to a worker alone (a process manager's) stops it too
    signal.signal(signal.SIGTERM, lambda *_: halt.set())
    try:
        model = load_model(**load)
    except DeepstationError as err:
        ready.put((index, str(err)))
        return
    log = None if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    service = Service(model, log=log, **options)
    service.warm()
    server = Server(service, sock=sock)
    server.start()
    ready.put((index, None))
    while not halt.wait(0.5) and not stop.is_set() and os.getppid() == parent:  # a killed parent ends it too
        pass
    server.stop()
