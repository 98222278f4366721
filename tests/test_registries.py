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


def test_a_registered_method_or_model_that_returns_the_wrong_thing_is_named() -> None:
    """The README's "Extending probe" sketches (bodies ``...``) returned ``None``: the method
    was an ``AttributeError: 'NoneType' object has no attribute 'detach'`` and the model loader
    reached the caller as ``None`` (``model, tok = probe.load_model(...)``: cannot unpack)."""
    from tests import _tiny

    model, inputs = _tiny.bert()
    with registries_restored():

        @probe.register_method("test-none", modalities=("text",))
        def _none(ctx: probe.MethodContext) -> torch.Tensor:
            return None  # type: ignore[return-value]

        @probe.register_method("test-short", modalities=("text",))
        def _short(ctx: probe.MethodContext) -> torch.Tensor:
            return torch.zeros(2, 3)

        @probe.register_model("test-nothing", modality="text", description="returns None")
        def _nothing() -> probe.LoadedModel: ...

        @probe.register_model("test-pair", modality="text", description="a plain pair")
        def _pair() -> probe.LoadedModel:
            return model, None  # type: ignore[return-value]

        with pytest.raises(probe.ProbeError) as err:
            probe.attribute(model, inputs, "test-none")
        assert str(err.value) == (
            "method 'test-none' returned NoneType, not a tensor: its function ('_none') must "
            "return the scores [batch, num_units], one per token or patch")
        with pytest.raises(probe.ProbeError, match=r"^method 'test-short' returned scores of "
                           r"shape \(2, 3\) but the input has \(2, 9\) tokens \[batch, seq\]"):
            probe.attribute(model, inputs, "test-short")
        with pytest.raises(probe.ProbeError) as err:
            probe.load_model("test-nothing")
        assert str(err.value) == (
            "the loader registered for 'test-nothing' returned NoneType, not a model: it must "
            "return probe.LoadedModel(model, processor) (processor None for vision models)")
        loaded = probe.load_model("test-pair")
        assert isinstance(loaded, probe.LoadedModel) and loaded.model is model
