"""Random-init timm CNNs for the gate tests: one builder, the norms made non-trivial.

timm zero-initialises some BatchNorm weights (each residual block's last norm) and starts the
running statistics at 0 and 1; a gate behind such a norm sees constants. :func:`timm_cnn`
draws them at random from a seeded ``torch`` generator, always in the same order, so a test
that builds the same model twice gets the same weights.
"""

from __future__ import annotations

from typing import Any

import torch

SMALL: dict[str, Any] = dict(layers=(1, 1, 1, 1), channels=(16, 32, 48, 64), stem_width=16)
"""Narrow one-block-per-stage variants of the timm ResNets: fast, same modules."""


def randomize_norms(model: torch.nn.Module, *, running_stats: bool = True) -> torch.nn.Module:
    """Draw every ``BatchNorm2d``'s weight in ``[0.5, 1.5]`` and bias in ``[-0.2, 0.2]`` (and,
    with ``running_stats``, its running mean in ``[-0.1, 0.1]`` and variance in ``[0.5, 1.5]``),
    in place, from the global ``torch`` generator; returns ``model``."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                if running_stats:
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
    return model


def timm_cnn(
    name: str,
    attn: object = None,
    *,
    seed: int = 0,
    small: bool = True,
    running_stats: bool = True,
    **kwargs: Any,
) -> torch.nn.Module:
    """``timm.create_model(name)`` with 5 classes in eval mode, its norms randomised.

    Args:
        attn: the blocks' ``attn_layer`` (a timm name such as ``"se"``, or a module class or
            partial); ``None``: the model's own.
        seed: seeds the global ``torch`` generator before the model is built.
        small: narrow it to :data:`SMALL` (one block per stage).
        running_stats: also randomise the norms' running statistics (see
            :func:`randomize_norms`).
        kwargs: passed on to ``timm.create_model``.
    """
    import timm

    torch.manual_seed(seed)
    if attn is not None:
        kwargs["block_args"] = dict(attn_layer=attn)
    model = timm.create_model(
        name, pretrained=False, num_classes=5, **(SMALL if small else {}), **kwargs
    )
    return randomize_norms(model.eval(), running_stats=running_stats)


def assert_no_hooks_left(
    model: torch.nn.Module, x: torch.Tensor, failing: torch.nn.Module, repeats: int
) -> None:
    """``probe.trace_gates(model, x)`` leaves no forward (pre-)hook behind when the forward
    raises (a hook on the submodule ``failing`` raises), nor after ``repeats`` captures of
    ``x[:1]``."""
    import pytest

    import probe

    def hooks() -> list[tuple[int, int]]:
        return [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]

    def boom(*_: object) -> None:
        raise RuntimeError("boom")

    before = hooks()
    handle = failing.register_forward_hook(boom)
    with pytest.raises(RuntimeError, match="boom"):
        probe.trace_gates(model, x)
    handle.remove()
    for _ in range(repeats):
        probe.trace_gates(model, x[:1])
    assert hooks() == before
