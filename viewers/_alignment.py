"""Alignment-matrix figure: target words x source words, gold links marked when known."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.viewers._direction import Direction
from probe.viewers._heatmaps import head_heatmap
from probe.viewers._style import FONT_SIZES, as_array

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["alignment_view"]


def _check_links(links: Iterable[tuple[int, int]] | None, shape: tuple[int, int],
                 name: str) -> list:
    if links is None:
        return []
    out = []
    for link in links:
        t, s = (int(v) for v in link)
        if not (0 <= t < shape[0] and 0 <= s < shape[1]):
            raise ProbeError(
                f"{name} link {link} is outside the {shape[0]} x {shape[1]} alignment matrix"
            )
        out.append((t, s))
    return sorted(out)


def alignment_view(
    matrix: Any,
    target_words: Sequence[str],
    source_words: Sequence[str],
    *,
    gold: Iterable[tuple[int, int]] | None = None,
    predicted: Iterable[tuple[int, int]] | None = None,
    model_name: str | None = None,
    layer: int | str | None = None,
    head: int | str | None = None,
    method: str | None = "attention",
    title: str | None = None,
    ax: Axes | None = None,
    direction: Direction = "auto",
    width: float | str | None = None,
) -> Figure:
    """Soft word alignment with gold and predicted links.

    Args:
        matrix: ``[target_word, source_word]`` scores (``probe.Alignment.matrix(...)``).
        target_words, source_words: row and column labels.
        gold: gold links ``(target_word, source_word)``, drawn as white-edged squares.
        predicted: hard links, drawn as small red dots (a dot inside a square is a hit).
        model_name, layer, head, method, title, ax, width: as in :func:`head_heatmap`.
        direction: as in :func:`head_heatmap`, read from the source words (the x axis):
            right to left puts source word 0 at the right.

    Returns:
        The ``Figure``.
    """
    data = as_array(matrix, "matrix", 2, "[target_word, source_word]")
    shape = (int(data.shape[0]), int(data.shape[1]))
    if len(target_words) != shape[0] or len(source_words) != shape[1]:
        raise ProbeError(
            f"{len(target_words)} target and {len(source_words)} source words do not label a "
            f"{shape[0]} x {shape[1]} matrix"
        )
    gold_links = _check_links(gold, shape, "gold")
    pred_links = _check_links(predicted, shape, "predicted")
    fig = head_heatmap(
        data, query_tokens=list(target_words), key_tokens=list(source_words),
        model_name=model_name, layer=layer, head=head, method=method, signed=False,
        colorbar_label="alignment score", title=title, ax=ax, direction=direction,
        width=width,
    )
    axes = ax if ax is not None else fig.axes[0]
    axes.set_xlabel("source word", fontsize=FONT_SIZES["label"])
    axes.set_ylabel("target word", fontsize=FONT_SIZES["label"])
    from matplotlib.patches import Rectangle

    for t, s in gold_links:
        axes.add_patch(Rectangle((s - 0.5, t - 0.5), 1, 1, fill=False, edgecolor="white",
                                 linewidth=1.6, label="gold"))
        axes.add_patch(Rectangle((s - 0.5, t - 0.5), 1, 1, fill=False, edgecolor="black",
                                 linewidth=0.6, linestyle=":"))
    if pred_links:
        axes.scatter([s for _, s in pred_links], [t for t, _ in pred_links], s=14, c="#d62728",
                     marker="o", linewidths=0, label="predicted", zorder=3)
    return fig
