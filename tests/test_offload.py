"""Models dispatched by accelerate: CPU offload, disk offload and a device map mixing both.

Every check compares with the same model before dispatch (exact to float precision) and
checks that probe leaves accelerate's own hooks exactly as they were: accelerate wraps each
dispatched module's ``forward`` and keeps its hook in ``module._hf_hook``; probe's hooks are
ordinary torch hooks (counted by :func:`tests._tiny.snapshot`), so the two are told apart.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch.testing import assert_close

import probe
from tests._tiny import TIMM, bert_classifier, gpt2, snapshot

accelerate = pytest.importorskip("accelerate")  # pinned in setup.cfg: present in CI

TEXT_METHODS = ("attention", "rollout", "relevance", "ig", "saliency")
VISION_METHODS = ("rollout", "relevance", "gradcam", "ig")
OPTIONS: dict[str, dict[str, Any]] = {"ig": {"n_steps": 8}}  # short: every step loads weights


def _dispatch(model: torch.nn.Module, how: str, folder: str) -> torch.nn.Module:
    """``model`` dispatched by accelerate: all weights offloaded to CPU memory or to disk, or
    a device map that keeps some layers on the CPU and offloads the others to disk."""
    if how == "cpu":
        return accelerate.cpu_offload(model, execution_device="cpu")
    if how == "disk":
        return accelerate.disk_offload(model, folder, execution_device="cpu")
    stacks = (torch.nn.ModuleList, torch.nn.Sequential)
    blocks = [n for n, m in model.named_modules() if isinstance(m, stacks) and len(m) > 1][0]
    device_map: dict[str, Any] = {}
    for key in model.state_dict():
        if key.startswith(blocks + "."):
            index = int(key[len(blocks) + 1 :].split(".")[0])
            device_map[f"{blocks}.{index}"] = "disk" if index % 2 else "cpu"
        else:
            device_map[key.rsplit(".", 1)[0]] = "cpu"
    return accelerate.dispatch_model(model, device_map, main_device="cpu", offload_dir=folder)


def _accelerate_state(model: torch.nn.Module) -> dict[str, Any]:
    """accelerate's hooks, per module: the hook object and the forward it installed."""
    return {
        name: (getattr(m, "_hf_hook", None), m.__dict__.get("forward"))
        for name, m in model.named_modules()
    }


def _probe_state(model: torch.nn.Module) -> dict[str, Any]:
    """:func:`tests._tiny.snapshot` without the values of offloaded (``meta``) parameters,
    which hold no data: those are covered by :func:`_offloaded` and the outputs."""
    state = snapshot(model)
    state["params"] = {n: p for n, p in state["params"].items() if p.device.type != "meta"}
    state["grads"] = {n: g is None for n, (g, _) in state["grads"].items()}
    return state


def _assert_same(model: torch.nn.Module, before: dict[str, Any]) -> None:
    after = _probe_state(model)
    assert after["hooks"] == before["hooks"]  # probe's own (torch) hooks all removed
    assert (after["flags"], after["modes"], after["grads"]) == (
        before["flags"], before["modes"], before["grads"]
    )
    assert after["params"].keys() == before["params"].keys()
    assert all(torch.equal(after["params"][n], p) for n, p in before["params"].items())


def _offloaded(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.device.type == "meta"}


@pytest.mark.parametrize("how", ["cpu", "disk", "map"])
def test_text_model_dispatched_by_accelerate(how, tmp_path):
    model, inputs = bert_classifier()
    reference = copy.deepcopy(model)
    expected = probe.trace(reference, inputs)
    expected_attr = {
        m: probe.attribute(reference, inputs, m, seed=0, **OPTIONS.get(m, {}))
        for m in TEXT_METHODS}
    dispatched = _dispatch(model, how, str(tmp_path))
    offloaded = _offloaded(dispatched)
    assert offloaded, "the test must offload some weights to mean anything"
    assert probe.adapter_for(dispatched).device == torch.device("cpu")
    hooks, before = _accelerate_state(dispatched), _probe_state(dispatched)
    assert any(h is not None for h, _ in hooks.values())

    got = probe.trace(dispatched, inputs)
    assert_close(got.attentions, expected.attentions)
    assert_close(got.output.logits, expected.output.logits)
    for method, attr in expected_attr.items():
        assert_close(probe.attribute(
            dispatched, inputs, method, seed=0, **OPTIONS.get(method, {})
        ).scores, attr.scores)
    assert _accelerate_state(dispatched) == hooks  # accelerate's hooks untouched
    assert _offloaded(dispatched) == offloaded  # nothing moved
    _assert_same(dispatched, before)


@pytest.mark.parametrize("how", ["cpu", "map"])
def test_timm_vit_dispatched_by_accelerate(how, tmp_path):
    model, pixels = TIMM["vit"]()
    reference = copy.deepcopy(model)
    expected = probe.trace(reference, pixels)
    expected_attr = {
        m: probe.attribute(reference, pixels, m, seed=0, **OPTIONS.get(m, {}))
        for m in VISION_METHODS}
    dispatched = _dispatch(model, how, str(tmp_path))
    assert _offloaded(dispatched)
    hooks, before = _accelerate_state(dispatched), _probe_state(dispatched)
    fused = [getattr(m, "fused_attn", None) for m in dispatched.modules()]

    assert_close(probe.trace(dispatched, pixels).attentions, expected.attentions)
    for method, attr in expected_attr.items():
        assert_close(probe.attribute(
            dispatched, pixels, method, seed=0, **OPTIONS.get(method, {})
        ).scores, attr.scores)
    assert [getattr(m, "fused_attn", None) for m in dispatched.modules()] == fused
    assert _accelerate_state(dispatched) == hooks
    _assert_same(dispatched, before)


def test_stream_and_gradients_on_an_offloaded_model(tmp_path):
    model, inputs = bert_classifier()
    reference = copy.deepcopy(model)
    dispatched = _dispatch(model, "disk", str(tmp_path))
    assert_close(
        probe.trace(dispatched, inputs, stream=True).rollout_result,
        probe.trace(reference, inputs, stream=True).rollout_result,
    )
    got = probe.trace(dispatched, inputs, requires_grad=True)
    want = probe.trace(reference, inputs, requires_grad=True)
    got.output.logits[:, 0].sum().backward()
    want.output.logits[:, 0].sum().backward()
    assert_close(got.gradients(), want.gradients())


def test_gather_device_is_the_users_choice(tmp_path):
    model, inputs = bert_classifier()
    dispatched = _dispatch(model, "cpu", str(tmp_path))
    assert probe.trace(dispatched, inputs, device="cpu").attentions.device == torch.device("cpu")
    assert probe.trace(dispatched, inputs).attentions.device == torch.device("cpu")
    for bad, match in (("meta", "holds no data"), ("gpu7", "torch device"), (3.5, "torch device")):
        with pytest.raises(probe.ProbeError, match=match):
            probe.trace(dispatched, inputs, device=bad)


def test_a_gather_device_torch_cannot_use_here_is_refused_before_the_forward():
    """``device='cuda'`` on a machine without one (``cuda:N`` past the count on one with GPUs)
    is one ProbeError line before the model runs, not torch's RuntimeError after it."""
    model, inputs = bert_classifier()
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        missing = f"cuda:{torch.cuda.device_count()}"
        with pytest.raises(probe.ProbeError, match=rf"device='{missing}' is not usable here: .*"
                                                    r"gather on 'cpu'"):
            probe.trace(model, inputs, device=missing)
        if not torch.cuda.is_available():
            with pytest.raises(probe.ProbeError, match=r"device='cuda' is not usable here"):
                probe.trace(model, inputs, device="cuda")
    finally:
        handle.remove()
    assert calls == []


class _Boom(RuntimeError):
    pass


def test_forward_that_raises_in_an_offloaded_model_leaves_accelerate_hooks(tmp_path):
    model, inputs = bert_classifier()
    dispatched = _dispatch(model, "map", str(tmp_path))
    hooks, before = _accelerate_state(dispatched), _probe_state(dispatched)
    last = [m for m in dispatched.modules() if type(m).__name__ == "BertSelfOutput"][-1]

    def explode(*_: Any) -> None:
        raise _Boom("forward failed")

    handle = last.register_forward_pre_hook(explode)
    try:
        with pytest.raises(_Boom):
            probe.trace(dispatched, inputs)
        with pytest.raises(_Boom):
            probe.attribute(dispatched, inputs, "relevance")
    finally:
        handle.remove()
    assert _accelerate_state(dispatched) == hooks
    assert _probe_state(dispatched)["hooks"] == before["hooks"]
    assert probe.trace(dispatched, inputs).attentions is not None


@pytest.mark.parametrize("how", ["cpu", "disk", "map"])
def test_sanity_check_on_a_dispatched_model_runs_on_a_plain_copy(how, tmp_path):
    """The randomisation cascade cannot change offloaded (``meta``) weights: it runs on a copy
    with every weight loaded, equal to the check of the undispatched model, and leaves the
    dispatched model, its weights and accelerate's hooks as they were."""
    model, pixels = TIMM["vit"]()
    expected = probe.sanity_check(copy.deepcopy(model), pixels, ["rollout", "gradcam"], seed=3)
    dispatched = _dispatch(model, how, str(tmp_path))
    offloaded = _offloaded(dispatched)
    assert offloaded
    hooks, before = _accelerate_state(dispatched), _probe_state(dispatched)
    logits = dispatched(pixels)

    got = probe.sanity_check(dispatched, pixels, ["rollout", "gradcam"], seed=3)
    assert got.steps == expected.steps
    for method, values in expected.correlations.items():
        assert_close(got.correlations[method], values)
    assert _accelerate_state(dispatched) == hooks
    assert _offloaded(dispatched) == offloaded
    _assert_same(dispatched, before)
    assert_close(dispatched(pixels), logits)  # the offloaded weights were not randomised


def test_working_copy_keeps_tied_weights_tied_and_refuses_a_missing_weight(tmp_path):
    from probe.capture.adapters._dispatch import is_dispatched, working_copy

    lm, inputs = gpt2()
    assert lm.lm_head.weight is lm.transformer.wte.weight
    expected = lm(**inputs).logits
    dispatched = accelerate.disk_offload(lm, str(tmp_path), execution_device="cpu")
    assert is_dispatched(dispatched) and not is_dispatched(gpt2()[0])
    clone = working_copy(dispatched)
    assert not is_dispatched(clone)
    assert clone.lm_head.weight is clone.transformer.wte.weight
    assert all(p.device.type == "cpu" for p in clone.parameters())
    assert_close(clone(**inputs).logits, expected)
    assert _offloaded(dispatched)  # the dispatched model still offloads

    class Hook:  # a hook whose weights_map lacks the weights
        weights_map: dict = {}

    for module in dispatched.modules():
        if "_hf_hook" in module.__dict__:
            module.__dict__["_hf_hook"] = Hook()
    with pytest.raises(probe.ProbeError, match="offloaded weight .* weights_map"):
        working_copy(dispatched)
