"""The perturbation problem behind every faithfulness test: which units of an input may be
removed, what replaces them, how a perturbed batch is built, run and scored.

Removed units:

* vision (``inputs`` a float tensor ``[batch, channel, height, width]``): the pixels of the
  patch are replaced by a baseline image: ``"mean"`` (default) the image's own per-channel mean
  colour, ``"zero"`` zero in the model's normalised input space (the dataset mean colour when
  the normalisation subtracts it), ``"blur"`` a Gaussian blur of the image (``sigma`` = the
  patch size, as RISE's insertion canvas), or any tensor broadcastable to the images. The patch
  grid comes from ``grid=``, from an :class:`Attribution`'s grid, or from the model
  (``patch_embed.grid_size`` for timm, ``config.patch_size`` for HF); the patch size is the
  image size divided by the grid.
* text (strings with ``tokenizer``, a tokenizer output, or ``input_ids``): the token is replaced
  by ``"mask"`` (``[MASK]``, default when the tokenizer has one) or ``"pad"`` (the padding
  token with its attention-mask entry set to 0, so the model no longer sees it: the closest
  equivalent of ERASER's token deletion that keeps positions and batch shapes), or an ``int``
  token id (attention mask kept). Special tokens ([CLS], [SEP], ...) and padding are never
  removed and are not units: fractions count the real, non-special tokens of each item.

The score of an input is, by default, the softmax probability of the target class (the class
predicted on the unperturbed input when ``target=None``, held fixed for every perturbation);
``output="logit"`` uses the logit instead. A callable ``target`` (``output -> [batch]``, e.g.
:func:`probe.similarity_target` for sentence embeddings) or ``score_fn(model, inputs) ->
[batch]`` score anything else. Perturbed inputs are evaluated many per forward pass
(``batch_size``), without gradients, with the model in eval mode; the model (including its
train/eval flags) and the inputs are left unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union

from probe.attribution._registry import Attribution
from probe._errors import ProbeError
from probe._index import is_int
from probe.evaluation._geometry import _grid_tuple

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.capture.adapters import ModelAdapter

__all__ = ["Baseline", "BaselineName", "Output", "ScoreFn", "Scores", "text_inputs"]

BaselineName = Literal["mean", "zero", "blur", "mask", "pad"]
Baseline = Union[BaselineName, int, "torch.Tensor", None]
Output = Literal["probability", "logit"]
ScoreFn = Callable[[Any, Any], "torch.Tensor"]
Scores = Union["torch.Tensor", Attribution]

_VISION_BASELINES = ("mean", "zero", "blur")
_TEXT_BASELINES = ("mask", "pad")


# --------------------------------------------------------------------------- the model
@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients inside; every module's training flag restored after."""
    import torch

    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, flag in flags:
            module.training = flag


@dataclass
class _Problem:
    """One batch of inputs, prepared for perturbation: which units, how to build and score."""

    model: Any
    modality: Literal["vision", "text"]
    valid: torch.Tensor  # [batch, num_units] bool: units that may be removed
    build: Callable[[torch.Tensor, torch.Tensor], Any]  # (keep [C, N], items [C]) -> inputs
    forward: Callable[[Any], Any]  # inputs -> model output
    score: Callable[[Any, Any, torch.Tensor], torch.Tensor]  # (inputs, output, items) -> [C]
    batch_size: int
    baseline: str
    grid: tuple[int, int] | None = None
    tokens: tuple[tuple[str, ...], ...] | None = None  # text with a tokenizer, padding dropped
    pad_token: str | None = None

    @property
    def num_units(self) -> int:
        return int(self.valid.shape[1])

    def evaluate(self, keep: torch.Tensor) -> torch.Tensor:
        """Scores of perturbed inputs: ``keep [batch, variants, units]`` -> ``[batch, variants]``.

        ``keep[b, v, u]`` is False where unit ``u`` of item ``b`` is replaced by the baseline.
        """
        import torch

        batch, variants, n = keep.shape
        flat = keep.reshape(batch * variants, n)
        items = torch.arange(batch).repeat_interleave(variants)
        out = torch.empty(batch * variants, dtype=torch.float64)
        for start in range(0, flat.shape[0], self.batch_size):
            stop = start + self.batch_size
            inputs = self.build(flat[start:stop], items[start:stop])
            output = self.forward(inputs)
            values = self.score(inputs, output, items[start:stop])
            count = int(items[start:stop].shape[0])
            if tuple(values.shape) != (count,):
                raise ProbeError(
                    f"the score of a batch of {count} perturbed inputs has shape "
                    f"{tuple(values.shape)}: return one scalar per input [{count}]"
                )
            out[start:stop] = values.detach().to("cpu", torch.float64)
        return out.reshape(batch, variants)


def _check_output(output: Any) -> None:
    """The scored output, as :func:`_problem` takes it."""
    if output not in ("probability", "logit"):
        raise ProbeError(f"output must be 'probability' or 'logit', got {output!r}")


def _problem(
    model: nn.Module,
    inputs: Any,
    *,
    tokenizer: Any,
    target: Any,
    baseline: Baseline,
    score_fn: ScoreFn | None,
    grid: tuple[int, int] | None,
    batch_size: int,
    output: Output,
) -> _Problem:
    import torch

    if not is_int(batch_size) or batch_size < 1:
        raise ProbeError(f"batch_size must be a positive int, got {batch_size!r}")
    batch_size = int(batch_size)
    _check_output(output)
    if score_fn is not None and not callable(score_fn):
        raise ProbeError(
            f"score_fn must be a callable (model, inputs) -> [batch], got {score_fn!r}"
        )
    if score_fn is not None and target is not None:
        raise ProbeError(
            "pass either target= or score_fn=, not both (score_fn computes the score itself)"
        )
    vision = isinstance(inputs, torch.Tensor) and inputs.is_floating_point()
    if vision:
        p = _vision_problem(model, inputs, baseline, grid, batch_size)
    else:
        p = _text_problem(model, inputs, tokenizer, baseline, batch_size)
    if score_fn is not None:
        p.forward = lambda inputs: None  # score_fn runs the model itself
    p.score = _scorer(model, p, target, score_fn, output)
    return p


def _vision_problem(
    model: nn.Module,
    x: torch.Tensor,
    baseline: Baseline,
    grid: tuple[int, int] | None,
    batch_size: int,
) -> _Problem:
    import torch
    import torch.nn.functional as F

    if x.dim() != 4:
        raise ProbeError(
            f"images must be [batch, channel, height, width], got shape {tuple(x.shape)}"
            + ("; use x.unsqueeze(0)" if x.dim() == 3 else "")
        )
    from probe.capture import adapter_for

    adapter = adapter_for(model)
    device = adapter.device
    x = x.detach().to(device, adapter.dtype) if x.is_floating_point() else x.detach().to(device)
    height, width = int(x.shape[-2]), int(x.shape[-1])
    rows, cols = _model_grid(adapter, x) if grid is None else _grid_tuple(grid)
    ph, pw = height // rows, width // cols
    if ph < 1 or pw < 1:
        raise ProbeError(
            f"a {rows}x{cols} patch grid does not fit {height}x{width} images; fix grid="
        )
    if baseline is None:
        baseline = "mean"
    if isinstance(baseline, torch.Tensor):
        try:
            base = torch.broadcast_to(baseline.detach().to(device, x.dtype), x.shape)
        except RuntimeError:
            raise ProbeError(
                f"a baseline tensor must broadcast to the images {tuple(x.shape)}, got "
                f"{tuple(baseline.shape)}"
            ) from None
        name = "tensor"
    elif baseline == "mean":
        base = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
        name = baseline
    elif baseline == "zero":
        base = torch.zeros_like(x)
        name = baseline
    elif baseline == "blur":
        base = _blur(x, float(max(ph, pw)))
        name = baseline
    else:
        raise ProbeError(
            f"unknown image baseline {baseline!r}: use one of {list(_VISION_BASELINES)} or a tensor"
        )

    def build(keep: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        pix = keep.reshape(-1, rows, cols).repeat_interleave(ph, 1).repeat_interleave(pw, 2)
        # pixels beyond the last full patch (image size not a multiple of the grid) stay as they are
        pix = F.pad(pix, (0, width - cols * pw, 0, height - rows * ph), value=True)
        idx = items.to(device)
        return torch.where(pix.to(device)[:, None], x[idx], base[idx])

    return _Problem(
        model=model,
        modality="vision",
        valid=torch.ones(int(x.shape[0]), rows * cols, dtype=torch.bool),
        build=build,
        forward=adapter.call,
        score=None,  # type: ignore[arg-type]  # set by _problem
        batch_size=batch_size,
        baseline=name,
        grid=(rows, cols),
    )


def _model_grid(adapter: ModelAdapter, x: torch.Tensor) -> tuple[int, int]:
    if adapter.modality != "vision" or adapter.generic:
        raise ProbeError(
            f"cannot tell the patch grid of {adapter.name}: pass grid=(rows, cols) or an "
            "Attribution (it carries its grid)"
        )
    return _grid_tuple(adapter.vision_geometry(x).grid)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[batch, channel, H, W]`` (edges replicated)."""
    import torch
    import torch.nn.functional as F

    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(t * t) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    c = int(x.shape[1])
    out = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def text_inputs(
    model: nn.Module, inputs: Any, tokenizer: Any
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Text inputs as forward keyword tensors ``[batch, seq]`` and the valid-unit mask.

    Args:
        model: the text model (its config names special token ids when no tokenizer is given).
        inputs: a string or list of strings (needs ``tokenizer``), a tokenizer output / mapping
            with ``input_ids``, or an ``input_ids`` tensor ``[batch, seq]``.
        tokenizer: the model's tokenizer (names the special tokens).

    Returns:
        ``(kwargs, valid)``: new tensors (the inputs are not modified), ``attention_mask``
        always present; ``valid [batch, seq]`` bool is True on real, non-special tokens.
    """
    import torch

    from probe.capture import adapter_for

    adapter = adapter_for(model)
    if (adapter.modality != "text" and not adapter.generic) or (
        isinstance(inputs, torch.Tensor) and inputs.is_floating_point()
    ):
        raise ProbeError(
            f"unsupported inputs of type {type(inputs).__name__}: pass images [batch, channel, "
            "height, width] to a vision model, or to a text model strings with tokenizer=, a "
            "tokenizer output or input_ids [batch, seq]"
        )
    prepared = adapter.prepare(inputs, tokenizer=tokenizer)
    ids = prepared.kwargs.get("input_ids")
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        raise ProbeError("text inputs need 'input_ids' [batch, seq]: pass a tokenizer's output")
    kwargs = {
        k: (v.detach().clone() if isinstance(v, torch.Tensor) else v)
        for k, v in prepared.kwargs.items()
    }
    if kwargs.get("attention_mask") is None:
        kwargs["attention_mask"] = torch.ones_like(ids)
    mask = kwargs["attention_mask"].bool().cpu()
    special = prepared.special_tokens_mask
    if special is None:
        special = torch.zeros_like(mask)
    return kwargs, mask & ~special


def _text_problem(
    model: nn.Module, inputs: Any, tokenizer: Any, baseline: Baseline, batch_size: int
) -> _Problem:
    import torch

    kwargs, valid = text_inputs(model, inputs, tokenizer)
    ids = kwargs["input_ids"]
    batch = int(ids.shape[0])
    if baseline is None:
        baseline = "mask" if getattr(tokenizer, "mask_token_id", None) is not None else "pad"
    drop_attention = False
    if isinstance(baseline, (bool, torch.Tensor)):
        raise ProbeError(
            f"text baselines are 'mask', 'pad' or a token id (int), got {type(baseline).__name__}"
        )
    if isinstance(baseline, int):
        token, name = baseline, f"token {baseline}"
    elif baseline == "mask":
        token = getattr(tokenizer, "mask_token_id", None)
        if token is None:
            raise ProbeError(
                "baseline='mask' needs a tokenizer with a mask token: pass tokenizer= or use "
                "baseline='pad'"
            )
        name = "mask"
    elif baseline == "pad":
        token = getattr(tokenizer, "pad_token_id", None)
        if token is None:
            token = getattr(getattr(model, "config", None), "pad_token_id", None)
        if token is None:
            raise ProbeError(
                "baseline='pad' needs a padding token id: pass tokenizer= or an int token id"
            )
        drop_attention, name = True, "pad"
    else:
        raise ProbeError(
            f"unknown text baseline {baseline!r}: use one of {list(_TEXT_BASELINES)} or a token id"
        )
    from probe.capture import adapter_for

    adapter = adapter_for(model)
    device = adapter.device
    per_item = {
        k: v
        for k, v in kwargs.items()
        if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == batch
    }
    fixed = {k: v for k, v in kwargs.items() if k not in per_item}
    valid_dev = valid.to(device)
    per_item = {k: v.to(device) for k, v in per_item.items()}

    def build(keep: torch.Tensor, items: torch.Tensor) -> dict[str, Any]:
        idx = items.to(device)
        out = {k: v[idx] for k, v in per_item.items()}
        drop = ~keep.to(device) & valid_dev[idx]
        out["input_ids"] = out["input_ids"].masked_fill(drop, int(token))
        if drop_attention:
            out["attention_mask"] = out["attention_mask"].masked_fill(drop, 0)
        return {**fixed, **out}

    pad = getattr(tokenizer, "pad_token", None)
    tokens = None if tokenizer is None else tuple(
        tuple(t for t in tokenizer.convert_ids_to_tokens(row) if t != pad) for row in ids.tolist()
    )
    return _Problem(
        model=model,
        modality="text",
        valid=valid,
        build=build,
        forward=adapter.forward,
        score=None,  # type: ignore[arg-type]  # set by _problem
        batch_size=batch_size,
        baseline=name,
        tokens=tokens,
        pad_token=pad,
    )


def _scorer(
    model: nn.Module, p: _Problem, target: Any, score_fn: ScoreFn | None, output: Output
) -> Callable[[Any, Any, torch.Tensor], torch.Tensor]:
    import torch

    from probe.attribution._targets import (
        check_scalar_per_item,
        class_tensor_message,
        model_logits,
        plain_index,
        predicted_class,
        resolve_target,
    )

    if score_fn is not None:

        def by_fn(inputs: Any, out: Any, items: torch.Tensor) -> torch.Tensor:
            return check_scalar_per_item(score_fn(model, inputs), score_fn)

        return by_fn
    if callable(target) and not isinstance(target, torch.Tensor):

        def by_target(inputs: Any, out: Any, items: torch.Tensor) -> torch.Tensor:
            mask = inputs.get("attention_mask") if isinstance(inputs, dict) else None
            return resolve_target(target, out, model, attention_mask=mask)

        return by_target

    batch = int(p.valid.shape[0])
    target = plain_index(target, model)  # a numpy int as its int; a label name, a list named
    if target is None:
        chunks = []
        with _eval_mode(model):
            for start in range(0, batch, p.batch_size):
                items = torch.arange(start, min(batch, start + p.batch_size))
                keep = torch.ones(len(items), p.num_units, dtype=torch.bool)
                chunks.append(predicted_class(p.forward(p.build(keep, items)), model).cpu())
        classes = torch.cat(chunks)
    elif isinstance(target, bool):
        raise ProbeError(
            f"target must be a class index, a tensor of classes, a callable or None, got {target!r}"
        )
    elif isinstance(target, int):
        classes = torch.full((batch,), target, dtype=torch.long)
    elif isinstance(target, torch.Tensor):
        if target.dtype not in (torch.int64, torch.int32) or tuple(target.shape) != (batch,):
            raise ProbeError(class_tensor_message(target, batch))
        classes = target.long().cpu()
    else:
        raise ProbeError(
            f"target must be None, a class index, a tensor of classes or a callable output -> "
            f"[batch], got {type(target).__name__}"
        )

    from probe.capture import adapter_for

    device = adapter_for(model).device

    def by_class(inputs: Any, out: Any, items: torch.Tensor) -> torch.Tensor:
        cls = classes[items].to(device)
        logit = resolve_target(cls, out, model)  # checks the classes against the logits
        if output == "logit":
            return logit
        logits = model_logits(out, model).double()  # type: ignore[union-attr]
        return logits.softmax(-1).gather(1, (cls % logits.shape[-1])[:, None])[:, 0]

    return by_class
