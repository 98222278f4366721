"""``probe serve``: a served ``probe render`` is the cold run, byte for byte, and every case
the server cannot serve exactly runs locally.

One server per module (its own socket in a temporary folder, ``PROBE_SERVE_SOCKET``) serves
the end-to-end tests; the cold references run with ``PROBE_SERVE_SOCKET`` pointing nowhere.
Cheap commands (``probe render --help``) carry the fallback cases, so only two renders run
cold. Timings are measured by ``probe bench --part startup``, never asserted here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

TEXT = "The animal didn't cross the street because it was too tired."
COREF = ["render", "coref", "--model", "minilm", "--text", TEXT, "--word", "it", "--out", "out"]
ROLLOUT = ["render", "rollout", "--model", "vit-shapes", "--out", "out"]
BAD = ["render", "coref", "--model", "minilm", "--text", "abc", "--word", "it", "--out", "out"]


def _probe() -> list[str]:
    script = Path(sys.executable).parent / "probe"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "probe.cli"]


def _env(sock: Path | str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBE_SERVE_")}
    env.update(HF_HUB_OFFLINE="1", MPLBACKEND="Agg", PROBE_SERVE_SOCKET=str(sock))
    env.update(extra)
    return env


def _umask() -> None:
    os.umask(0o027)  # not the server's: the worker must take the client's


def _run(args: list[str], env: dict[str, str], cwd: Path,
         prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([*(prefix or _probe()), *args], capture_output=True, env=env,
                          cwd=cwd, timeout=600, preexec_fn=_umask)


def _files(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Relative path -> (mode, bytes) of every file and folder under ``folder``."""
    return {str(p.relative_to(folder)): (p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
            for p in sorted(folder.rglob("*"))}


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _start(sock: Path, log: Path, *args: str, **env: str) -> subprocess.Popen:
    proc = subprocess.Popen([*_probe(), "serve", *args], env=_env(sock, PROBE_SERVE_LOG=str(log),
                            **env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    line = proc.stderr.readline().decode()  # blocks until ready (or the server failed)
    assert line == (f"probe serve: ready on {sock} (pid {proc.pid}); probe render now runs "
                    "through it; Ctrl-C stops\n"), line + proc.stderr.read().decode()
    return proc


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rest = proc.communicate(timeout=60)[1].decode()
    except subprocess.TimeoutExpired:
        proc.kill()
        rest = proc.communicate()[1].decode()
    return proc.returncode, rest


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    sock, log = folder / "serve.sock", folder / "requests.log"
    proc = _start(sock, log, "--idle-timeout", "20")
    try:
        yield {"sock": sock, "log": log, "proc": proc, "folder": folder}
    finally:
        code, rest = _stop(proc)
        assert code == 128 + signal.SIGTERM, rest
        assert not sock.exists() and not Path(str(sock) + ".lock").exists()


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    """Cold references: each command run without a server."""
    folder = tmp_path_factory.mktemp("cold")
    env = _env(folder / "no-server.sock")
    return {name: (_run(args, env, folder / name), folder / name)
            for name, args in (("coref", COREF), ("rollout", ROLLOUT), ("bad", BAD))}


def _served_by(server, proc_pid: int) -> list[dict]:
    return [r for r in _log(server["log"]) if r.get("client") == proc_pid and "exit" in r]


def _run_served(server, args: list[str], cwd: Path, **extra: str):
    """Run ``args`` through the server; the result and the server's record of it."""
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([*_probe(), *args], env=_env(server["sock"], **extra), cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_umask)
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err, _served_by(server, proc.pid), proc.pid


@pytest.mark.parametrize("name, args", [("coref", COREF), ("rollout", ROLLOUT), ("bad", BAD)])
def test_served_render_is_the_cold_run(server, cold, name, args, tmp_path):
    ref, ref_dir = cold[name]
    code, out, err, records, client = _run_served(server, args, tmp_path)
    assert (code, out, err) == (ref.returncode, ref.stdout, ref.stderr)
    assert _files(tmp_path) == _files(ref_dir)
    # it really ran in a worker of the server, which reported the same exit code
    assert len(records) == 1 and records[0]["worker"] != client
    assert records[0]["exit"] == ref.returncode
    if name == "bad":
        assert ref.returncode == 2 and len(ref.stderr.splitlines()) == 1
        assert not (tmp_path / "out").exists()
    else:
        files = _files(tmp_path / "out")
        assert ref.returncode == 0 and len(files) == 1
        assert [mode & 0o777 for mode, _ in files.values()] == [0o640]


def test_help_and_parse_errors_are_served_unchanged(server, tmp_path):
    cold_env = _env(tmp_path / "none.sock")
    for args in (["render", "--help"], ["render", "nope"]):
        ref = _run(args, cold_env, tmp_path / "cold")
        code, out, err, records, _ = _run_served(server, args, tmp_path / "served")
        assert (code, out, err) == (ref.returncode, ref.stdout, ref.stderr)
        assert len(records) == 1
    assert ref.returncode == 2 and len(ref.stderr.splitlines()) == 1


def test_two_clients_at_once(server, cold, tmp_path):
    env = _env(server["sock"])
    procs = []
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        procs.append(subprocess.Popen([*_probe(), *COREF], env=env, cwd=tmp_path / d,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      preexec_fn=_umask))
    results = [p.communicate(timeout=600) for p in procs]
    ref, ref_dir = cold["coref"]
    for proc, (out, err), d in zip(procs, results, ("a", "b")):
        assert (proc.returncode, out, err) == (0, ref.stdout, ref.stderr)
        assert _files(tmp_path / d) == _files(ref_dir)
        assert len(_served_by(server, proc.pid)) == 1


def _long_render(server, cwd: Path) -> tuple[subprocess.Popen, dict]:
    """A served render of 12 sentences, once its worker has started: (client, start record)."""
    texts = [f"Sentence number {i} is here because it was needed." for i in range(12)]
    args = ["render", "coref", "--word", "it", "--out", "out"]
    args += [a for t in texts for a in ("--text", t)]
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([*_probe(), *args], env=_env(server["sock"]), cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while True:
        started = [r for r in _log(server["log"]) if r.get("client") == proc.pid
                   and r.get("started")]
        if started:
            return proc, started[0]
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_ctrl_c_reaches_the_worker_and_writes_nothing(server, tmp_path):
    proc, _ = _long_render(server, tmp_path)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.decode().endswith("probe: interrupted\n") and out == b""
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == {}
    assert [r["exit"] for r in _served_by(server, proc.pid)] == [130]


def test_a_killed_worker_and_a_lost_connection_end_the_client(server, tmp_path):
    proc, started = _long_render(server, tmp_path / "killed")
    os.kill(started["worker"], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGKILL and out == b""
    assert err.decode() == (f"probe: the probe server's worker (pid {started['worker']}) was "
                            "killed by SIGKILL\n")
    # the supervisor gone while the worker runs: never rerun here, one line, exit 1
    proc, started = _long_render(server, tmp_path / "lost")
    os.kill(started["supervisor"], signal.SIGKILL)
    code = proc.wait(timeout=120)
    with contextlib.suppress(ProcessLookupError):  # the orphaned worker holds the pipes
        os.kill(started["worker"], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert code == 1
    assert (f"probe: lost the connection to the probe server (pid {server['proc'].pid}) while "
            f"its worker (pid {started['worker']}) ran the command; not rerunning it here\n"
            ) in err.decode()


def test_no_zombies_are_left(server):
    deadline = time.monotonic() + 30
    while _children(server["proc"].pid):  # supervisors still running or not yet reaped
        assert time.monotonic() < deadline, _children(server["proc"].pid)
        time.sleep(0.2)


def test_elsewhere_than_linux_nothing_is_tried(monkeypatch, capsys):
    from probe.cli import main
    from probe.commands.serve import served

    monkeypatch.setattr(sys, "platform", "darwin")
    assert served(["render", "--help"]) is None
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == (
        "probe: error: probe serve runs on Linux only (it forks and passes file descriptors "
        "over a Unix socket); run probe render directly\n")


def test_stale_socket_runs_locally(tmp_path):
    sock = tmp_path / "stale.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock))
    listener.close()  # the file stays, nobody listens
    ref = _run(["render", "--help"], _env(tmp_path / "none.sock"), tmp_path)
    got = _run(["render", "--help"], _env(sock), tmp_path)
    note = f"probe: note: no probe server answers on {sock} (a stale socket); running here\n"
    assert (got.returncode, got.stdout) == (ref.returncode, ref.stdout)
    assert got.stderr.decode() == note + ref.stderr.decode()


def test_other_import_time_environment_runs_locally(server, tmp_path):
    ref = _run(["render", "--help"], _env(tmp_path / "none.sock"), tmp_path)
    pid = server["proc"].pid
    for name, value in (("HF_HUB_OFFLINE", "0"), ("PROBE_SOMETHING", "1")):
        got = _run(["render", "--help"], _env(server["sock"], **{name: value}), tmp_path)
        note = (f"probe: note: the probe server (pid {pid}) was started with a different "
                f"{name}; running here\n")
        assert (got.returncode, got.stdout) == (ref.returncode, ref.stdout)
        assert got.stderr.decode() == note + ref.stderr.decode()
    refusals = [r for r in _log(server["log"]) if "refused" in r]
    assert any("HF_HUB_OFFLINE" in r["refused"] for r in refusals)


_EDITED = ("import sys; import probe.commands.serve._client as c; f = c.fingerprint; "
           "c.fingerprint = lambda: {**f(), 'files': 'edited'}; "
           "from probe.cli import run; run()")


def test_edited_code_runs_locally(server, tmp_path):
    ref = _run(["render", "--help"], _env(tmp_path / "none.sock"), tmp_path)
    got = _run(["render", "--help"], _env(server["sock"]), tmp_path,
               prefix=[sys.executable, "-c", _EDITED])
    note = (f"probe: note: the probe server (pid {server['proc'].pid}) runs older probe code "
            "(files changed since it started; restart it); running here\n")
    assert (got.returncode, got.stdout) == (ref.returncode, ref.stdout)
    assert got.stderr.decode() == note + ref.stderr.decode()


def test_the_fingerprint_follows_every_file(monkeypatch, tmp_path):
    import probe
    from probe.commands.serve._protocol import fingerprint

    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    module = tmp_path / "pkg" / "sub" / "m.py"
    module.write_text("x = 1\n")
    monkeypatch.setattr(probe, "__path__", [str(tmp_path / "pkg")])
    first = fingerprint()
    assert fingerprint() == first
    os.utime(module, ns=(0, module.stat().st_mtime_ns + 1000))
    second = fingerprint()
    assert second != first and second["python"].endswith(f"({sys.prefix})")
    module.write_text("x = 22\n")
    os.utime(module, ns=(0, 0))
    assert fingerprint() not in (first, second)


def test_a_second_server_is_refused(server, tmp_path):
    got = _run(["serve"], _env(server["sock"]), tmp_path)
    assert got.returncode == 2 and got.stdout == b""
    assert got.stderr.decode() == (f"probe: error: a probe server already runs on "
                                   f"{server['sock']} (pid {server['proc'].pid})\n")
    assert server["proc"].poll() is None
    assert (server["sock"].stat().st_mode & 0o777) == 0o600


def test_idle_timeout_sigterm_and_ctrl_c_stop_and_remove_the_socket(tmp_path):
    sock, log = tmp_path / "idle.sock", tmp_path / "log"
    proc = _start(sock, log, "--idle-timeout", "0.02", PROBE_SERVE_PRELOAD="0")
    code, rest = proc.wait(timeout=120), proc.stderr.read().decode()
    assert code == 0 and rest == "probe serve: no request for 0.02 minutes; stopped\n"
    assert sorted(os.listdir(tmp_path)) == []
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock))
    listener.close()  # a stale socket: the next server replaces it
    proc = _start(sock, log, "--idle-timeout", "0", PROBE_SERVE_PRELOAD="0")
    code, rest = _stop(proc)
    assert code == 128 + signal.SIGTERM and rest == "probe: terminated\n"
    assert sorted(os.listdir(tmp_path)) == []
    proc = _start(sock, log, PROBE_SERVE_PRELOAD="0")
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert proc.wait(timeout=60) == 130 and proc.stderr.read() == b"probe: interrupted\n"
    assert sorted(os.listdir(tmp_path)) == []


def test_the_socket_folder_is_private(monkeypatch, tmp_path):
    from probe import ProbeError
    from probe.commands.serve._protocol import check_socket_dir, socket_path

    path = socket_path({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert path == str(tmp_path / "probe" / "serve.sock")
    check_socket_dir(path, own=True)
    assert (os.stat(tmp_path / "probe").st_mode & 0o777) == 0o700
    os.chmod(tmp_path / "probe", 0o755)
    check_socket_dir(path, own=True)
    assert (os.stat(tmp_path / "probe").st_mode & 0o777) == 0o700
    assert socket_path({}) == f"/tmp/probe-{os.getuid()}/serve.sock"
    assert socket_path({"PROBE_SERVE_SOCKET": "x.sock"}) == os.path.abspath("x.sock")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ProbeError, match="not a folder"):
        check_socket_dir(str(tmp_path / "link" / "serve.sock"), own=True)
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)
    with pytest.raises(ProbeError, match=f"belongs to user id {real}, not to you"):
        check_socket_dir(path, own=True)


def test_the_client_imports_nothing_heavy(tmp_path):
    code = ("import sys; from probe.commands.serve import served; "
            "print(served(['render', '--help']), "
            "sorted(m for m in ('torch', 'numpy', 'matplotlib', 'transformers') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env(tmp_path / "none.sock"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "None []\n"


def test_the_ready_line_says_how_renders_reach_a_server_on_another_socket(tmp_path) -> None:
    """``probe serve --socket PATH`` said "probe render now runs through it" while every
    render of that shell ran locally (clients look at $PROBE_SERVE_SOCKET or the default)."""
    from probe.commands.serve._server import ready_line

    sock = str(tmp_path / "my sock")
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert ready_line(sock, 7, {**env, "PROBE_SERVE_SOCKET": sock}) == (
        f"probe serve: ready on {sock} (pid 7); probe render now runs through it; Ctrl-C stops")
    default = str(tmp_path / "probe" / "serve.sock")
    assert ready_line(default, 7, env).endswith("; probe render now runs through it; Ctrl-C stops")
    assert ready_line(sock, 7, env) == (
        f"probe serve: ready on {sock} (pid 7); probe render runs through it with "
        f"PROBE_SERVE_SOCKET='{sock}' set; Ctrl-C stops")
