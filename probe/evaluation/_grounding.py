"""Does an image-to-text model's cross-attention look at the object a word names?

For ``caption-shapes`` the ground truth is known: :func:`probe.make_captions` returns each
object's pixel mask, in caption order. The model captions every scene under
:func:`probe.generate`; each generated colour or shape word that names the right object at
its place in the caption (the ``j``-th shape word is the ``j``-th object's shape) is scored
on the cross-attention map of the step that wrote it (:func:`probe.token_patch_maps`, heads
averaged, CLS left out and the map renormalised over the patches), per decoder layer and for
the layers averaged:

* **pointing game** (Zhang et al. 2016): the map's top patch (ties broken at random with a
  fixed seed) contains a pixel of the named object (:func:`~probe.evaluation._geometry.
  pointing_game`); the random baseline, a uniformly random patch, hits with probability the
  object's share of the patches. Also reported: the top patch on *any* object of the scene.
* **mass on object**: the share of the map's weight on the object's patches
  (:func:`~probe.evaluation._geometry.mass_on_object`); a uniform map scores the same
  object-patch share.

Words of one scene are not independent, so the 95% intervals come from a bootstrap over
scenes (percentile, :data:`BOOTSTRAP` draws with a fixed seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.models._captions import CaptionsBatch

__all__ = ["BOOTSTRAP", "aligned_words", "caption_grounding", "grounding_markdown"]

BOOTSTRAP = 2000
"""Bootstrap draws (over scenes) of every 95% interval."""


def aligned_words(tokens: Sequence[str], labels: Sequence[int],
                  colours: Sequence[int]) -> list[tuple[int, int, str]]:
    """``(generated position, object slot, "shape" | "colour")`` of every generated word that
    names the object at its place in the caption: the words before the ``j``-th shape word
    describe object ``j``; a word is kept when it equals that object's shape (colour). Stops at
    ``</s>``."""
    from probe.models._captions import CAPTION_COLOURS
    from probe.models._shapes import SHAPE_CLASSES

    names = list(CAPTION_COLOURS)
    count = sum(1 for s in labels if s >= 0)
    out: list[tuple[int, int, str]] = []
    j = 0
    for i, word in enumerate(tokens):
        if word == "</s>":
            break
        if word in SHAPE_CLASSES:
            if j < count and SHAPE_CLASSES[labels[j]] == word:
                out.append((i, j, "shape"))
            j += 1
        elif word in names and j < count and names[colours[j]] == word:
            out.append((i, j, "colour"))
    return out


def _interval(per_scene: torch.Tensor, counts: torch.Tensor, seed: int) -> tuple[float, float,
                                                                                     float]:
    """Ratio of sums ``sum(per_scene) / sum(counts)`` and its bootstrap 95% interval."""
    import torch

    point = float(per_scene.sum() / counts.sum())
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, per_scene.shape[0], (BOOTSTRAP, per_scene.shape[0]), generator=g)
    boot = per_scene[idx].sum(1) / counts[idx].sum(1).clamp(min=1)
    low, high = torch.quantile(boot, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return point, low, high


def caption_grounding(
    model: nn.Module,
    tokenizer: Any,
    data: CaptionsBatch,
    *,
    batch_size: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """Score the cross-attention of every aligned word of the captions of ``data``.

    Returns:
        ``{"scenes", "exact_match", "words": {kind: n}, "unaligned": {kind: n}, "rows":
        [{"kind", "layers", "n", "pointing", "pointing_ci", "pointing_any", "baseline",
        "mass", "mass_ci"}]}``: one row per word kind and decoder layer (``"mean"``: all
        layers averaged).
    """
    import torch

    import probe
    from probe.analysis._image_text import token_patch_maps
    from probe.evaluation._geometry import mass_on_object, object_patch_mask, pointing_game
    from probe.models._captions import CAPTION_COLOURS
    from probe.models._shapes import SHAPE_CLASSES

    if len(data) < 2:
        raise ProbeError("caption_grounding needs at least 2 scenes for its intervals")
    n_layers = int(model.config.decoder.n_layer)
    settings: list[tuple[str, Any]] = [(str(i), [i]) for i in range(n_layers)] + [("mean", None)]
    # per (kind, setting): lists of (scene, hit, hit_any, mass, share)
    found: dict[tuple[str, str], list[tuple[int, float, float, float, float]]] = {
        (k, s): [] for k in ("shape", "colour") for s, _ in settings}
    exact, unaligned = 0, {"shape": 0, "colour": 0}
    for start in range(0, len(data), batch_size):
        stop = min(start + batch_size, len(data))
        gen = probe.generate(model, data.images[start:stop], tokenizer=tokenizer,
                             max_new_tokens=12)
        for b in range(stop - start):
            i = start + b
            tokens = list(gen.generated_tokens[b])
            text = " ".join(t for t in tokens[: tokens.index("</s>")] if t != "<pad>") \
                if "</s>" in tokens else None
            exact += text == data.captions[i]
            labels, colours = data.labels[i].tolist(), data.colours[i].tolist()
            words = aligned_words(tokens, labels, colours)
            said = tokens[: tokens.index("</s>")] if "</s>" in tokens else tokens
            for kind, vocab in (("shape", SHAPE_CLASSES), ("colour", CAPTION_COLOURS)):
                unaligned[kind] += sum(t in vocab for t in said) - sum(
                    k == kind for _, _, k in words)
            if not words:
                continue
            patches = object_patch_mask(data.masks[i], gen.source_grid)  # [objects, rows, cols]
            for name, layers in settings:
                maps = token_patch_maps(gen, batch_index=b, layers=layers, prefix="renormalize")
                rows = torch.tensor([w[0] for w in words])
                objs = torch.tensor([w[1] for w in words])
                chosen = maps[rows]
                hit = pointing_game(chosen, data.masks[i][objs], seed=seed + i)
                hit_any = pointing_game(chosen, data.masks[i].any(0).expand(len(words), -1, -1),
                                        seed=seed + i)
                mass = mass_on_object(chosen, patches[objs])
                share = patches[objs].flatten(1).float().mean(1)
                for (_, _, kind), h, ha, m, s in zip(words, hit.tolist(), hit_any.tolist(),
                                                     mass.tolist(), share.tolist()):
                    found[(kind, name)].append((i, float(h), float(ha), m, s))
    rows_out = []
    for (kind, name), items in found.items():
        if not items:
            continue
        t = torch.tensor(items, dtype=torch.float64)
        scene = t[:, 0].long()

        def per_scene(values: torch.Tensor) -> torch.Tensor:
            return torch.zeros(len(data), dtype=torch.float64).index_add_(0, scene, values)

        counts = per_scene(torch.ones(len(items), dtype=torch.float64))
        hit = _interval(per_scene(t[:, 1]), counts, seed)
        mass = _interval(per_scene(t[:, 3]), counts, seed)
        rows_out.append({
            "kind": kind, "layers": name, "n": len(items),
            "pointing": hit[0], "pointing_ci": [hit[1], hit[2]],
            "pointing_any": float(t[:, 2].mean()), "baseline": float(t[:, 4].mean()),
            "mass": mass[0], "mass_ci": [mass[1], mass[2]],
        })
    words_n = {k: len(found[(k, "mean")]) for k in ("shape", "colour")}
    return {"scenes": len(data), "exact_match": exact / len(data), "words": words_n,
            "unaligned": unaligned, "rows": rows_out}


def grounding_markdown(result: dict[str, Any]) -> str:
    """The result of :func:`caption_grounding` as a markdown table."""
    lines = [
        f"{result['scenes']} scenes, caption exact match {result['exact_match']:.3f}; scored "
        f"words: {result['words']['shape']} shape, {result['words']['colour']} colour "
        f"(not naming their object: {result['unaligned']['shape']} shape, "
        f"{result['unaligned']['colour']} colour)",
        "",
        "| word | decoder layer | n | pointing game [95% CI] | top patch on any object | "
        "random patch (object share) | mass on object [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['kind']} | {r['layers']} | {r['n']} | {r['pointing']:.3f} "
            f"[{r['pointing_ci'][0]:.3f}, {r['pointing_ci'][1]:.3f}] | {r['pointing_any']:.3f} "
            f"| {r['baseline']:.3f} | {r['mass']:.3f} [{r['mass_ci'][0]:.3f}, "
            f"{r['mass_ci'][1]:.3f}] |")
    return "\n".join(lines)
