"""``probe serve``'s worker is the client's process in what the client's shell set: resource
limits and niceness (or the request runs locally when the worker cannot take them), Ctrl-Z
(SIGTSTP) stops and continues it with the client, and a library upgraded under the server
makes requests run locally.

A plumbing server (``PROBE_SERVE_PRELOAD=0``, an entry that reports what the worker sees)
keeps these tests fast; ``tests/test_serve.py`` holds the end-to-end renders.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

SERVER = """
import json, os, resource, sys, time
from probe.commands.serve._server import serve

def entry(argv):
    print(json.dumps({"pid": os.getpid(), "nice": os.getpriority(os.PRIO_PROCESS, 0),
                      "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
                      "core": resource.getrlimit(resource.RLIMIT_CORE)}), flush=True)
    if argv[1:] == ["wait"]:
        sys.stdin.readline()  # until the test writes a line
        print("done", flush=True)
    return 0

sys.exit(serve(sys.argv[1], 5, entry))
"""
CLIENT = ("import sys; sys.path[:0] = [p for p in sys.argv[1:2] if p]; "
          "from probe.commands.serve import served; code = served(sys.argv[2:]); "
          "sys.exit(99 if code is None else code)")


def _env(sock: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBE_SERVE_")}
    env.update(HF_HUB_OFFLINE="1", PROBE_SERVE_SOCKET=str(sock), PROBE_SERVE_PRELOAD="0",
               **extra)
    return env


def _start(folder: Path, preexec: Any = None) -> subprocess.Popen:
    sock = folder / "serve.sock"
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(sock)],
                            env=_env(sock, PROBE_SERVE_LOG=str(folder / "log")),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=preexec)
    line = proc.stderr.readline().decode()
    assert line.startswith(f"probe serve: ready on {sock}"), line + proc.stderr.read().decode()
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plumbing")
    proc = _start(folder)
    try:
        yield {"sock": folder / "serve.sock", "pid": proc.pid}
    finally:
        _stop(proc)


def _client(sock: Path, *argv: str, path: str = "", preexec: Any = None,
            **kw: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLIENT, path, "render", *argv],
                            env=_env(sock), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=preexec, **kw)


def _limited() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 200), min(hard, 300)))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.nice(3)


def test_the_worker_takes_the_clients_limits_and_niceness(server):
    proc = _client(server["sock"], preexec=_limited)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    seen = json.loads(out)
    assert seen["pid"] not in (proc.pid, server["pid"])  # it ran in a worker
    assert seen["nofile"] == [min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 200),
                              min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 300)]
    assert seen["core"] == [0, 0]
    assert seen["nice"] == os.getpriority(os.PRIO_PROCESS, 0) + 3
    # and a client without limits gets the server's, not the last client's
    plain = _client(server["sock"])
    out, _ = plain.communicate(timeout=120)
    assert json.loads(out)["nofile"] == list(resource.getrlimit(resource.RLIMIT_NOFILE))


def _lower_server() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), min(hard, 256)))
    os.nice(2)


def test_limits_the_worker_cannot_take_run_locally(tmp_path):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip("this shell's hard RLIMIT_NOFILE is already <= 256")
    proc = _start(tmp_path, preexec=_lower_server)
    try:
        client = _client(tmp_path / "serve.sock")
        out, err = client.communicate(timeout=120)
        assert (client.returncode, out) == (99, b"")  # served() said: run it here
        assert err.decode() == (
            f"probe: note: the probe server (pid {proc.pid}) runs with a lower hard limit "
            f"RLIMIT_NOFILE (256; yours {'unlimited' if hard == -1 else hard}), which its "
            "workers cannot raise; running here\n")

        def same_limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

        client = _client(tmp_path / "serve.sock", preexec=same_limit)
        out, err = client.communicate(timeout=120)
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        assert err.decode() == (
            f"probe: note: the probe server (pid {proc.pid}) runs at niceness {nice + 2}, "
            f"which its workers cannot lower to yours ({nice}); running here\n")
    finally:
        _stop(proc)


def _state(pid: int) -> str:
    """``pid``'s state letter (``/proc/PID/stat``), or ``"gone"`` once it was reaped (which can
    happen between any two looks: under load an exists-then-read check raced with it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return "gone"


def _wait_state(pid: int, states: str | tuple[str, ...]) -> str:
    deadline = time.monotonic() + 30
    while (state := _state(pid)) not in states:
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    return state


def _catching_tstp(pid: int) -> None:
    """Wait until ``pid`` handles SIGTSTP (the client got the worker's pid and follows it)."""
    deadline = time.monotonic() + 30
    while True:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(x for x in status.splitlines() if x.startswith("SigCgt:")).split()[1],
                     16)
        if caught >> (signal.SIGTSTP - 1) & 1:
            return
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _follows(server: dict[str, Any]) -> tuple[subprocess.Popen, int]:
    # the client in a process group of its own whose parent (this test) is in another group of
    # the session, as a shell's job is: never orphaned, where the kernel would discard its
    # SIGTSTP (pytest itself may run in an orphaned group: started in the background, say)
    proc = _client(server["sock"], "wait", stdin=subprocess.PIPE, process_group=0)
    worker = json.loads(proc.stdout.readline())["pid"]
    _catching_tstp(proc.pid)
    return proc, worker


def test_ctrl_z_stops_and_continues_the_worker_with_the_client(server):
    proc, worker = _follows(server)
    proc.send_signal(signal.SIGTSTP)
    assert _wait_state(proc.pid, "T") == "T"
    assert _wait_state(worker, "Tt") in "Tt"
    proc.send_signal(signal.SIGCONT)
    assert _wait_state(worker, "SR") in "SR"
    assert _wait_state(proc.pid, "SR") in "SR"
    out, err = proc.communicate(b"go\n", timeout=120)
    assert (proc.returncode, out, err) == (0, b"done\n", b"")


def test_a_killed_stopped_client_does_not_leave_a_stopped_worker(server):
    proc, worker = _follows(server)
    proc.send_signal(signal.SIGTSTP)
    _wait_state(worker, "Tt")
    proc.kill()
    proc.wait(timeout=60)
    _wait_state(worker, ("Z", "gone"))


def test_an_upgraded_library_runs_locally(server, tmp_path):
    from probe.commands.serve._protocol import installed_packages

    (tmp_path / "torch-0.0.1.dist-info").mkdir()
    proc = _client(server["sock"], path=str(tmp_path))
    out, err = proc.communicate(timeout=120)
    ours = installed_packages()["torch"].split(" ")[0]
    assert (proc.returncode, out) == (99, b"")
    assert err.decode() == (
        f"probe: note: the probe server (pid {server['pid']}) imported torch {ours} (now "
        "0.0.1), installed differently since it started (restart it); running here\n")


def test_installed_packages_follow_an_upgrade_and_a_reinstall(tmp_path):
    from probe.commands.serve._protocol import fingerprint, installed_packages

    first = tmp_path / "torch-1.0.dist-info"
    first.mkdir()
    (tmp_path / "Pillow-9.0.egg-info").mkdir()
    (tmp_path / "unrelated-1.0.dist-info").mkdir()
    before = installed_packages([str(tmp_path), "relative", ""])
    assert {k: v.split(" ")[0] for k, v in before.items()} == {"pillow": "9.0", "torch": "1.0"}
    first.rename(tmp_path / "torch-2.0.dist-info")
    after = installed_packages([str(tmp_path)])
    assert after["torch"].startswith("2.0 ")
    os.utime(tmp_path / "torch-2.0.dist-info", ns=(0, 12345))
    assert installed_packages([str(tmp_path)])["torch"] == "2.0 12345"
    assert fingerprint()["packages"] == installed_packages()


def test_a_client_without_package_versions_is_told_its_code_differs():
    """An older client sends no ``packages``: restarting the server would not help, so it is
    not told that packages were installed differently."""
    from probe.commands.serve._protocol import fingerprint
    from probe.commands.serve._server import _refusal, _State

    ours = fingerprint()
    state = _State(fingerprint=ours, env={}, entry=lambda argv: 0, log=None)
    older = {k: v for k, v in ours.items() if k != "packages"}
    assert _refusal({"fingerprint": older}, state) == (
        "runs older probe code (files changed since it started; restart it)", "")
    changed = {**ours, "packages": {**ours["packages"], "torch": "0.0.1 1"}}
    assert "installed differently" in _refusal({"fingerprint": changed}, state)[0]
