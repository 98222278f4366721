"""The frozen container every analyzer and viewer reads: :class:`Trace`.

A trace is the contract between capture and everything downstream. It carries the attention
tensors and all the geometry needed to interpret them (tokens, words, patch grid, prefix
tokens, padding), so that no analyzer ever has to guess it.

The ``attentions`` of a capture are kept as the per-layer tensors the model computed and
stacked into one ``[layer, batch, head, query, key]`` tensor the first time ``attentions`` is
read (:class:`LazyStack`); :meth:`Trace.layer_attentions` reads one layer without stacking.

The attention tensors are guarded against in-place edits: torch counts every in-place write
to a tensor or any view of it (``tensor._version``); the count is noted when a trace takes a
tensor and checked, in O(1), on every read of ``attentions`` and :meth:`layer_attentions`, so
``trace.attentions[0][...] = 0`` makes the next read raise instead of feeding the edited
values to an analysis. Writes that bypass torch's count (through ``.numpy()``, ``.data``, the
storage, or inference-mode tensors) are not seen. The guard and the lazy stack live in
:mod:`probe.capture._guard`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError
from probe._index import batch_position, in_range, is_int, model_position
from probe.capture._guard import (  # noqa: F401  (LazyStack, ModifiedTraceError re-exported)
    LazyStack,
    ModifiedTraceError,
    _Attentions,
    _check_tensor,
    _checked_state,
)

if TYPE_CHECKING:
    import torch

__all__ = ["AttentionStack", "LazyStack", "ModifiedTraceError", "Trace", "stored_attentions",
           "stored_summary"]

Family = Literal["encoder", "decoder", "encoder-decoder", "vision"]


def stored_attentions(obj: AttentionStack | Trace) -> torch.Tensor | LazyStack | None:
    """What ``obj.attentions`` holds, without stacking a :class:`LazyStack`."""
    return obj.__dict__["_attentions_stored"]


def stored_summary(obj: AttentionStack | Trace, name: str = "attentions") -> str:
    """``"(2, 1, 8, 100, 850) float32"``: the shape and dtype of the attention field ``name``
    as stored, without stacking a :class:`LazyStack` or checking for in-place edits (for
    reprs: cheap, and safe on an edited trace); ``"None"`` when there is none."""
    stored = obj.__dict__.get(f"_{name}_stored")
    if stored is None:
        return "None"
    return f"{tuple(stored.shape)} {str(stored.dtype).removeprefix('torch.')}"


def _layer_of(obj: AttentionStack | Trace, position: int) -> torch.Tensor:
    stored = stored_attentions(obj)
    if stored is None:
        raise ProbeError(
            "this trace was captured in streaming mode and holds only the rollout; "
            "capture again without stream=True to get per-layer attention"
        )
    n = len(stored) if isinstance(stored, LazyStack) else int(stored.shape[0])
    if isinstance(position, bool) or not isinstance(position, int) or not -n <= position < n:
        raise ProbeError(
            f"layer position {position!r} is out of range: the trace holds {n} layers (use "
            f"0..{n - 1}; trace.layer_position(layer) maps a model layer to its position)"
        )
    if isinstance(stored, LazyStack):
        return stored.layer(position)
    _check_tensor(obj, stored)
    return stored[position]


@dataclass(frozen=True)
class AttentionStack:
    """Attention of one stack of layers (encoder self, decoder self, or cross attention).

    Attributes:
        kind: ``"self"`` or ``"cross"``.
        attentions: ``[layer, batch, head, query, key]`` float tensor, or ``None`` when the
            trace was captured in streaming mode (only the rollout was kept). The constructor
            also takes a :class:`LazyStack`, stacked on the first read of ``attentions``
            (then the same tensor on every read); :meth:`layer_attentions` reads one layer
            without stacking.
        layer_names: module name of each kept layer (``len == attentions.shape[0]``).
        layer_indices: index of each kept layer in the model's own numbering.
        head_indices: the model's head index of each kept head, or ``None`` when heads were
            averaged during capture (then the head dimension has size 1).
        layer_tensors: with ``requires_grad=True`` capture, the per-layer tensors
            ``[batch, head, query, key]`` that live in the autograd graph; read their
            ``.grad`` after a backward pass (``attentions`` is a detached stacked copy).
        query_indices: with ``query_rows=`` capture, the query position of each kept row
            (``attentions`` is ``[layer, batch, head, rows, key]``); ``None``: every row.
        num_model_layers: the model's number of layers in this stack (an encoder-decoder's
            ``cross`` and ``decoder`` stacks: its decoder layers), so that a negative layer
            counts from the model's last one; 0 when unknown (then from the last kept).
        num_heads: the model's number of heads per layer of this stack; 0 when unknown.
    """

    kind: Literal["self", "cross"]
    attentions: torch.Tensor | None = _Attentions()  # type: ignore[assignment]
    layer_names: tuple[str, ...]
    layer_indices: tuple[int, ...]
    head_indices: tuple[int, ...] | None
    layer_tensors: tuple[torch.Tensor, ...] | None = None
    query_indices: tuple[int, ...] | None = None
    num_model_layers: int = 0
    num_heads: int = 0

    @property
    def num_layers(self) -> int:
        return len(self.layer_indices)

    def __repr__(self) -> str:
        # not the dataclass repr: it read ``attentions`` (stacking a LazyStack, printing every
        # value, raising on a trace edited in place)
        rows = "" if self.query_indices is None else f", query_indices={_shown(self.query_indices)}"
        grads = "" if self.layer_tensors is None else ", layer_tensors=(...)"
        return (f"AttentionStack(kind={self.kind!r}, attentions={stored_summary(self)}, "
                f"layer_indices={self.layer_indices}, head_indices={self.head_indices}"
                f"{rows}{grads}, num_model_layers={self.num_model_layers}, "
                f"num_heads={self.num_heads})")

    def __getstate__(self) -> dict[str, Any]:
        return _checked_state(self)

    def layer_attentions(self, position: int) -> torch.Tensor:
        """``[batch, head, query, key]``: ``attentions[position]`` without stacking the layers.

        ``position`` indexes the kept layers. The tensor is the trace's own data, as the view
        ``attentions[position]`` is: read it, do not modify it in place.
        """
        return _layer_of(self, position)

    def gradients(self) -> torch.Tensor:
        """Gradients of the kept attention tensors: ``[layer, batch, head, query, key]``.

        Only available after ``trace(..., requires_grad=True)`` and a backward pass through
        the model output. With ``heads=`` capture, the kept heads only (as ``attentions``).
        """
        import torch

        if self.layer_tensors is None:
            raise ProbeError(
                "this trace holds no gradients: capture with probe.trace(..., requires_grad=True) "
                "and call .backward() on a scalar of the output first"
            )
        grads = [t.grad for t in self.layer_tensors]
        if any(g is None for g in grads):
            raise ProbeError(
                "attention gradients are empty: call .backward() on a scalar of trace.output "
                "before reading them"
            )
        stacked = torch.stack(grads)  # type: ignore[arg-type]
        heads = self.head_indices
        if heads is not None and stacked.shape[2] != len(heads):  # heads=[...]: was every head
            stacked = stacked[:, :, list(heads)]
        return stacked


@dataclass(frozen=True)
class Trace:
    """Everything captured from one forward pass. Immutable; analyzers return new objects.

    Attributes:
        attentions: self-attention ``[layer, batch, head, query, key]`` of the main stack:
            the encoder for encoders and encoder-decoders, the decoder for decoder-only
            models, the transformer for vision models. ``None`` in streaming mode. A capture
            keeps the layers apart and stacks them on the first read (a :class:`LazyStack`:
            one copy, once; the same tensor on every later read, which shares memory with
            nothing the model returned); :meth:`layer_attentions` reads one layer without
            stacking.
        tokens: per batch item, the token strings (text models), padding included.
        words: per batch item, the words of the original text (text models with a fast
            tokenizer), in order.
        word_ids: per batch item, for each token the index into ``words`` it belongs to, or
            ``None`` for special and padding tokens.
        token_spans: per batch item, for each token the ``(start, end)`` characters of its
            word (``words[b][word_ids[b][t]]``) that it covers, ``None`` for tokens of no
            word; ``None`` when the text's character offsets are unknown (ids or a tokenizer
            output passed without the text). :func:`probe.group_words` splits words at them.
        attention_mask: ``[batch, key]`` bool, True where a real (non-padding) token is.
        special_tokens_mask: ``[batch, key]`` bool, True for [CLS]/[SEP]/BOS/EOS and vision
            prefix tokens.
        num_prefix_tokens: tokens before the patch tokens (vision: CLS, distillation and
            register tokens); 0 for text.
        num_suffix_tokens: tokens after the patch tokens (YOLOS's detection tokens); 0 for
            every other model. The patches are tokens ``num_prefix_tokens`` to
            ``num_prefix_tokens + rows * cols``.
        grid: ``(rows, cols)`` of the patch grid for vision models.
        image_size: ``(height, width)`` of the model input, vision models.
        model_name: the model's name or path.
        family: ``"encoder"``, ``"decoder"``, ``"encoder-decoder"`` or ``"vision"``.
        layer_names, layer_indices, head_indices: see :class:`AttentionStack`.
        decoder: decoder self-attention stack of encoder-decoder models.
        cross: cross-attention stack of encoder-decoder models ``[layer, batch, head,
            target, source]``; for image-to-text models the source is the encoder's tokens
            (``num_prefix_tokens`` of them, then the patches on ``grid``).
        decoder_tokens: per batch item, the decoder token strings (encoder-decoder).
        byte_level: the tokens are byte-level BPE symbols (GPT-2, RoBERTa, BART, Llama 3:
            ``Ġthe``); :attr:`labels` decodes them for display.
        unk_token: the tokenizer's unknown token (``[UNK]``, ``<unk>``), ``None`` when it has
            none or is unknown: a word made only of it reached the model as a placeholder
            (:func:`probe.analysis._unknown.unknown_word_indices`).
        rollout_result: ``[batch, query, key]`` attention rollout folded layer by layer in
            streaming mode, and ``rollout_options`` the options it was computed with.
        output: the model's output object (logits etc.) from the same forward pass.
        layer_tensors: see :class:`AttentionStack` (gradient capture).
        input_ids: ``[batch, seq]`` token ids (text models).
        pixel_values: ``[batch, channel, height, width]`` model input (vision models), a copy.
        query_indices: with ``probe.trace(..., query_rows=...)``, the query position of each
            kept row of ``attentions`` (then ``[layer, batch, head, rows, key]``); ``None``
            when every query row was kept (a square ``[..., seq, seq]`` map).
        windows: windowed-attention models (Swin): one
            :class:`~probe.capture._windows.WindowBlock` per kept block, its raw windows
            ``[batch * windows, head, N, N]`` with their geometry; then ``grid`` is the patch
            grid of the first stage and reading ``attentions`` raises (blocks of different
            stages do not stack). ``None`` for every other model.
    """

    attentions: torch.Tensor | None = _Attentions()  # type: ignore[assignment]
    layer_names: tuple[str, ...]
    layer_indices: tuple[int, ...]
    head_indices: tuple[int, ...] | None
    model_name: str
    family: Family
    attention_mask: torch.Tensor
    special_tokens_mask: torch.Tensor
    num_prefix_tokens: int = 0
    tokens: tuple[tuple[str, ...], ...] | None = None
    words: tuple[tuple[str, ...], ...] | None = None
    word_ids: tuple[tuple[int | None, ...], ...] | None = None
    token_spans: tuple[tuple[tuple[int, int] | None, ...], ...] | None = None
    grid: tuple[int, int] | None = None
    image_size: tuple[int, int] | None = None
    decoder: AttentionStack | None = None
    cross: AttentionStack | None = None
    decoder_tokens: tuple[tuple[str, ...], ...] | None = None
    rollout_result: torch.Tensor | None = None
    rollout_options: dict[str, Any] | None = None
    output: Any = field(default=None, repr=False, compare=False)
    layer_tensors: tuple[torch.Tensor, ...] | None = field(default=None, repr=False)
    input_ids: torch.Tensor | None = field(default=None, repr=False)
    pixel_values: torch.Tensor | None = field(default=None, repr=False)
    num_heads: int = 0
    num_model_layers: int = 0
    query_indices: tuple[int, ...] | None = None
    byte_level: bool = False
    windows: tuple[Any, ...] | None = field(default=None, repr=False)
    num_suffix_tokens: int = 0
    unk_token: str | None = None

    # ------------------------------------------------------------------ labels
    @property
    def labels(self) -> tuple[tuple[str, ...], ...] | None:
        """Per batch item, one readable display label per token (what figures show), or
        ``None`` without tokens. The token strings themselves, except for byte-level
        tokenizers, whose symbols are decoded (:func:`probe._text.byte_level_labels`:
        ``Ġthe`` -> ``▁the``, a character split over tokens whole on its first token and
        ``<0xAD>`` escapes on the rest). ``tokens`` stays the tokenizer's own strings."""
        return _labels(self.tokens, self.byte_level)

    @property
    def decoder_labels(self) -> tuple[tuple[str, ...], ...] | None:
        """:attr:`labels` of ``decoder_tokens`` (encoder-decoders)."""
        return _labels(self.decoder_tokens, self.byte_level)

    # ------------------------------------------------------------------ geometry
    @property
    def batch_size(self) -> int:
        return int(self.attention_mask.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.attention_mask.shape[1])

    @property
    def num_layers(self) -> int:
        """Number of kept layers (the first dimension of ``attentions``)."""
        return len(self.layer_indices)

    @property
    def is_vision(self) -> bool:
        return self.family == "vision"

    @property
    def encoder(self) -> AttentionStack:
        """The main self-attention stack as an :class:`AttentionStack`."""
        return AttentionStack(
            kind="self",
            attentions=stored_attentions(self),  # type: ignore[arg-type]
            layer_names=self.layer_names,
            layer_indices=self.layer_indices,
            head_indices=self.head_indices,
            layer_tensors=self.layer_tensors,
            query_indices=self.query_indices,
            num_model_layers=self.num_model_layers,
            num_heads=self.num_heads,
        )

    @property
    def has_attentions(self) -> bool:
        """Whether the trace holds per-layer attention (False in streaming mode), without
        stacking it."""
        return stored_attentions(self) is not None

    def require_attentions(self) -> torch.Tensor:
        """``attentions`` ``[layer, batch, head, query, key]`` with every query row.

        Raises:
            ProbeError: a streaming trace (no attention kept) or a row-selected trace (only
                some query rows kept, ``query_rows=``), which analyses of the whole
                attention matrix cannot use.
        """
        if self.attentions is None:
            raise ProbeError(
                "this trace was captured in streaming mode and holds only the rollout; "
                "capture again without stream=True to get per-layer attention"
            )
        if self.query_indices is not None:
            raise ProbeError(
                f"this trace keeps only query rows {_shown(self.query_indices)} (query_rows=...) "
                "and this analysis needs every row of the attention matrix: capture again "
                "without query_rows"
            )
        return self.attentions

    def row_positions(self, rows: Sequence[int]) -> list[int]:
        """Where the query positions ``rows`` (``0..seq_len - 1``) sit in the query dimension
        of ``attentions``: ``rows`` themselves in a full trace, their places in
        ``query_indices`` in a row-selected one (``query_rows=``) that kept them all.

        Raises:
            ProbeError: a streaming trace, a row that is no integer or beyond the sequence
                (negative counts from the end), or a row-selected trace without some of
                ``rows``.
        """
        n = self.seq_len
        for r in rows:
            if not is_int(r):
                raise ProbeError(f"query rows must be integers (token positions), got {r!r}")
        rows = [in_range(int(r), n, name="query row", unit="query rows", owner="the input")
                for r in rows]
        if stored_attentions(self) is None:
            self.require_attentions()  # raises: a streaming trace
        if self.query_indices is None:
            return rows
        kept = {q: i for i, q in enumerate(self.query_indices)}
        missing = [r for r in rows if r not in kept]
        if missing:
            raise ProbeError(
                f"this trace keeps only query rows {_shown(self.query_indices)} (query_rows=...) "
                f"and this analysis needs rows {_shown(missing)}: capture again with query_rows "
                "including them, or without query_rows"
            )
        return [kept[r] for r in rows]

    def require_rows(self, rows: Sequence[int]) -> torch.Tensor:
        """``[layer, batch, head, len(rows), key]``: the attention of the query positions
        ``rows`` (``0..seq_len - 1``), in that order, from a full trace or from a row-selected
        one that kept them all (see :meth:`row_positions`). A new tensor, the same values
        either way.

        Raises:
            ProbeError: a streaming trace, or a row-selected trace without some of ``rows``.
        """
        positions = self.row_positions(rows)
        return self.attentions[:, :, :, positions]

    def layer_attentions(self, position: int) -> torch.Tensor:
        """``[batch, head, query, key]``: ``attentions[position]`` without stacking the layers.

        ``position`` indexes the kept layers (:meth:`layer_position` maps a model layer to
        it). The tensor is the trace's own data, as the view ``attentions[position]`` is:
        read it, do not modify it in place.

        Raises:
            ProbeError: a streaming trace (no per-layer attention) or a position out of range.
        """
        return _layer_of(self, position)

    def gradients(self) -> torch.Tensor:
        """``[layer, batch, head, query, key]`` gradients of the main stack's attention."""
        return self.encoder.gradients()

    def layer_position(self, layer: int) -> int:
        """Position in ``attentions`` of the model's layer ``layer`` (negative counts back from
        the model's last, ``num_model_layers``; from the last kept when that is unknown, 0, as
        :func:`probe._index.model_position` does everywhere).

        Raises:
            ProbeError: not an integer, beyond the model, or not kept (the message names the
                kept layers).
        """
        return model_position(layer, self.layer_indices, self.num_model_layers)

    def head_position(self, head: int) -> int:
        """Position in the head dimension of the model's head ``head`` (negative counts back
        from the model's last, ``num_heads``; from the last kept when that is unknown, 0).

        Raises:
            ProbeError: heads averaged during capture, not an integer, beyond the model, or
                not kept.
        """
        if self.head_indices is None:
            raise ProbeError(
                "heads were averaged during capture; capture again with heads=None to select "
                "a single head"
            )
        return model_position(head, self.head_indices, self.num_heads, name="head",
                              unit="heads per layer")

    def valid_length(self, batch_index: int = 0) -> int:
        """Number of real (non-padding) tokens of batch item ``batch_index`` (negative counts
        from the end).

        Raises:
            ProbeError: ``batch_index`` is no integer or beyond the batch.
        """
        b = batch_position(batch_index, self.batch_size)
        return int(self.attention_mask[b].sum())

    def __getstate__(self) -> dict[str, Any]:
        return _checked_state(self)

    def replace(self, **changes: Any) -> Trace:
        """A new trace with some fields changed (the original is untouched)."""
        if "attentions" not in changes:  # kept as stored: not stacked by a copy
            stored = stored_attentions(self)
            if stored is not None and not isinstance(stored, LazyStack):
                # the new trace notes the tensor's write count afresh: an edit made before
                # must be refused here, or the new trace would pass it off as captured
                _check_tensor(self, stored)
            changes["attentions"] = stored
        return replace(self, **changes)

    def __repr__(self) -> str:
        # one line of counts; reads no attention value (no LazyStack stacked, no edit check)
        shape = (f"{len(self.windows)} windowed blocks" if self.windows is not None
                 else stored_summary(self))

        def of(kept: Sequence[int] | None, total: int) -> str:
            if kept is None:
                return "averaged"
            return f"{len(kept)}/{total}" if total and len(kept) != total else str(len(kept))

        rows = "" if self.query_indices is None else f", query_rows={len(self.query_indices)}"
        extra = ""
        if self.grid is not None:
            extra = f", grid={self.grid}, num_prefix_tokens={self.num_prefix_tokens}"
            if self.num_suffix_tokens:
                extra += f", num_suffix_tokens={self.num_suffix_tokens}"
        if self.decoder is not None or self.cross is not None:
            target = self.decoder if self.decoder is not None else self.cross
            extra += f", decoder_tokens={_stack_rows(target)}"
        return (
            f"Trace(model={self.model_name!r}, family={self.family!r}, "
            f"batch={self.batch_size}, tokens={self.seq_len}{rows}, "
            f"layers={of(self.layer_indices, self.num_model_layers)}, "
            f"heads={of(self.head_indices, self.num_heads)}, attentions={shape}{extra})"
        )


def _stack_rows(stack: AttentionStack) -> int | None:
    """The query count of ``stack`` as stored (no stacking); ``None`` when not kept."""
    stored = stored_attentions(stack)
    if stored is None:
        return None
    return int(stored.shape[3])


def _shown(rows: Sequence[int]) -> str:
    """``[0, 3, 5]``, or the first six and ``...``: row indices for messages."""
    rows = [int(r) for r in rows]
    return str(rows) if len(rows) <= 6 else f"[{', '.join(map(str, rows[:6]))}, ...]"


def _labels(rows: tuple[tuple[str, ...], ...] | None,
            byte_level: bool) -> tuple[tuple[str, ...], ...] | None:
    if rows is None or not byte_level:
        return rows
    from probe._text import byte_level_labels

    return tuple(byte_level_labels(row) for row in rows)
