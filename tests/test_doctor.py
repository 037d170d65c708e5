"""deepstation doctor: the check registry and its runner (time limits, child processes), each check, the GPU paths on
a CPU machine with torch.cuda mocked, and the command line."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest

from conftest import cli, last_json, user_error
from deepstation.workstation import checks, gpuspecs
from deepstation.workstation.checks import Context, gpu
from deepstation.workstation.doctor import diagnose, in_child, session_members

ROW_KEYS = {"name", "status", "detail", "measured", "fix", "seconds"}


def rows(report) -> dict:
    return {r["name"]: r for r in report["checks"]}


# --- the spec table -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device_name, card", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"),
    ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200 SXM"),
    ("NVIDIA A100-SXM4-80GB", "A100 80GB SXM"),
    ("NVIDIA A100-SXM4-40GB", "A100 40GB SXM"),
    ("NVIDIA A100-PCIE-40GB", "A100 40GB PCIe"),
    ("NVIDIA A100 80GB PCIe", "A100 80GB PCIe"),
    ("NVIDIA L4", "L4"),
    ("NVIDIA L40S", "L40S"),
    ("Tesla T4", "T4"),
    ("Tesla V100-SXM2-16GB", "V100 SXM2"),
    ("Tesla V100-PCIE-32GB", "V100 PCIe"),
    ("Tesla P100-PCIE-16GB", "P100 PCIe 16GB"),
    ("Tesla K80", "K80 (one of its two GPUs)"),
    ("NVIDIA GeForce RTX 4090", "GeForce RTX 4090"),
    ("NVIDIA GeForce RTX 3090", "GeForce RTX 3090"),
    ("NVIDIA GeForce RTX 3090 Ti", "GeForce RTX 3090 Ti"),
    ("NVIDIA GeForce RTX 3080", "GeForce RTX 3080"),
])
def test_spec_lookup(device_name, card):
    assert gpuspecs.lookup(device_name).card == card


@pytest.mark.parametrize("device_name", ["Z100", "NVIDIA GeForce RTX 3080 Laptop GPU", "NVIDIA A10G", "NVIDIA T400"])
def test_spec_lookup_unknown(device_name):
    assert gpuspecs.lookup(device_name) is None


def test_spec_rows_are_complete():
    for spec in gpuspecs.SPECS:
        assert spec.fp32 > 0 and spec.bandwidth > 0 and spec.source.startswith("https://"), spec
        if spec.tf32:  # TF32 tensor cores (Ampere+) come with bf16 at twice the rate or more
            assert spec.tensor16 >= 2 * spec.tf32 * 0.98, spec


# --- GPU paths, torch.cuda mocked ------------------------------------------------------------------------------------

@pytest.fixture
def fake_gpus():
    """A function that makes torch.cuda report the named GPUs; the device work is injected (`rates`: the fraction of
    the card's peak each matmul reaches, or an exception to raise, per GPU index)."""
    import torch

    with ExitStack() as stack:
        def install(names, major=9, rates=None, allreduce=None):
            rates = rates or {}

            def props(i):
                return SimpleNamespace(major=major, minor=0, total_memory=80 * 2**30, name=names[i])

            def matmul(device, kind, n, seconds):
                got = rates.get(device.index, 0.8)
                if isinstance(got, BaseException):
                    raise got
                spec = gpuspecs.lookup(names[device.index])
                peak = {"fp32": spec.fp32, "tf32": spec.tf32, "bf16": spec.tensor16, "fp16": spec.tensor16}[kind] \
                    if spec else 100.0
                share = got.get(kind, 0.8) if isinstance(got, dict) else got
                return share * peak * 1e12

            for target, value in [("is_available", lambda: True), ("device_count", lambda: len(names)),
                                  ("get_device_name", lambda i=0: names[i]), ("get_device_properties", props),
                                  ("mem_get_info", lambda i=0: (70 * 2**30, 80 * 2**30)),
                                  ("get_arch_list", lambda: ["sm_70", "sm_80", "sm_90"])]:
                stack.enter_context(mock.patch.object(torch.cuda, target, side_effect=value))
            stack.enter_context(mock.patch.object(gpu, "train_step", return_value=(1.25, True)))
            stack.enter_context(mock.patch.object(gpu, "time_matmul", side_effect=matmul))
            stack.enter_context(mock.patch.object(gpu, "host_to_device", return_value=25e9))
            stack.enter_context(mock.patch.object(gpu, "device_copy", return_value=2.8e12))
            stack.enter_context(mock.patch.object(gpu, "driver_version", return_value="560.35.03"))
            stack.enter_context(mock.patch.object(gpu, "allreduce", side_effect=allreduce or (
                lambda count, mib: {"correct": True, "seconds": 0.01, "busbw_gbs": 180.0})))
        yield install


def test_gpu_reports_card_and_fraction_of_peak(fake_gpus):
    fake_gpus(["NVIDIA H100 80GB HBM3"])
    [row] = gpu.gpus(Context(quick=True))
    assert row["name"] == "gpu:0" and row["status"] == "ok", row
    m = row["measured"]
    assert m["card"] == "H100 SXM" and m["driver"] == "560.35.03" and m["memory_gib"] == 80
    assert set(m["tflops"]) == {"fp32", "tf32", "bf16"} and m["step"]["precision"] == "bf16"
    assert m["fraction"]["bf16"] == pytest.approx(0.8, abs=0.01)
    assert m["h2d_gbs"] == 25.0 and "H100 SXM" in row["detail"]


def test_gpu_below_half_of_peak_warns(fake_gpus):
    fake_gpus(["NVIDIA H200"], rates={0: {"bf16": 0.3}})
    [row] = gpu.gpus(Context())
    assert row["status"] == "warn", row
    assert row["measured"]["fraction"]["bf16"] == pytest.approx(0.3, abs=0.01)
    assert "throttling" in row["fix"]


def test_gpu_older_card_uses_fp16_and_no_tf32(fake_gpus):
    fake_gpus(["Tesla T4"], major=7)
    [row] = gpu.gpus(Context(quick=True))
    assert row["status"] == "ok", row
    assert set(row["measured"]["tflops"]) == {"fp32", "fp16"} and row["measured"]["step"]["precision"] == "fp16"


def test_gpu_unknown_card_says_so(fake_gpus):
    fake_gpus(["Z100"])
    [row] = gpu.gpus(Context(quick=True))
    assert row["status"] == "ok" and "unknown card" in row["detail"] and "Z100" in row["detail"]
    assert row["measured"]["card"] is None


def test_gpu_too_old_for_this_torch_fails(fake_gpus):
    fake_gpus(["Tesla K80"], major=3)
    [row] = gpu.gpus(Context(quick=True))
    assert row["status"] == "fail" and "older than this torch build supports" in row["detail"]


def test_gpu_that_raises_mid_check_fails_and_the_others_still_run(fake_gpus):
    fake_gpus(["NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB"],
              rates={1: RuntimeError("CUDA error: an illegal memory access was encountered\nmore text")})
    report = diagnose(quick=True, only=["gpu", "memory"], isolate=False)
    got = rows(report)
    assert got["gpu:0"]["status"] == "ok"
    assert got["gpu:1"]["status"] == "fail"
    assert got["gpu:1"]["detail"] == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert got["gpu:1"]["fix"] and got["nccl"]["status"] == "ok" and got["memory"]["status"] == "ok"
    assert report["ok"] is False


def test_nccl_failure_is_its_own_row(fake_gpus):
    def broken(count, mib):
        raise RuntimeError("NCCL error: unhandled system error")

    fake_gpus(["NVIDIA H100 80GB HBM3"] * 2, allreduce=broken)
    got = {r["name"]: r for r in gpu.gpus(Context(quick=True))}
    assert got["gpu:0"]["status"] == got["gpu:1"]["status"] == "ok"
    assert got["nccl"]["status"] == "fail" and "NCCL error" in got["nccl"]["detail"]


def test_no_gpu_skips():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    [row] = diagnose(only=["gpu"])["checks"]
    assert row["status"] == "skip" and row["detail"].startswith("no CUDA GPU")


# --- the runner -----------------------------------------------------------------------------------------------------

def test_a_hanging_check_is_cut_at_its_limit(monkeypatch):
    release = threading.Event()
    checks.load_all()
    monkeypatch.setitem(checks.REGISTRY, "hang", checks.Check("hang", "hang", lambda ctx: release.wait(60), 0.5, 0.5,
                                                              "unhang it"))
    began = time.perf_counter()
    try:
        report = diagnose(quick=True, only=["hang", "memory"])
    finally:
        release.set()
    assert time.perf_counter() - began < 5
    got = rows(report)
    assert got["hang"]["status"] == "fail" and got["hang"]["detail"] == "timed out after 0.5 s"
    assert got["hang"]["fix"] == "unhang it" and got["memory"]["status"] == "ok" and report["ok"] is False


def test_a_check_that_raises_fails_with_its_reason(monkeypatch):
    def broken(ctx):
        raise OSError("disk on fire")

    checks.load_all()
    monkeypatch.setitem(checks.REGISTRY, "broken", checks.Check("broken", "broken", broken, 5, 5, "put it out"))
    [row] = diagnose(only=["broken"])["checks"]
    assert row["status"] == "fail" and row["detail"] == "OSError: disk on fire" and row["fix"] == "put it out"


def test_a_child_process_check_is_killed_at_its_limit():
    import subprocess

    started, real = [], subprocess.Popen

    def spy(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    began = time.perf_counter()
    with mock.patch("deepstation.workstation.doctor.subprocess.Popen", side_effect=spy):
        [row] = in_child("torch-cpu", Context(timeout=0.3), 0.3, "fix")  # importing torch alone takes longer
    assert row["status"] == "fail" and row["detail"] == "timed out after 0.3 s"
    assert time.perf_counter() - began < 5
    assert started[0].returncode is not None and session_members(started[0].pid) == []


def test_a_child_process_check_reports_its_rows():
    [row] = in_child("memory", Context(timeout=30), 30, "fix")
    assert row["status"] == "ok" and row["measured"]["total_gib"] > 0


def test_session_members_sees_a_process_and_its_children():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"],
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(session_members(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(session_members(proc.pid)) == 2
    finally:
        from deepstation.workstation.doctor import kill_session

        kill_session(proc.pid)
        proc.wait()
    deadline = time.monotonic() + 5
    while session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_members(proc.pid) == []


def test_only_accepts_check_and_module_names():
    names = [r["name"] for r in diagnose(quick=True, only=["disk", "system"])["checks"]]
    assert names == ["disk", "memory"]


def test_only_unknown_name_is_a_user_error():
    line = user_error(cli("doctor", "--only", "gpus,sql"))
    assert "`gpus`" in line and "Did you mean `gpu`?" in line


# --- the checks -----------------------------------------------------------------------------------------------------

def test_stack_compares_with_constraints(tmp_path):
    import torch

    pins = tmp_path / "constraints.txt"
    pins.write_text(f"# pinned\ntorch=={torch.__version__.split('+')[0]}\nrich==0.0.1\n"
                    f"no-such-package-here==1.0 ; python_version >= '3'\nPyYAML[extra]=={_v('pyyaml')}\n")
    [row] = diagnose(only=["stack"], constraints=pins)["checks"]
    assert row["status"] == "warn"
    m = row["measured"]
    assert m["pinned"] == 4 and m["matching"] == 2  # torch 2.13.0 matches 2.13.0+cpu
    assert m["differ"]["rich"]["pinned"] == "0.0.1" and m["missing"] == ["no-such-package-here"]


def test_stack_skips_without_constraints(monkeypatch):
    from deepstation.workstation.checks import python

    monkeypatch.setattr(python, "find_constraints", lambda: None)
    [row] = diagnose(only=["stack"])["checks"]
    assert row["status"] == "skip" and "--constraints" in row["detail"]


def test_stack_missing_constraints_file_fails(tmp_path):
    [row] = diagnose(only=["stack"], constraints=tmp_path / "nope.txt")["checks"]
    assert row["status"] == "fail" and "no such file" in row["detail"]


def test_sql_round_trip_creates_no_store(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPSTATION_TRACKING_URI", raising=False)  # the default: mlflow.db in the working folder
    [row] = diagnose(only=["sql"])["checks"]
    assert row["status"] == "ok", row
    assert row["measured"]["dialect"] == "sqlite" and row["measured"]["round_trip_ms"] > 0
    assert list(tmp_path.iterdir()) == []  # neither mlflow.db nor the scratch file is left


def test_sql_round_trip_leaves_an_existing_store_untouched(tmp_path, monkeypatch):
    db = tmp_path / "store.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER)")
        conn.execute("INSERT INTO runs VALUES (1)")
    schema = sqlite3.connect(db).execute("SELECT sql FROM sqlite_master").fetchall()
    monkeypatch.setenv("DEEPSTATION_TRACKING_URI", f"sqlite:///{db}")
    [row] = diagnose(only=["sql"])["checks"]
    assert row["status"] == "ok" and not row["measured"]["note"]
    assert sqlite3.connect(db).execute("SELECT sql FROM sqlite_master").fetchall() == schema


def test_sql_round_trip_on_postgresql(postgres_db, monkeypatch):
    from sqlalchemy import create_engine, inspect

    engine = create_engine(postgres_db)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE runs (id INTEGER)")
    monkeypatch.setenv("DEEPSTATION_TRACKING_URI", postgres_db)
    [row] = diagnose(only=["sql"])["checks"]
    assert row["status"] == "ok", row
    assert row["measured"]["dialect"] == "postgresql" and "***@" in row["measured"]["uri"]
    password = postgres_db.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in json.dumps(row)
    assert inspect(engine).get_table_names() == ["runs"]  # the probe's table was temporary and rolled back
    engine.dispose()


def test_unreachable_database_fails_masked_and_the_others_run(monkeypatch):
    monkeypatch.setenv("DEEPSTATION_TRACKING_URI", "postgresql://u:s3cretpw@127.0.0.1:1/x")
    report = diagnose(only=["sql", "memory"])
    got = rows(report)
    assert got["sql"]["status"] == "fail" and got["sql"]["fix"]
    assert "postgresql://u:***@127.0.0.1:1/x" in got["sql"]["detail"]
    assert "s3cretpw" not in json.dumps(report)
    assert got["memory"]["status"] == "ok" and report["ok"] is False


def test_mlflow_server_health(monkeypatch):
    import http.server

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"OK" if self.path == "/health" else b"no"
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)  # a free port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DEEPSTATION_TRACKING_URI", f"http://127.0.0.1:{server.server_port}")
        [row] = diagnose(only=["sql"])["checks"]
    finally:
        server.shutdown()
        server.server_close()
    assert row["status"] == "ok" and row["measured"]["body"] == "OK"


def test_r_kernel_skips_without_r():
    with mock.patch("deepstation.workstation.checks.jupyter.shutil.which", return_value=None):
        [row] = diagnose(only=["jupyter-r"])["checks"]
    assert row["status"] == "skip" and row["detail"] == "R is not installed" and "setup-r" in row["fix"]


@pytest.mark.skipif(shutil.which("R") is None, reason="R is not installed (make setup-r)")
def test_r_kernel_runs_a_cell():
    [row] = diagnose(only=["jupyter-r"])["checks"]
    assert row["status"] == "ok", row
    assert row["measured"]["result"] == "[1] 2"


def test_python_kernel_runs_a_cell():
    pytest.importorskip("ipykernel")
    [row] = diagnose(only=["jupyter-python"])["checks"]
    assert row["status"] == "ok", row
    assert row["measured"]["result"] == "2" and row["measured"]["torch"]


def test_quick_skips_the_slow_checks():
    got = rows(diagnose(quick=True, only=["jupyter", "ray"]))
    assert {r["status"] for r in got.values()} == {"skip"} and set(got) == {"jupyter-python", "jupyter-r", "ray"}


@pytest.mark.slow
def test_ray_check_leaves_nothing_behind():
    pytest.importorskip("ray")
    watched = [Path("/tmp/ray"), Path.home() / ".ray"]
    before = {p: _tree(p) for p in watched}
    [row] = diagnose(only=["ray"])["checks"]
    assert row["status"] == "ok", row
    temp = row["measured"]["temp_dir"]
    assert len(temp) < 40 and not Path(temp).exists() and row["measured"]["left_processes"] == []
    assert not [pid for pid in _pids() if temp in _cmdline(pid)]  # no raylet, gcs_server or worker of ours
    assert {p: _tree(p) for p in watched} == before  # nothing written under /tmp/ray or ~/.ray


# --- the command line -----------------------------------------------------------------------------------------------

def test_doctor_quick_json_shape_and_exit_code():
    result = cli("doctor", "--quick", "--json")
    report = last_json(result.stdout)
    assert set(report) == {"checks", "ok", "seconds"}
    assert result.returncode == (0 if report["ok"] else 1), result.stderr
    names = [r["name"] for r in report["checks"]]
    assert names[:3] == ["python", "stack", "torch-cpu"] and {"gpu", "sql", "disk", "memory"} <= set(names)
    for row in report["checks"]:
        assert set(row) == ROW_KEYS and row["status"] in ("ok", "warn", "fail", "skip")
        assert row["status"] != "fail" or row["fix"]
    assert rows(report)["torch-cpu"]["measured"]["matmul_gflops"] > 0
    assert "doctor" in result.stderr  # the table goes to stderr under --json


def test_doctor_exit_code_is_1_when_a_check_fails():
    result = cli("doctor", "--only", "sql", env={"DEEPSTATION_TRACKING_URI": "postgresql://u:pw@127.0.0.1:1/x"})
    assert result.returncode == 1
    assert "fail" in result.stdout and "fix:" in result.stdout and ":pw@" not in result.stdout


def test_doctor_missing_constraints_file_is_a_user_error():
    assert "no such file" in user_error(cli("doctor", "--only", "stack", "--constraints", "nope.txt"))


def test_doctor_help_has_an_example():
    out = cli("doctor", "--help").stdout
    assert "example:\n  deepstation doctor" in out and "--quick" in out


# --- helpers --------------------------------------------------------------------------------------------------------

def _v(name):
    from importlib import metadata

    return metadata.version(name)


def _tree(path: Path):
    if not path.exists():
        return None
    return sorted((str(p), p.stat().st_mtime) for p in path.rglob("*") if not p.is_symlink())


def _pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
