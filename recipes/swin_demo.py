"""Windowed attention of swin-shapes: where a token on a held-out shape attends.

Within its window, per head, in the shifted stage-0 block and in the last block.

Run: ``python -m probe.recipes.swin_demo --out docs/figures`` (the demo draws these too).
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.recipes._common import parser, quiet, save, valid_outputs

__all__ = ["BLOCKS", "main", "object_token", "window_figures"]

BLOCKS = (1, 3)
"""The blocks drawn: stage 0's shifted block (``8x8`` tokens in 4 windows) and the last block
(stage 1, ``4x4`` tokens in one window)."""


def object_token(mask: object, token_size: tuple[float, float]) -> tuple[int, int]:
    """The (row, col) token under the centroid of a boolean ``[H, W]`` object mask, for tokens
    of ``token_size`` = (height, width) pixels."""
    import torch

    ys, xs = torch.as_tensor(mask).nonzero(as_tuple=True)
    if ys.numel() == 0:
        from probe._errors import ProbeError

        raise ProbeError("the object mask is empty: there is no token on the object")
    return int(ys.float().mean() // token_size[0]), int(xs.float().mean() // token_size[1])


def window_figures(out: str, formats: Sequence[str] = ("png",), dpi: int = 150) -> list[str]:
    """``swin_window_L<block>`` for :data:`BLOCKS`: ``probe.plot(trace, "window")`` of the
    held-out image :data:`probe.evaluation.tasks.EVAL_IMAGE_SEED`, the query on the shape's
    centroid. Returns the written paths."""
    import probe
    from probe.evaluation.tasks import EVAL_IMAGE_SEED

    model, _ = probe.load_model("swin-shapes")
    data = probe.make_shapes(1, seed=EVAL_IMAGE_SEED)
    trace = probe.trace(model, data.images)
    pred = probe.SHAPE_CLASSES[int(trace.output.argmax(-1))]
    written: list[str] = []
    for layer in BLOCKS:
        block = trace.windows[trace.layer_position(layer)]
        query = object_token(data.masks[0], block.token_size)
        rows, cols = block.grid
        fig = probe.plot(
            trace, "window", layer=layer, query=query, image=data.to_display(0),
            title=f"swin-shapes (predicts {pred}): block {layer}, stage {block.stage} "
                  f"({rows}x{cols} tokens, shift {block.layout.shift[0]}), token {query}",
        )
        written += save(fig, out, f"swin_window_L{layer}", formats, dpi)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0], default_out="docs/figures").parse_args(argv)
    if not valid_outputs(args):
        return 2
    quiet(args.quiet)
    for path in window_figures(args.out, args.formats or ["png"], args.dpi):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
