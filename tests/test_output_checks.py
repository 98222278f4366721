"""Up-front output checks try what the writer does: as root ``os.access`` calls ``/proc``
writable, so ``probe eval --json /proc/x.json`` used to fail only after the work.

The checks create and remove a temporary file (or folder) in the nearest existing folder;
these tests run as any user (``os.access`` is also forced to say yes, as it does for root) and
check that nothing is left behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from probe._atomic import creation_error
from probe._errors import ProbeError
from probe._report import check_output_dir, check_output_file

pytestmark = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")


@pytest.fixture(params=["real", "root-like"])
def access(request, monkeypatch):
    """As the current user, and with ``os.access`` answering yes as it does for root."""
    if request.param == "root-like":
        monkeypatch.setattr(os, "access", lambda *_args, **_kwargs: True)
    return request.param


@pytest.mark.parametrize("path", ["/proc/x.json", "/proc/probe-missing/deeper/x.json"])
def test_check_output_file_refuses_proc(access, path) -> None:
    with pytest.raises(ProbeError, match=r"^cannot write /proc/.*choose another output path$"):
        check_output_file(path)


@pytest.mark.parametrize("path", ["/proc", "/proc/probe-out", "/proc/probe-out/deeper"])
def test_check_output_dir_refuses_proc(access, path) -> None:
    with pytest.raises(ProbeError, match=r"^cannot write to --out '/proc.*choose another output "
                       r"folder$"):
        check_output_dir(path)


def test_checks_pass_on_writable_places_and_leave_nothing(tmp_path: Path) -> None:
    check_output_file(tmp_path / "a.json")
    check_output_file(tmp_path / "new" / "deeper" / "a.json")
    check_output_dir(tmp_path)
    check_output_dir(tmp_path / "out" / "deeper")
    assert list(tmp_path.iterdir()) == []
    assert creation_error(tmp_path) is None and creation_error(tmp_path, directory=True) is None
    assert list(tmp_path.iterdir()) == []
    assert creation_error(Path("/proc")) is not None
    assert creation_error(Path("/proc"), directory=True) is not None


def test_eval_json_to_proc_fails_before_any_work(access, capsys, monkeypatch) -> None:
    from probe.cli import main
    from probe.models import _registry

    def no_work(*_args, **_kwargs):
        raise AssertionError("the eval started its work before checking --json")

    monkeypatch.setattr(_registry, "load_model", no_work)
    for task in ("text", "alignment"):
        rc = main(["eval", task, "--json", "/proc/x.json", "--quick", "--quiet"])
        _, err = capsys.readouterr()
        assert rc == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "cannot write /proc/x.json" in err


def test_render_out_to_proc_is_one_line_exit_2(access, capsys) -> None:
    from probe.cli import main

    rc = main(["render", "coref", "--text", "the cat saw it", "--word", "it",
               "--out", "/proc/probe-render"])
    _, err = capsys.readouterr()
    assert rc == 2 and err.count("\n") == 1
    assert "cannot write to --out '/proc/probe-render'" in err


def test_relative_output_in_a_deleted_working_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    """A shell still in a removed folder: one line naming it and the fix, exit 2 (it was an
    'internal error: FileNotFoundError'); an absolute --out still works from there."""
    from probe.cli import main

    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    for check in (check_output_file, check_output_dir):
        with pytest.raises(ProbeError, match=r"'o': the current folder no longer exists .* cd "):
            check("o")
    check_output_dir(tmp_path / "o")
    rc = main(["render", "coref", "--text", "the cat saw it", "--word", "it", "--out", "o"])
    _, err = capsys.readouterr()
    assert rc == 2 and err.count("\n") == 1 and "current folder no longer exists" in err
    assert list(tmp_path.iterdir()) == []
