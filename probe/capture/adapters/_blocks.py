"""Finding the stacks of transformer blocks of any model (sanity checks randomise them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["STACK_NAMES", "outer_stacks"]

#: module names under which models keep their list of blocks (ALBERT: its groups of layers,
#: each shared by several layers of depth, so one group is one step of a cascade)
STACK_NAMES: tuple[str, ...] = ("blocks", "layer", "layers", "h", "block", "albert_layer_groups")


def outer_stacks(model: nn.Module) -> list[str]:
    """Names of the outermost transformer stacks, in registration order."""
    from torch import nn

    def is_stack(module: nn.Module, min_len: int) -> bool:
        children = list(module.children())
        return (
            isinstance(module, (nn.ModuleList, nn.Sequential))
            and len(children) >= min_len
            and len({type(c) for c in children}) == 1
            and any(True for _ in module.parameters())
        )

    named = [
        name
        for name, module in model.named_modules()
        if name and name.rsplit(".", 1)[-1] in STACK_NAMES and is_stack(module, 1)
    ]
    if not named:
        # no conventional name: the largest container of at least two identical blocks
        sizes = [
            (sum(p.numel() for p in module.parameters()), name)
            for name, module in model.named_modules()
            if name and is_stack(module, 2)
        ]
        if not sizes:
            raise ProbeError(
                f"cannot find the transformer blocks of {type(model).__name__} (no ModuleList of "
                "identical blocks): pass a transformer model (timm ViT, HF encoder/decoder)"
            )
        named = [max(sizes)[1]]
    outer = [n for n in named if not any(n.startswith(o + ".") for o in named if o != n)]
    return outer
