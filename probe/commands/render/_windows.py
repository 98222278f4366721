"""The ``window`` view of ``probe render``: where one query token of a Swin block attends
within its window, per head, over the image (windowed attention, ``trace.windows``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.commands.render._figures import register_view
from probe.commands.render._session import Session, _stem

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["window_block"]


def window_block(s: Session) -> tuple[Any, list[int]]:
    """The block ``--layer`` (default the last) of the session's Swin trace and the query
    tokens ``--query`` (row-major on its grid, negative counting from the last; default the
    centre token), checked and made non-negative."""
    tr = s.trace()
    windows = getattr(tr, "windows", None)
    if windows is None:
        raise ProbeError(
            f"the window view needs a Swin model (windowed attention, e.g. --model swin-shapes "
            f"or timm:swin_tiny_patch4_window7_224); {s.model_name} is not one: use heads, "
            "rollout or saliency"
        )
    layer = -1 if s.args.layer is None else s.args.layer
    try:
        pos = tr.layer_position(layer)
    except ProbeError as exc:
        raise ProbeError(f"--layer: {exc}") from None
    block = windows[pos]
    rows, cols = block.grid
    n = rows * cols
    asked = [int(q) for q in s.args.queries or (rows // 2 * cols + cols // 2,)]
    bad = [q for q in asked if not -n <= q < n]
    if bad:
        raise ProbeError(
            f"--query {bad[0]} is out of range: block {block.layer} has {rows}x{cols} tokens, "
            f"row-major (use {-n}..{n - 1}; negative counts from the end)"
        )
    return block, list(dict.fromkeys(q % n for q in asked))  # -1 is n-1: drawn once


@register_view("window")
def _window(s: Session) -> list[tuple[str, Figure]]:
    """Block ``--layer`` (default the last), query tokens ``--query`` (row-major token index
    on the block's grid, repeatable; default the centre token): one figure per query."""
    from probe.viewers import title, window_query_view

    tr = s.trace()
    block, asked = window_block(s)
    rows, cols = block.grid
    # the maps are in model-input pixels; the display image may have another size
    in_h, in_w = tr.image_size
    disp_h, disp_w = s.display.shape[:2]
    size = (block.token_size[0] * disp_h / in_h, block.token_size[1] * disp_w / in_w)
    out = []
    for q in asked:
        r, c = divmod(int(q), cols)
        name = title(s.model_name, block.layer, method=f"stage {block.stage}, token ({r}, {c})")
        fig = window_query_view(
            s.display, block.query_map(r, c)[0], (r, c), size,
            heads=list(range(block.num_heads)), title=name,
        )
        out.append((_stem(s, "window", f"L{block.layer}", f"q{q}"), fig))
    return out
