"""``probe._report``: markdown tables, JSON-safe values, atomic JSON files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from probe._errors import ProbeError
from probe._report import format_value, jsonable, markdown_table, write_json


def test_format_value() -> None:
    assert format_value(0.12345) == "0.123"
    assert format_value(2.5, 1, suffix="x") == "2.5x"
    assert format_value(3) == "3" and format_value("text", 1) == "text"
    for missing in (None, float("nan"), float("inf")):
        assert format_value(missing) == "–"
        assert format_value(missing, missing="-", suffix="x") == "-"
    assert format_value(float("nan"), missing=None) == "nan"
    assert format_value(float("-inf"), 2, missing=None) == "-inf"


def test_markdown_table_alignment_and_cells() -> None:
    text = markdown_table(["method", "a", "b"], [["x", 0.5, None], ["y", 1, "s"]], digits=2)
    assert text.splitlines() == [
        "| method | a | b |",
        "|---|---:|---:|",
        "| x | 0.50 | – |",
        "| y | 1 | s |",
    ]
    left = markdown_table(["a", "b"], [], align=["left", "left"])
    assert left == "| a | b |\n|---|---|"
    with pytest.raises(ProbeError, match="one value per column"):
        markdown_table(["a", "b"], [[1]])
    with pytest.raises(ProbeError, match="align"):
        markdown_table(["a", "b"], [], align=["left"])


@dataclass
class _Point:
    x: float
    where: Path


def test_jsonable_plain_values() -> None:
    doc = {
        "t": torch.tensor([1.0, float("nan")]),
        "scalar": torch.tensor(2.5),
        "np": np.arange(3),
        "np_scalar": np.float32(0.5),
        (1, 2): (3, float("inf")),
        "set": {2, 1},
        "point": _Point(1.0, Path("a/b.json")),
        "ok": [True, None, "s"],
    }
    out = jsonable(doc)
    assert out == {
        "t": [1.0, None], "scalar": 2.5, "np": [0, 1, 2], "np_scalar": 0.5,
        "(1, 2)": [3, None], "set": [1, 2], "point": {"x": 1.0, "where": "a/b.json"},
        "ok": [True, None, "s"],
    }
    json.dumps(out, allow_nan=False)  # strict JSON
    assert doc["t"].isnan().any()  # the input is untouched


def test_write_json_atomic_and_errors(tmp_path: Path) -> None:
    target = tmp_path / "new" / "sub" / "out.json"
    assert write_json(target, {"a": [1, 2]}, indent=1) == target
    assert target.read_text() == json.dumps({"a": [1, 2]}, indent=1) + "\n"
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # the usual mode, not mkstemp's
    # a failed write (not JSON) leaves the old file and no temporary file behind
    with pytest.raises(ValueError):
        write_json(target, {"a": float("nan")})
    with pytest.raises(TypeError):
        write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": [1, 2]}
    assert os.listdir(target.parent) == ["out.json"]
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ProbeError, match="not a folder"):
        write_json(blocker / "out.json", {})
    with pytest.raises(ProbeError, match="is a folder"):
        write_json(tmp_path, {})


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True,
                    reason="root writes into read-only folders")
def test_write_json_unwritable_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ProbeError, match="not writable"):
            write_json(locked / "out.json", {})
    finally:
        locked.chmod(0o700)


def test_report_imports_no_heavy_module() -> None:
    code = ("import sys, probe._report, probe.evaluation._curves_math\n"
            "print([m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
