"""deepstation lab: JupyterLab on 127.0.0.1 behind a fresh token, the deepstation kernel, the seed notebooks,
and a clean stop that leaves no process behind."""
from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import cli, user_error
from deepstation.workstation import kernel, lab

pytest.importorskip("jupyterlab", reason="deepstation lab needs JupyterLab: pip install 'deepstation[lab]'")


@pytest.fixture
def jupyter_home(tmp_path, monkeypatch) -> Path:
    """Jupyter's and IPython's per-user folders under tmp_path, so a test leaves nothing in the real home. The
    kernelspec lives in sys.prefix, which Jupyter searches whatever these say."""
    home = tmp_path / "home"
    for var, sub in {"HOME": "", "JUPYTER_RUNTIME_DIR": "runtime", "JUPYTER_CONFIG_DIR": "config",
                     "JUPYTER_DATA_DIR": "data", "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
                     "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces", "IPYTHONDIR": "ipython",
                     "MPLCONFIGDIR": "matplotlib"}.items():
        (home / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("JUPYTER_TOKEN", raising=False)
    return home


def _lines(stream) -> queue.Queue:
    """The stream's lines, read in a thread, so the test can wait for one with a timeout."""
    found: queue.Queue = queue.Queue()

    def pump():
        with stream:  # closed at end of file, when the process has exited
            for line in stream:
                found.put(line.rstrip("\n"))
        found.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return found


def _wait_for_url(lines: queue.Queue, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        assert line is not None, "deepstation lab exited before printing its URL"
        if line.startswith("http://"):
            return line
    raise AssertionError("no URL within the timeout")


def _get(url: str, token: str | None = None, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"token {token}"} if token else {}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, headers=headers, method=method, data=data)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # not via a $http_proxy
    try:
        with direct.open(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, {}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _mentioning(text: str) -> list[int]:
    """Live processes whose command line holds `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_text() and _alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie, waiting for init to reap it, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return any(_alive(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit() and _pgid(int(p.name)) == group)


def _pgid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def _listening_addresses(port: int) -> set[str]:
    """The local addresses listening on `port`, from /proc/net/tcp and tcp6 (hex, as the kernel writes them)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the lab's processes")
@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_the_lab_serves_behind_a_token_and_stops_leaving_nothing(jupyter_home, tmp_path, stop_with):
    port = lab.free_port()
    with open(tmp_path / "lab.err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "deepstation", "lab", "--no-browser", "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=err, text=True, cwd=tmp_path)
    try:
        url = _wait_for_url(_lines(proc.stdout))
        base, token = url.split("/lab?token=")
        assert base == f"http://127.0.0.1:{port}" and len(token) == 48
        assert _get(f"{base}/api/status", token)[0] == 200
        assert _get(f"{base}/api/status")[0] == 403  # jupyter_server refuses the API without the token
        assert _get(f"{base}/api/status", "not-the-token")[0] == 403
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1 and nothing else
        specs = _get(f"{base}/api/kernelspecs", token)[1]
        assert specs["default"] == "deepstation" and "deepstation" in specs["kernelspecs"]
        assert {p.name for p in (tmp_path / "notebooks").iterdir()} == set(lab.shipped_notebooks())

        [server] = _children(proc.pid)
        assert _pgid(server) == server  # its own process group
        code, started = _get(f"{base}/api/kernels", token, "POST", {"name": "deepstation"})
        assert code == 201 and started["name"] == "deepstation"
        kernels = [p for p in _children(server) if "ipykernel" in Path(f"/proc/{p}/cmdline").read_text()]
        assert kernels, "the kernel did not start"

        proc.send_signal(stop_with)
        assert proc.wait(timeout=30) == 0
    except BaseException:
        for pid in _mentioning(str(tmp_path)):  # the server (its root_dir) and kernels (their runtime files)
            os.kill(pid, signal.SIGKILL)
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10  # the group's last members may take a moment to be reaped
    while (_group_alive(server) or any(map(_alive, kernels))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(server), "a process of the lab's group outlived it"
    assert not any(map(_alive, kernels)), "a kernel outlived the lab"
    leftovers = [p.name for p in (jupyter_home / "runtime").iterdir() if p.name.startswith(("kernel-", "jpserver-"))]
    assert leftovers == []  # Jupyter shut the kernel down and removed its server file


def test_a_config_that_turns_authentication_off_is_refused(jupyter_home, tmp_path):
    (jupyter_home / "config" / "jupyter_server_config.json").write_text(json.dumps({"IdentityProvider": {"token": ""}}))
    done = subprocess.run([sys.executable, "-m", "deepstation", "lab", "--no-browser"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "http://" not in done.stdout, done.stdout + done.stderr
    assert "answers without the token" in done.stderr and "Traceback" not in done.stderr
    assert _mentioning(str(tmp_path / "notebooks")) == [], "the refused server outlived the command"


def test_a_port_in_use_is_one_line(jupyter_home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert f"--port {port}: 127.0.0.1:{port} is not free" in user_error(
            cli("lab", "--no-browser", "--port", port))


def test_a_dir_that_is_not_a_folder_is_one_line(jupyter_home, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    assert "is not a folder" in user_error(cli("lab", "--no-browser", "--dir", tmp_path / "file.txt"))
    assert "does not exist" in user_error(cli("lab", "--no-browser", "--dir", tmp_path / "missing"))


def test_help_has_an_example():
    out = cli("lab", "--help", check=0).stdout
    assert "example:" in out and "--no-browser" in out and "ssh -L" in out


def test_the_kernel_is_registered_once_in_the_environment(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager

    assert kernel.ensure_kernel(prefix=tmp_path) == "deepstation"
    path = tmp_path / "share" / "jupyter" / "kernels" / "deepstation" / "kernel.json"
    stamp = path.stat().st_mtime_ns
    assert kernel.ensure_kernel(prefix=tmp_path) == "deepstation" and path.stat().st_mtime_ns == stamp
    spec = KernelSpecManager(kernel_dirs=[str(path.parents[1])]).get_kernel_spec("deepstation")
    assert spec.argv == [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert spec.display_name == "Python (deepstation)" and spec.language == "python"
    path.write_text('{"argv": ["python"]}')  # an outdated spec is replaced
    kernel.ensure_kernel(prefix=tmp_path)
    assert json.loads(path.read_text()) == kernel.kernel_spec()


def test_notebooks_are_copied_without_overwriting_edits(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "captions.ipynb").write_text("my edits")
    copied = lab.copy_notebooks(folder)
    assert "captions.ipynb" not in copied and set(copied) | {"captions.ipynb"} == set(lab.shipped_notebooks())
    assert (folder / "captions.ipynb").read_text() == "my edits"
    assert lab.copy_notebooks(folder) == []
