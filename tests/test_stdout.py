"""Standard output that cannot be written, served and cold alike: a closed stdout is one line
and exit 2 before anything runs; a broken pipe (``probe models | head -1``) is quiet with exit
141 and keeps the files ``probe render`` completed; another write error (``> /dev/full``) is
one line and exit 2 (see ``probe/commands/_streams.py``)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

TEXT = "The animal didn't cross the street because it was too tired."
COREF = ["render", "coref", "--model", "minilm", "--text", TEXT, "--word", "it", "--out", "out"]
CLOSED = ("probe: error: standard output is closed (started with >&-?): probe prints what it "
          "writes there; give it one, e.g. >/dev/null to discard it\n")
FULL = ("probe: error: cannot write to standard output (No space left on device); free space "
        "on its device or redirect it elsewhere (files already written are complete and "
        "kept)\n")


def _probe() -> list[str]:
    script = Path(sys.executable).parent / "probe"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "probe.cli"]


def _env(sock: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBE_SERVE_")}
    env.update(HF_HUB_OFFLINE="1", MPLBACKEND="Agg", PROBE_SERVE_SOCKET=str(sock), **extra)
    return env


def _close_stdout() -> None:
    os.close(1)


def _closed(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([*_probe(), *args], stderr=subprocess.PIPE, env=env, cwd=cwd,
                          preexec_fn=_close_stdout, timeout=600)


def _broken_pipe(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, bytes]:
    """Run with a stdout pipe whose reader is gone before the command writes."""
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([*_probe(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=cwd)
    proc.stdout.close()
    err = proc.stderr.read()
    return proc.wait(timeout=600), err


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    sock, log = folder / "serve.sock", folder / "requests.log"
    proc = subprocess.Popen([*_probe(), "serve", "--idle-timeout", "10"],
                            env=_env(sock, PROBE_SERVE_LOG=str(log)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    line = proc.stderr.readline().decode()
    assert line.startswith(f"probe serve: ready on {sock}"), line + proc.stderr.read().decode()
    try:
        yield {"sock": sock, "log": log}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def _records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize("args", [COREF, ["models"], ["--help"]], ids=["render", "models",
                                                                       "help"])
def test_closed_stdout_is_one_line_and_exit_2_writing_nothing(args, tmp_path):
    got = _closed(args, _env(tmp_path / "none.sock"), tmp_path)
    assert (got.returncode, got.stderr.decode()) == (2, CLOSED)
    assert not (tmp_path / "out").exists()


def test_closed_stdout_is_refused_before_asking_the_server(server, tmp_path):
    got = _closed(COREF, _env(server["sock"]), tmp_path)
    assert (got.returncode, got.stderr.decode()) == (2, CLOSED)
    assert not (tmp_path / "out").exists()
    assert _records(server["log"]) == []  # the client never connected


def test_broken_pipe_is_quiet_with_exit_141(tmp_path):
    assert _broken_pipe(["models"], _env(tmp_path / "none.sock"), tmp_path) == (141, b"")


@pytest.mark.parametrize("served", [False, True], ids=["cold", "served"])
def test_broken_pipe_on_render_keeps_the_complete_files(served, server, tmp_path):
    sock = server["sock"] if served else tmp_path / "none.sock"
    before = len(_records(server["log"]))
    code, err = _broken_pipe(COREF, _env(sock), tmp_path)
    assert (code, err) == (141, b"")
    [png] = (tmp_path / "out").iterdir()
    assert png.suffix == ".png" and png.read_bytes().startswith(b"\x89PNG")
    from PIL import Image

    with Image.open(png) as image:
        image.load()  # complete, not cut short
    exits = [r["exit"] for r in _records(server["log"])[before:] if "exit" in r]
    assert exits == ([141] if served else [])


def test_full_device_is_one_line_and_exit_2(tmp_path):
    with open("/dev/full", "wb") as full:
        got = subprocess.run([*_probe(), "models"], stdout=full, stderr=subprocess.PIPE,
                             env=_env(tmp_path / "none.sock"), timeout=120)
    assert (got.returncode, got.stderr.decode()) == (2, FULL)


def test_full_device_on_render_keeps_the_complete_files(tmp_path):
    with open("/dev/full", "wb") as full:
        got = subprocess.run([*_probe(), *COREF], stdout=full, stderr=subprocess.PIPE,
                             env=_env(tmp_path / "none.sock"), cwd=tmp_path, timeout=600)
    assert (got.returncode, got.stderr.decode()) == (2, FULL)
    [png] = (tmp_path / "out").iterdir()
    from PIL import Image

    with Image.open(png) as image:
        image.load()


class _Failing(io.StringIO):
    def __init__(self, error: OSError) -> None:
        super().__init__()
        self.error = error

    def write(self, text: str) -> int:
        raise self.error


@pytest.mark.parametrize("error, code, message", [
    (BrokenPipeError(32, "Broken pipe"), 141, ""),
    (OSError(28, "No space left on device"), 2, FULL),
])
def test_a_write_error_mid_command_is_handled_in_main(error, code, message, monkeypatch,
                                                      capsys):
    from probe.cli import main

    capsys.readouterr()
    failing = _Failing(error)
    monkeypatch.setattr(sys, "stdout", failing)
    assert main(["models"]) == code
    assert sys.stdout is failing  # restored after the command
    monkeypatch.undo()
    assert capsys.readouterr().err == message


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"),
                                   BrokenPipeError(32, "Broken pipe")], ids=["oserror", "pipe"])
def test_an_oserror_of_the_command_itself_is_not_a_stdout_error(error, monkeypatch, capsys):
    """A write error of another file, socket or pipe inside a command is a bug report, not
    stdout's reader leaving (a broken pipe of a subprocess used to exit 141 silently)."""
    from probe.cli import main
    from probe.commands import _models

    def fails(ns: Any) -> int:
        raise error

    monkeypatch.setattr(_models, "run", fails)
    assert main(["models"]) == 1
    assert capsys.readouterr().err.startswith(f"probe: internal error: {type(error).__name__}")


@pytest.mark.parametrize("error, code, message", [
    (BrokenPipeError(32, "Broken pipe"), 141, ""),
    (OSError(28, "No space left on device"), 2, FULL),
], ids=["pipe", "full"])
@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["render", "--help"]],
                         ids=["version", "help", "render-help"])
def test_help_and_version_that_cannot_be_written(argv, error, code, message, monkeypatch,
                                                 capsys):
    """argparse swallowed the write error of --help / --version, so unbuffered (python -u,
    PYTHONUNBUFFERED=1) ``probe --version >/dev/full`` exited 0 with nothing said."""
    from probe.cli import main

    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", _Failing(error))
    assert main(argv) == code
    monkeypatch.undo()
    assert capsys.readouterr().err == message


def test_version_to_dev_full_unbuffered_is_one_line_exit_2():
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-u", "-m", "probe.cli", "--version"],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (2, FULL)


def test_writelines_errors_are_stdout_errors():
    """``sys.stdout.writelines`` inside a command is watched like ``write``."""
    from probe.commands._streams import _Watched

    watched = _Watched(_Failing(OSError(28, "No space left on device")))
    with pytest.raises(OSError):
        watched.writelines(["a\n", "b\n"])
    assert watched.error is not None and watched.error.errno == 28
