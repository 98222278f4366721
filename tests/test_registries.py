"""Registries are isolated between tests: conftest.py restores them after every test."""

from __future__ import annotations

import pytest
import torch

import probe
from conftest import registries_restored  # the module pytest loaded, not a second copy


def test_registrations_are_undone_and_built_ins_kept() -> None:
    methods, fusions, models = probe.list_methods(), probe.list_head_fusions(), probe.list_models()
    assert {"attention", "rollout", "ig", "random"} <= set(methods)
    with registries_restored():

        @probe.register_method("test-broken")
        def _broken(ctx: probe.MethodContext) -> torch.Tensor:
            raise RuntimeError("broken method")

        @probe.register_head_fusion("test-broken")
        def _bad(attn: torch.Tensor) -> torch.Tensor:
            return attn  # keeps the head dimension: a broken fusion

        @probe.register_model("test-model", modality="text", description="never loads")
        def _model() -> probe.LoadedModel:
            raise RuntimeError("broken model")

        assert "test-broken" in probe.list_methods() and "test-broken" in probe.list_head_fusions()
        assert "test-model" in probe.list_models()
    assert probe.list_methods() == methods
    assert probe.list_head_fusions() == fusions
    assert probe.list_models() == models
    with pytest.raises(probe.ProbeError, match="unknown"):
        probe.attribute(torch.nn.Linear(2, 2), torch.zeros(1, 2), "test-broken")
