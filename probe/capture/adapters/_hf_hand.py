"""HuggingFace attention written by hand: families whose attention module computes its softmax
itself instead of dispatching through ``ALL_ATTENTION_FUNCTIONS``.

probe cannot route such a module through its own attention function, so it reads the weights
where the model itself hands them on, from the model's own and only path:

- ``probs="<submodule>"``: the dropout module that receives the softmax (an ``nn.Dropout``,
  identity in eval mode). A forward hook records its output, the very tensor the model then
  multiplies with the values (DeBERTa, MPNet, RoFormer, Megatron-BERT, RemBERT, ConvBERT,
  I-BERT, BLOOM, GPT-J, CodeGen, GPT-Neo, OpenAI GPT, BigBird-Pegasus with full attention);
- ``probs=<index>``: the weights the module returns at that index of its output tuple (Falcon,
  MPT, XGLM; FSMT's, MVP's, XLM's and FlauBERT's call is given ``output_attentions=True`` so
  that it returns them). Falcon, MPT, XLM and FlauBERT return the tensor they multiply with
  the values; XGLM, FSMT and MVP return the softmax before a *functional* dropout (a view of
  the tensor they use, so gradients reach it), and a capture with that dropout active
  (training mode, ``p > 0``) is refused: the weights they used cannot be seen;
- ``probs=<index>`` with ``convert=``: the module returns its weights in another layout, and
  the converter builds the ``[batch, head, query, key]`` matrix from them and the call's
  keyword arguments (Longformer's sliding-window band and global probabilities, see
  :mod:`~probe.capture.adapters._hf_longformer`). That matrix is assembled, not the tensor the
  model multiplies with the values: ``requires_grad=True`` is refused for such a model.

A class that calls ``torch.nn.functional.scaled_dot_product_attention`` itself (Data2Vec-Vision's
SDPA class, a subclass of its eager class) is registered with ``unfused=<eager class>``: for
the capture the module runs as that class (its ``__class__`` switched and restored in
``finally``), the model's own unfused path over the same weights, and is hooked there.

A class may also be registered only to be refused with a precise reason (BigBird-Pegasus's
block-sparse attention; Falcon with ALiBi loaded with SDPA, whose eager branch computes other
attention than its SDPA branch; the approximate attentions of Nystromformer, YOSO and MRA).

Nothing about the model's math is re-implemented: the hooked tensor is the model's own graph
tensor, so ``requires_grad`` captures (gradient relevance) read its gradient. A module whose
class or code path is not listed here (flash-attention subclasses, a custom kernel) is not a
site, and such a model stays refused. Modules that branch on ``config._attn_implementation ==
"sdpa"`` (Falcon) take their own eager branch during a capture, because
:func:`~probe.capture.adapters._hf_sites.intercept_hf` points every config of the model at
probe's entry (with transformers' eager mask) for the duration of the forward.

A new family plugs in with one :func:`register_hand_attention` call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError, UnsupportedModelError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.capture._recorder import StackRecorder
    from probe.capture.adapters._base import Site

__all__ = [
    "HandAttention",
    "check_hand_site",
    "hand_attention",
    "intercept_hand",
    "no_gradients",
    "register_hand_attention",
]


@dataclass(frozen=True)
class HandAttention:
    """Where one hand-written attention class hands on its probabilities.

    Attributes:
        family: the transformers model folder (``"deberta_v2"``), naming the file
            ``transformers.models.<family>.modeling_<family>`` the class is defined in.
        cls: the attention module's class name (matched exactly: subclasses with another
            forward, e.g. flash-attention variants, are not sites).
        probs: the submodule (a dropout) whose output is the ``[batch, head, query, key]``
            probabilities, or the index of the weights in the module's output tuple; ``None``
            for a class registered only to be refused with its reason (``refuse``).
        causal: its self-attention is causal (a decoder): a constant, or the name of a bool
            attribute of the module (``"is_decoder"``).
        dropout: with ``probs`` an index, a dropout some code paths apply *before* returning
            the weights: a submodule (Falcon's ALiBi branch) or a float attribute, the
            probability of a functional dropout (Longformer). When it is active (training mode,
            ``p > 0``) the recorder notes it (and probe warns), as for ``probs`` a submodule.
        functional_dropout: with ``probs`` an index, the module attribute holding the
            probability of a functional dropout applied *after* the returned weights; a
            capture with it active is refused (the weights the model used cannot be seen).
        request: with ``probs`` an index, the keyword the module's call takes to return its
            weights (FSMT's ``output_attentions``): set to ``True`` for that call only (the
            module computes the same output either way; its callers drop the weights unless
            the model was asked for them).
        refuse: given a module and the model holding it, the reason it cannot be captured
            exactly, or ``None`` (checked when the sites are found, before anything is
            switched).
        unfused: the name of a class in the same file whose ``forward`` is the model's own
            unfused path over the same submodules (a fused subclass's parent): the module
            runs as that class during the capture, and is hooked as that class is.
        convert: with ``probs`` an index, ``convert(module, kwargs, output, keys)`` builds the
            ``[batch, head, query, key]`` weights from the call's keyword arguments and output
            tuple; ``keys`` is the number of tokens the trace covers when the recorder knows
            it (the length of the attention mask the user passed), else ``None``.
        layout: with ``convert``, what the weights are assembled from, for messages (``"its
            band and global probabilities"``); default: the family's own layout.
    """

    family: str
    cls: str
    probs: str | int | None
    causal: bool | str = False
    dropout: str | None = None
    functional_dropout: str | None = None
    request: str | None = None
    refuse: Callable[[nn.Module, nn.Module], str | None] | None = None
    unfused: str | None = None
    convert: Callable[[nn.Module, dict[str, Any], Any, int | None], torch.Tensor] | None = None
    layout: str | None = None

    def is_causal(self, module: nn.Module) -> bool:
        if isinstance(self.causal, str):
            return bool(getattr(module, self.causal, False))
        return self.causal


_REGISTRY: dict[tuple[str, str], HandAttention] = {}


def register_hand_attention(
    family: str,
    cls: str,
    probs: str | int | None,
    *,
    causal: bool | str = False,
    dropout: str | None = None,
    functional_dropout: str | None = None,
    request: str | None = None,
    refuse: Callable[[nn.Module, nn.Module], str | None] | None = None,
    unfused: str | None = None,
    convert: Callable[[nn.Module, dict[str, Any], Any, int | None], torch.Tensor] | None = None,
    layout: str | None = None,
    file: str | None = None,
) -> HandAttention:
    """Register one hand-written attention class (see :class:`HandAttention`); ``file`` names
    its modeling file when that is not ``modeling_<family>`` (``"modeling_data2vec_vision"``)."""
    spec = HandAttention(
        family, cls, probs, causal, dropout, functional_dropout, request, refuse, unfused, convert,
        layout,
    )
    _REGISTRY[(f"transformers.models.{family}.{file or 'modeling_' + family}", cls)] = spec
    return spec


def no_gradients(module: nn.Module, spec: HandAttention) -> str:
    """Why a ``requires_grad`` capture of a ``convert`` site is refused: one line naming the
    module, what its matrix is assembled from and the family."""
    layout = spec.layout or f"the weights {spec.family} returns in its own layout"
    return (f"{type(module).__name__}'s [query, key] matrix is assembled from {layout} "
            f"({spec.family} attention), not a tensor the model uses, so gradients cannot reach "
            "it: requires_grad=True and attention-gradient methods (probe.gradient_relevance) "
            "do not apply; capture with requires_grad=False")


def hand_attention(module: Any) -> HandAttention | None:
    """The registration of ``module``'s class, or ``None`` if it is not a hand-written site."""
    kind = type(module)
    return _REGISTRY.get((kind.__module__, kind.__name__))


def check_hand_site(module: Any, model: Any) -> None:
    """Raise if a registered hand-written ``module`` of ``model`` cannot be captured exactly.

    Raises:
        UnsupportedModelError: with the family's reason.
    """
    spec = hand_attention(module)
    if spec is None:
        return
    reason = spec.refuse(module, model) if spec.refuse is not None else None
    if reason is None and spec.probs is None:
        reason = f"{type(module).__name__}'s attention cannot be captured"
    if reason is not None:
        raise UnsupportedModelError(reason)


# --------------------------------------------------------------------------- the families
# DeBERTa and DeBERTa-v2/v3: ``attention_probs = self.dropout(softmax(...))``
register_hand_attention("deberta", "DisentangledSelfAttention", "dropout")
register_hand_attention("deberta_v2", "DisentangledSelfAttention", "dropout")
# BigBird-Pegasus's encoder built with ``attention_type="original_full"``; its block-sparse
# attention (the default) has no [query, key] matrix: refused with the switch that has one
register_hand_attention("bigbird_pegasus", "BigBirdPegasusSelfAttention", "dropout")
register_hand_attention(
    "bigbird_pegasus", "BigBirdPegasusBlockSparseAttention", None,
    refuse=lambda *_: (
        "BigBird-Pegasus's block-sparse encoder attention has no [query, key] matrix probe can "
        "capture: use full attention (attention_type='original_full' in the config, or "
        "model.get_encoder().set_attention_type('original_full'): same weights, other outputs "
        "on inputs long enough for block-sparse attention)"
    ),
)
# MPNet (all-mpnet-base-v2): relative position bias added by hand, then ``self.dropout``
register_hand_attention("mpnet", "MPNetSelfAttention", "dropout")
# RoFormer: rotary positions; a decoder when built with ``is_decoder=True``
register_hand_attention("roformer", "RoFormerSelfAttention", "dropout", causal="is_decoder")
# BLOOM: ALiBi, softmax in float32, then ``self.attention_dropout``
register_hand_attention("bloom", "BloomAttention", "attention_dropout", causal=True)
# GPT-J and CodeGen: softmax in float32, cast, then ``self.attn_dropout`` (eager class only;
# ``GPTJFlashAttention2`` is another class and not a site)
register_hand_attention("gptj", "GPTJAttention", "attn_dropout", causal=True)
register_hand_attention("codegen", "CodeGenAttention", "attn_dropout", causal=True)
# Megatron-BERT and RemBERT (BERT's attention, written out in their own files), ConvBERT (the
# attention half of its mixed heads) and I-BERT (its softmax is integer-only when
# ``quant_mode=True``, ``torch.softmax`` otherwise): ``self.dropout(softmax(...))``
register_hand_attention("megatron_bert", "MegatronBertSelfAttention", "dropout",
                        causal="is_decoder")
register_hand_attention("rembert", "RemBertSelfAttention", "dropout", causal="is_decoder")
register_hand_attention("convbert", "ConvBertSelfAttention", "dropout")
register_hand_attention("ibert", "IBertSelfAttention", "dropout")
# OpenAI GPT and GPT-Neo (global and local layers: the window is in the causal mask):
# softmax, then ``self.attn_dropout``
register_hand_attention("openai", "Attention", "attn_dropout", causal=True)
register_hand_attention("gpt_neo", "GPTNeoSelfAttention", "attn_dropout", causal=True)
# Approximate attention: no [query, key] softmax matrix exists to capture
for _family, _cls, _how in (
    ("nystromformer", "NystromformerSelfAttention",
     "Nystromformer approximates softmax attention through landmark tokens (three smaller "
     "softmaxes)"),
    ("yoso", "YosoSelfAttention",
     "YOSO replaces softmax attention with locality-sensitive-hashing collision probabilities"),
    ("mra", "MraSelfAttention",
     "MRA approximates softmax attention at several resolutions (blocks of the matrix)"),
):
    register_hand_attention(
        _family, _cls, None,
        refuse=lambda *_, how=_how: (f"{how}: it never forms the [query, key] attention matrix "
                                     "probe captures, not supported"),
    )
# Falcon: returns the weights it multiplies with the values on its eager branch (rotary: the
# softmax, never dropped out; ALiBi: after its ``attention_dropout`` module)
def _falcon_alibi_on_sdpa(module: nn.Module, _model: nn.Module) -> str | None:
    """Falcon's ALiBi branches disagree: refuse an SDPA-loaded one (see the README)."""
    config = module.config
    if getattr(config, "alibi", False) and config._attn_implementation == "sdpa":
        return (
            "Falcon with ALiBi loaded with SDPA: its eager branch, the only one that hands out "
            "its weights, computes other attention (transformers 5 adds the ALiBi bias there "
            "twice), so capturing would change its outputs; load it with "
            "attn_implementation='eager' to capture that branch exactly"
        )
    return None


register_hand_attention("falcon", "FalconAttention", 1, causal=True, dropout="attention_dropout",
                        refuse=_falcon_alibi_on_sdpa)
# XGLM: returns a view of the softmax, then applies a functional dropout of ``self.dropout``
register_hand_attention("xglm", "XGLMAttention", 1, causal="is_decoder",
                        functional_dropout="dropout")
# MPT (ALiBi): returns the weights it multiplies with the values, after a functional dropout
# of probability ``attn_dropout_p``
register_hand_attention("mpt", "MptAttention", 1, causal=True, dropout="attn_dropout_p")
# XLM and FlauBERT: return the weights they multiply with the values (after a functional
# dropout of probability ``self.dropout``) when their call asks for them; a causal checkpoint
# (``config.causal``, XLM's CLM models) is a decoder (see ``_is_causal`` in ``_hf_text``)
register_hand_attention("xlm", "MultiHeadAttention", 1, dropout="dropout",
                        request="output_attentions")
register_hand_attention("flaubert", "MultiHeadAttention", 1, dropout="dropout",
                        request="output_attentions")
# MVP (BART with optional prompts): returns the softmax (before a functional dropout) when its
# call asks for the weights
def _mvp_prompts(_module: nn.Module, model: nn.Module) -> str | None:
    """MVP's prompts (``use_prompt=True``) are keys before the tokens, in no token's place."""
    config = getattr(model, "config", None)
    if getattr(config, "use_prompt", False):
        return (f"{type(model).__name__} is built with prompts (use_prompt=True): its attention "
                f"layers attend to {config.prompt_length} prompt vectors before the tokens, "
                "keys that are no token of the trace, not supported; load it with "
                "use_prompt=False")
    return None


register_hand_attention("mvp", "MvpAttention", 1, causal="is_decoder", functional_dropout="dropout",
                        request="output_attentions", refuse=_mvp_prompts)
# FSMT: returns the softmax (before a functional dropout) when its call asks for the weights
register_hand_attention("fsmt", "Attention", 1, functional_dropout="dropout",
                        request="output_attentions")
# TrOCR's decoder (self- and cross-attention, the decoder of image-to-text models): returns the
# softmax (before a functional dropout) when its call asks for the weights
register_hand_attention("trocr", "TrOCRAttention", 1, functional_dropout="dropout",
                        request="output_attentions")


# Data2Vec-Vision (BEiT-like): the eager class softmaxes, then ``self.dropout``; its SDPA class
# (the default) calls torch's SDPA itself: it runs as the eager class for the capture
_D2V = dict(file="modeling_data2vec_vision")
register_hand_attention("data2vec", "Data2VecVisionSelfAttention", "dropout", **_D2V)
register_hand_attention("data2vec", "Data2VecVisionSdpaSelfAttention", "dropout",
                        unfused="Data2VecVisionSelfAttention", **_D2V)


# --------------------------------------------------------------------------- capture
def _checked(weights: Any, site: Site) -> torch.Tensor:
    import torch

    if not isinstance(weights, torch.Tensor) or weights.dim() != 4:
        got = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise UnsupportedModelError(
            f"attention module {site.name!r} handed on {got} instead of [batch, head, query, "
            "key] weights: this version of the model is not supported; open an issue with the "
            "model name"
        )
    return weights


def _on_dropout(site: Site, recorder: StackRecorder, record: bool) -> Any:
    """Forward hook on a dropout module after the softmax: notes an active dropout (training
    mode, ``p > 0``; the recorder then warns) and, when ``record``, records its output (the
    weights the model uses, after dropout in training mode)."""

    def hook(mod: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        if mod.training and float(getattr(mod, "p", 0.0)) > 0.0:
            recorder.dropout_active = True
        if record:
            weights = _checked(out, site)
            recorder.record(site.layer, 0, weights, int(weights.shape[-2]))

    return hook


def _probability(module: nn.Module, name: str | None) -> float:
    """The dropout probability held in ``module``'s attribute ``name`` (0 without one)."""
    return float(getattr(module, name, 0.0) or 0.0) if name else 0.0


def _on_output(site: Site, spec: HandAttention, recorder: StackRecorder) -> Any:
    """Forward hook (with keyword arguments) on the attention module: records the weights it
    returns, converted by ``spec.convert`` when it has one."""
    from torch.nn import Module

    def hook(mod: nn.Module, _args: Any, kwargs: dict[str, Any], out: Any) -> None:
        if mod.training and _probability(mod, spec.functional_dropout) > 0.0:
            raise ProbeError(
                f"{type(mod).__name__} applies attention dropout after the weights it returns "
                "(training mode): probe cannot see the weights it used; call model.eval()"
            )
        if spec.dropout is not None and not isinstance(getattr(mod, spec.dropout), Module):
            if mod.training and _probability(mod, spec.dropout) > 0.0:
                recorder.dropout_active = True  # a functional dropout before the weights
        weights = out[spec.probs] if isinstance(out, tuple) else None
        if spec.convert is not None and weights is not None:
            keys = None if recorder.key_mask is None else int(recorder.key_mask.shape[-1])
            weights = spec.convert(mod, kwargs, out, keys)
        weights = _checked(weights, site)
        recorder.record(site.layer, 0, weights, int(weights.shape[-2]))

    return hook


def _requesting(keyword: str) -> Any:
    """Forward pre-hook: the module's call gets ``keyword=True`` (it returns its weights)."""

    def hook(_mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return args, {**kwargs, keyword: True}

    return hook


@contextmanager
def intercept_hand(sites: list[Site], recorders: dict[str, StackRecorder]) -> Iterator[None]:
    """Record the hand-written attention ``sites`` (those with a :func:`hand_attention`
    registration) into ``recorders`` for the duration of the block. Each layer is recorded
    whole (``chunk_size`` does not apply; a row-selecting recorder picks its rows from it).

    Hooks are removed and switched classes restored in ``finally``, also when the forward
    raises.
    """
    import sys

    from torch.nn import Module

    handles = []
    classes: dict[int, tuple[nn.Module, type]] = {}  # module -> its own class (``unfused``)
    try:
        for site in sites:
            spec = hand_attention(site.module)
            if spec is None or spec.probs is None:  # refused when the sites were found
                continue
            if spec.unfused is not None and id(site.module) not in classes:
                own = type(site.module)
                classes[id(site.module)] = (site.module, own)
                site.module.__class__ = getattr(sys.modules[own.__module__], spec.unfused)
            recorder = recorders[site.stack]
            if isinstance(spec.probs, str):
                dropout = getattr(site.module, spec.probs)
                handles.append(dropout.register_forward_hook(_on_dropout(site, recorder, True)))
                continue
            if spec.convert is not None and recorder.options.requires_grad:
                raise ProbeError(no_gradients(site.module, spec))
            handles.append(site.module.register_forward_hook(
                _on_output(site, spec, recorder), with_kwargs=True))
            if spec.request is not None:
                handles.append(site.module.register_forward_pre_hook(
                    _requesting(spec.request), with_kwargs=True))
            dropout = getattr(site.module, spec.dropout) if spec.dropout is not None else None
            if isinstance(dropout, Module):
                handles.append(dropout.register_forward_hook(_on_dropout(site, recorder, False)))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module, own in classes.values():
            module.__class__ = own
