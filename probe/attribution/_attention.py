"""Attention-based attribution methods, registered in the method registry.

Each method turns a ``[batch, query, key]`` map (raw attention, rollout, flow or
gradient-weighted relevance) into one score per input unit by reading *query rows*:

* vision: the units are the patch keys (prefix keys such as CLS, distillation and register
  tokens are dropped), read from the CLS row (query 0, the first prefix token) as in DINO
  (Caron et al. 2021) and rollout (Abnar & Zuidema 2020); models that pool the patch tokens
  instead (no prefix tokens, or timm ``global_pool="avg"`` such as EVA and BEiT) use the
  mean over the patch rows;
* text: the units are all token positions (special tokens included, padding 0), read from
  the rows the model's output is computed from:

  - ``"cls"`` for encoder classifiers (the output has ``logits``): the pooler / head reads
    the first token ([CLS], ``<s>``), so row 0 says how much each token feeds it;
  - ``"mean"`` for embedding models without logits, such as all-MiniLM-L6-v2: a
    sentence-transformers embedding is the mean over the real tokens, so the mean of the
    real query rows says how much each token contributes to the pooled representation;
  - ``"last"`` for decoder-only models: the last real token produces the prediction.

  Pass ``query="cls" | "mean" | "last"`` or a token index to override the choice.

The rows of rollout and flow sum to 1, so text scores of ``"mean"`` and ``"cls"`` sum to 1
over the real tokens; the raw attention rows too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Union

from probe._errors import ProbeError
from probe.analysis._flow import DEFAULT_MAX_ROW_TOKENS, DEFAULT_MAX_TOKENS
from probe.analysis._fusion import list_head_fusions
from probe.attribution._registry import MethodContext, MethodOption, register_method

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.attribution._targets import Target
    from probe.capture._trace import Trace

__all__ = ["QueryRows", "fusion_option", "gradient_relevance", "query_rows_note", "reduce_map",
           "rollout_options"]

#: Which query rows of a ``[batch, query, key]`` map are read (see the module docstring).
QueryRows = Union[Literal["auto", "cls", "mean", "last"], int]

_QUERY_NAMES = ("auto", "cls", "mean", "last")


# --------------------------------------------------------------------------- helpers
def _check_query(query: Any) -> None:
    if isinstance(query, bool) or not isinstance(query, (int, str)) or (
        isinstance(query, str) and query not in _QUERY_NAMES
    ):
        raise ProbeError(
            f"query must be one of {list(_QUERY_NAMES)} or a token index (int), got {query!r}"
        )


def _resolve_query(trace: Trace, query: QueryRows, model: Any = None) -> QueryRows:
    _check_query(query)
    if query != "auto":
        return query
    if trace.is_vision:
        pools_patches = False
        if model is not None:
            from probe.capture import adapter_for

            pools_patches = adapter_for(model).pools_patches()
        return "mean" if trace.num_prefix_tokens == 0 or pools_patches else "cls"
    if trace.family == "decoder":
        return "last"
    from probe.attribution._targets import model_logits

    if trace.family == "encoder" and model_logits(trace.output) is not None:
        return "cls"
    return "mean"


def query_rows_note(trace: Trace, query: QueryRows = "auto", batch_index: int = 0,
                    model: Any = None) -> str:
    """Which query rows :func:`reduce_map` reads for item ``batch_index``, in the words a
    figure prints: ``"row: [CLS]"``, ``"mean over the query rows"``, ``"row: last token
    (.)"`` or ``"row: token 3 (sat)"`` (``"auto"`` resolved as :func:`query_weights` does)."""
    resolved = _resolve_query(trace, query, model)
    if resolved == "mean":
        return "mean over the " + ("patch rows" if trace.is_vision else "query rows")
    labels = trace.labels[batch_index] if getattr(trace, "labels", None) else None
    if resolved == "cls":
        return f"row: {labels[0]}" if labels else "row: token 0"
    if resolved == "last":
        last = int(trace.attention_mask[batch_index].nonzero().max())
        return f"row: last token ({labels[last]})" if labels else f"row: last token ({last})"
    index = int(resolved) % trace.seq_len  # type: ignore[arg-type]
    return f"row: token {index}" + (f" ({labels[index]})" if labels else "")


def query_weights(trace: Trace, query: QueryRows = "auto", model: Any = None) -> torch.Tensor:
    """``[batch, query]`` weights of the query rows a token/patch score is read from.

    ``"cls"``: one-hot on token 0; ``"last"``: one-hot on the last real token; ``"mean"``:
    uniform over the real query rows after the prefix tokens (all real tokens for text, the
    patch rows for vision, without YOLOS's detection tokens after them); an ``int``: one-hot
    on that token. Rows of each item sum to 1.
    ``model`` (optional) tells ``"auto"`` how a vision model pools (timm ``global_pool``).
    """
    import torch

    resolved = _resolve_query(trace, query, model)
    mask = trace.attention_mask.bool()
    batch, seq = mask.shape
    weights = torch.zeros(batch, seq, dtype=torch.float64)
    if resolved == "cls":
        if not bool(mask[:, 0].all()):
            item = int((~mask[:, 0]).nonzero()[0, 0])
            raise ProbeError(
                f"item {item} is left-padded: its first position, the row the classifier reads "
                "as [CLS], is padding; pad encoders on the right (tokenizer.padding_side = "
                "'right') or pass query= another row"
            )
        weights[:, 0] = 1.0
    elif resolved == "last":
        positions = torch.arange(seq).expand(batch, seq)
        last = torch.where(mask, positions, -1).amax(-1)
        weights[torch.arange(batch), last] = 1.0
    elif resolved == "mean":
        rows = mask.clone()
        rows[:, : trace.num_prefix_tokens] = False
        rows[:, seq - trace.num_suffix_tokens :] = False  # YOLOS's detection tokens
        weights = rows.double() / rows.sum(-1, keepdim=True).clamp_min(1).double()
    else:
        index = int(resolved)  # type: ignore[arg-type]
        if not -seq <= index < seq:
            raise ProbeError(f"query {index} is out of range for {seq} tokens; use 0..{seq - 1}")
        weights[:, index % seq] = 1.0
    return weights


def reduce_map(
    trace: Trace, maps: torch.Tensor, query: QueryRows = "auto", model: Any = None
) -> torch.Tensor:
    """Scores per unit from a ``[batch, query, key]`` map (see the module docstring).

    Args:
        trace: the trace the map was computed from (geometry, padding, model family).
        maps: ``[batch, query, key]``, e.g. a rollout; or ``[batch, rows, key]``, the kept
            rows of a row-selected trace (``query_rows=``), which must hold every row read.
        query: which rows to read: ``"auto"``, ``"cls"``, ``"mean"``, ``"last"`` or an index.
        model: the model, so that ``"auto"`` can see how a vision model pools.

    Returns:
        text: ``[batch, tokens]`` (padding 0); vision: ``[batch, rows * cols]`` patch scores,
        row-major over ``trace.grid`` (prefix tokens dropped).
    """
    import torch

    rows = trace.query_indices
    n_rows = trace.seq_len if rows is None else len(rows)
    if maps.dim() != 3 or tuple(maps.shape) != (trace.batch_size, n_rows, trace.seq_len):
        raise ProbeError(
            f"expected a map [batch, query, key] = [{trace.batch_size}, {n_rows}, "
            f"{trace.seq_len}], got {tuple(maps.shape)}"
        )
    weights = query_weights(trace, query, model)
    if rows is not None:  # the kept rows of a row-selected trace: every row read must be there
        trace.row_positions(weights.ne(0).any(0).nonzero().flatten().tolist())  # or raise
        weights = weights[:, list(rows)]
    weights = weights.to(device=maps.device, dtype=torch.float64)
    scores = torch.einsum("bq,bqk->bk", weights, maps.detach().double())
    scores = scores * trace.attention_mask.to(device=scores.device, dtype=scores.dtype)
    if trace.is_vision:
        from probe.analysis._patches import to_grid

        return to_grid(scores, trace).flatten(-2).float()
    return scores.float()


# --------------------------------------------------------------------------- options
QUERY = MethodOption(
    "query", "auto", (str, int), check=_check_query,
    doc="query rows read: auto, cls, mean, last or a token index",
)


def fusion_option(default: str = "mean") -> MethodOption:
    """``head_fusion``: any registered head fusion, looked up when the option is checked."""
    return MethodOption(
        "head_fusion", default, str, choices=list_head_fusions,
        doc="how the heads of a layer are combined (see probe.list_head_fusions)",
    )


DISCARD_RATIO = MethodOption(
    "discard_ratio", 0.0, float, minimum=0.0, below=1.0,
    doc="fraction in [0, 1) of the weakest weights of each row dropped per layer",
)
START_LAYER = MethodOption(
    "start_layer", 0, int, doc="first model layer included (negative counts from the end)"
)


def rollout_options(head_fusion: str = "mean") -> tuple[MethodOption, ...]:
    """The options of the rollout methods; presets differ only in the default fusion."""
    return (fusion_option(head_fusion), DISCARD_RATIO, START_LAYER, QUERY)


# --------------------------------------------------------------------------- methods
@register_method(
    "attention", modalities=("text", "vision"),
    options=(MethodOption("layer", -1, int, doc="model layer"), fusion_option(), QUERY),
)
def _attention(ctx: MethodContext) -> torch.Tensor:
    """Raw attention of the last layer, mean over heads (DINO, Caron et al. 2021).

    Options: ``layer`` (model layer, default ``-1``), ``head_fusion`` (default ``"mean"``),
    ``query`` (see :func:`reduce_map`).
    """
    from probe.analysis._finite import check_trace_finite
    from probe.analysis._fusion import fuse_heads

    opts = ctx.options
    trace = ctx.trace()
    # one layer, read without stacking the capture's layers
    position = trace.layer_position(opts["layer"])
    layer = trace.layer_attentions(position)  # [batch, head, q, k]
    check_trace_finite(layer[None], "attention", trace, positions=[position])
    return reduce_map(trace, fuse_heads(layer, opts["head_fusion"]), opts["query"], ctx.model)


def _rollout(ctx: MethodContext) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020) with the chosen head fusion.

    Options: ``head_fusion``, ``discard_ratio``, ``start_layer`` (see :func:`probe.rollout`),
    ``query``.
    """
    from probe.analysis._rollout import rollout

    opts = ctx.options
    trace = ctx.trace()
    maps = rollout(trace, opts["head_fusion"], opts["discard_ratio"], opts["start_layer"])
    return reduce_map(trace, maps, opts["query"], ctx.model)


register_method(
    "rollout", modalities=("text", "vision"), options=rollout_options("mean"),
    description="Attention rollout, heads averaged (Abnar & Zuidema 2020); any head_fusion",
)(_rollout)
# presets kept by name (stored evaluation results and user code use them): the same method
# with another default fusion
register_method(
    "rollout-max", modalities=("text", "vision"), options=rollout_options("max"),
    description="Attention rollout with the maximum over heads (head_fusion='max')",
)(_rollout)
register_method(
    "rollout-min", modalities=("text", "vision"), options=rollout_options("min"),
    description="Attention rollout with the minimum over heads (head_fusion='min')",
)(_rollout)


@register_method(
    "flow", modalities=("text", "vision"),
    options=(
        fusion_option(),
        MethodOption(
            "max_tokens", None, int, minimum=1,
            doc=f"size limit in real tokens (exact max-flow is slow); default "
            f"{DEFAULT_MAX_TOKENS} when every query row is read, {DEFAULT_MAX_ROW_TOKENS} "
            "otherwise",
        ),
        START_LAYER,
        QUERY,
    ),
)
def _flow(ctx: MethodContext) -> torch.Tensor:
    """Attention flow (Abnar & Zuidema 2020); exact max-flow of the query rows that are read.

    Only the rows the scores are read from are solved (the CLS row of a ViT, the last token of
    a decoder; every real row for ``query="mean"``), see :func:`probe.attention_flow`.
    Options: ``head_fusion``, ``max_tokens`` (size limit), ``start_layer``, ``query``.
    """
    from probe.analysis._flow import attention_flow

    opts = ctx.options
    trace = ctx.trace()
    weights = query_weights(trace, opts["query"], ctx.model)
    read = weights.ne(0).any(0)
    rows = read.nonzero().flatten().tolist()
    if len(rows) > 4:  # many rows read (query="mean"): the full matrix and its size limit
        rows = None
    maps = attention_flow(
        trace, opts["head_fusion"], max_tokens=opts["max_tokens"], start_layer=opts["start_layer"],
        rows=rows,
    )
    return reduce_map(trace, maps, opts["query"], ctx.model)


@register_method(
    "relevance", modalities=("text", "vision"), uses_gradients=True, options=(QUERY,)
)
def _relevance(ctx: MethodContext) -> torch.Tensor:
    """Gradient-weighted attention relevance (Chefer, Gur & Wolf 2021) for ``ctx.target``.

    Scores are read from ``R - I``, the relevance the layers add: the identity that
    initialises ``R`` only marks each token as relevant to itself (it would give [CLS] a
    score of 1 in its own row, and every token ``1/n`` under ``"mean"``); patch scores of
    CLS-read vision models are unaffected since the CLS key is dropped.

    Options: ``query`` (see :func:`reduce_map`).
    """
    import torch

    opts = ctx.options
    maps, trace = _relevance_and_trace(ctx.model, ctx.inputs, ctx.tokenizer, ctx.target)
    if ctx._trace is None:
        ctx._trace = trace  # geometry for the result; saves a forward pass
    eye = torch.eye(maps.shape[-1], dtype=maps.dtype, device=maps.device)
    return reduce_map(trace, maps - eye, opts["query"], ctx.model)


@register_method("random", modalities=("text", "vision"))
def _random(ctx: MethodContext) -> torch.Tensor:
    """Uniform random scores in ``[0, 1)`` from a generator seeded with ``seed``: the baseline.

    Faithfulness and sanity checks compare every method against it (Adebayo et al. 2018,
    "Sanity Checks for Saliency Maps"; Hooker et al. 2019, ROAR).
    """
    import torch

    generator = torch.Generator().manual_seed(int(ctx.seed))
    if ctx.modality == "vision":  # the unit grid, without capturing attention (CNNs have none)
        from probe.capture import adapter_for

        adapter = adapter_for(ctx.model)
        pixels = adapter.prepare(ctx.inputs).main
        rows, cols = adapter.vision_geometry(pixels).grid
        return torch.rand(int(pixels.shape[0]), rows * cols, generator=generator)
    trace = ctx.trace()
    return torch.rand(trace.batch_size, trace.seq_len, generator=generator)


# --------------------------------------------------------------------------- relevance
def _relevance_and_trace(
    model: nn.Module, inputs: Any, tokenizer: Any, target: Target
) -> tuple[torch.Tensor, Trace]:
    """Chefer relevance ``[batch, query, key]`` and the (gradient-free) trace of the inputs."""
    import torch

    from probe.capture._capture import trace as capture
    from probe.attribution._gradient import differentiable
    from probe.analysis._finite import check_trace_finite
    from probe.analysis._relevance import relevance_from_gradients
    from probe.attribution._targets import resolve_target

    with differentiable(model):
        tr = capture(model, inputs, tokenizer=tokenizer, requires_grad=True)
        tensors = tr.layer_tensors or ()
        device = tensors[0].device if tensors else torch.device("cpu")
        mask = tr.attention_mask.to(device)
        scalar = resolve_target(target, tr.output, model, attention_mask=mask)
        # autograd.grad, not .backward(): the model's parameter .grad stay untouched
        grads = torch.autograd.grad(scalar.sum(), tensors, allow_unused=True)
    attentions = tr.require_attentions()
    check_trace_finite(attentions, "relevance", tr)
    gradients = torch.stack(
        [
            torch.zeros_like(t) if g is None else g.detach()
            for t, g in zip(tensors, grads)
        ]
    )
    maps = relevance_from_gradients(attentions, gradients.to(attentions.device))
    plain = tr.replace(layer_tensors=None)
    return maps, plain


def gradient_relevance(
    model: nn.Module,
    inputs: Any,
    target: Target = None,
    tokenizer: Any = None,
) -> torch.Tensor:
    """Gradient-weighted attention relevance map (Chefer, Gur & Wolf 2021).

    Hila Chefer, Shir Gur and Lior Wolf, "Generic Attention-model Explainability for
    Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV 2021. Captures every
    layer's attention ``A`` in the autograd graph, takes the gradient of the target scalar
    with ``torch.autograd.grad`` (the model's parameter ``.grad`` are never touched) and
    applies :func:`probe.relevance_from_gradients`: ``R = I``,
    ``R <- R + mean_heads((grad * A)^+) @ R`` layer by layer.

    Args:
        model: HF or timm transformer (left unchanged).
        inputs: as for :func:`probe.trace`.
        target: what to explain (see :mod:`probe.attribution._targets`): ``None`` = predicted class.
        tokenizer: text models: the tokenizer.

    Returns:
        ``[batch, query, key]``: row ``i`` is the relevance of every token for token ``i``'s
        output (row 0 / CLS for classifiers).
    """
    maps, _ = _relevance_and_trace(model, inputs, tokenizer, target)
    return maps
