"""Checks every shipped model and its training recipe pass: missing or mismatched weight files
are refused by name, and a tiny training run keeps the quality floor and is deterministic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest
import torch

import probe


def assert_bad_weights_refused(load: Callable[[Path], Any], tmp_path: Path, recipe: str) -> None:
    """``load`` of a missing file names the ``recipe`` that writes it; a file of other tensors
    is refused as not matching."""
    from safetensors.torch import save_file

    with pytest.raises(probe.ProbeError, match=recipe):
        load(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad))
    with pytest.raises(probe.ProbeError, match="do not match"):
        load(bad)


def assert_recipe_keeps_its_floor(
    recipe: ModuleType, out: Path, tiny: list[str], floor: Literal["accuracy", "recall"]
) -> dict[str, torch.Tensor]:
    """A tiny run of ``recipe.main(tiny)`` (which writes to ``out``) is below the floor: exit 1,
    nothing written; with ``--min-<floor> 0`` it writes, and again bit-identical tensors;
    ``--steps 0`` exits 2. Returns the tensors written."""
    from safetensors.torch import load_file

    assert recipe.main(tiny) == 1 and not out.exists()  # two steps cannot reach the floor
    assert recipe.main([*tiny, f"--min-{floor}", "0"]) == 0
    first = load_file(str(out))
    assert recipe.main([*tiny, f"--min-{floor}", "0"]) == 0
    second = load_file(str(out))  # deterministic: bit-identical tensors
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert recipe.main(["--steps", "0"]) == 2
    return first
