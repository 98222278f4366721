"""Recording attention of one stack of layers as the forward pass produces it.

A :class:`StackRecorder` receives each layer's attention probabilities (whole, or in chunks of
query rows), applies the capture options (layer and head selection, head averaging, storage
dtype, streaming rollout) and assembles an :class:`~probe.capture._trace.AttentionStack` at the end.
A layer recorded whole is kept as the tensor the model computed (no copy) and the layers are
stacked lazily (:class:`~probe.capture._trace.LazyStack`); chunked layers fill one buffer.
Both the HuggingFace and the timm capture sites feed it, so the options behave identically for
every model family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError, UnsupportedModelError
from probe._index import in_range
from probe.capture._trace import AttentionStack, LazyStack, stored_attentions

if TYPE_CHECKING:
    import torch

__all__ = ["CaptureOptions", "StackRecorder", "StreamOptions", "check_unique", "unshare_outputs"]


def check_unique(name: str, given: tuple[int, ...], normalised: tuple[int, ...]) -> None:
    """Raise if two of ``given`` indices name the same layer or head once normalised."""
    seen: dict[int, int] = {}
    for raw, norm in zip(given, normalised):
        if norm in seen:
            raise ProbeError(
                f"{name} {list(given)} name {name.rstrip('s')} {norm} twice ({seen[norm]} and "
                f"{raw}): list each {name.rstrip('s')} once"
            )
        seen[norm] = raw


@dataclass(frozen=True)
class StreamOptions:
    """Options of the rollout folded during a streaming capture (see :func:`probe.rollout`)."""

    head_fusion: str = "mean"
    discard_ratio: float = 0.0
    start_layer: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "head_fusion": self.head_fusion,
            "discard_ratio": self.discard_ratio,
            "start_layer": self.start_layer,
        }


@dataclass(frozen=True)
class CaptureOptions:
    """Validated capture options shared by every stack of a capture."""

    layers: tuple[int, ...] | None = None
    heads: tuple[int, ...] | None = None
    average_heads: bool = False
    dtype: torch.dtype | None = None
    requires_grad: bool = False
    stream: StreamOptions | None = None
    chunk_size: int | None = None
    device: torch.device | None = None
    """Where the attention is gathered (``None``: where the first recorded layer's lives)."""


class StackRecorder:
    """Collects the attention of one stack (``"self"`` or ``"cross"``).

    Args:
        kind: ``"self"`` or ``"cross"``.
        layer_names: module name of every attention layer of the stack, in model order.
        options: the capture options.
        key_mask: ``[batch, key]`` bool, True for real keys; used by the streaming rollout and to
            zero padded query rows.
        query_mask: ``[batch, query]`` bool, True for real queries.
        num_prefix_tokens: tokens the streaming rollout never discards (vision prefix tokens);
            ``-1``: the keys before the last ``grid_tokens`` (HF vision counts its prefix
            from the sequence).
        grid_tokens: with ``num_prefix_tokens=-1``, the patch tokens and the tokens after them.
    """

    def __init__(
        self,
        kind: str,
        layer_names: list[str],
        options: CaptureOptions,
        key_mask: torch.Tensor | None,
        query_mask: torch.Tensor | None,
        num_prefix_tokens: int = 0,
        stream: bool = False,
        grid_tokens: int = 0,
    ) -> None:
        self.kind = kind
        self.layer_names = list(layer_names)
        self.options = options
        self.key_mask = key_mask
        self.query_mask = query_mask
        self._all_queries_real = query_mask is None or bool(query_mask.all())
        self.num_prefix_tokens = num_prefix_tokens
        self.grid_tokens = grid_tokens
        self.stream = options.stream if stream else None
        n = len(layer_names)
        if options.layers is not None:
            self.keep = sorted({layer % n for layer in options.layers})
        else:
            self.keep = list(range(n))
        self.calls = [0] * n
        self.buffer: torch.Tensor | None = None
        self.layers: dict[int, torch.Tensor] = {}  # whole layers, as recorded (no copy)
        self.graph_tensors: dict[int, torch.Tensor] = {}
        self.rollout_state: torch.Tensor | None = None
        self._fused: torch.Tensor | None = None
        self.num_heads = 0
        self._target: torch.device | None = None
        self.dropout_active = False  # a recorded layer ran with attention dropout (training)

    # ---------------------------------------------------------------- selection
    def wants(self, layer: int) -> bool:
        """Whether the weights of ``layer`` are needed at all."""
        if self.stream is not None:
            return layer >= self.stream.start_layer
        return layer in self.keep

    selects_rows = False
    """Whether this recorder may keep only some query rows (see :meth:`wanted_rows`)."""

    def wanted_rows(self, layer: int, q_total: int) -> tuple[int, ...] | None:
        """Query rows of ``layer``'s call with ``q_total`` rows to record; ``None``: all.

        When a tuple, the capture site computes only those rows and calls
        :meth:`record_rows` (subclasses that select rows implement it)."""
        return None

    def record_rows(
        self, layer: int, rows: tuple[int, ...], weights: torch.Tensor, q_total: int
    ) -> None:
        """Record ``weights`` ``[batch, head, len(rows), key]`` of query ``rows`` (one call)."""
        raise NotImplementedError(f"{type(self).__name__} records whole layers only")

    def _select_heads(self, weights: torch.Tensor) -> torch.Tensor:
        """``[batch, head, q, k]`` -> the kept heads (averaged when asked)."""
        if self.options.heads is not None:
            n = weights.shape[1]
            for h in self.options.heads:
                in_range(h, n, name="head", unit="heads", owner=f"layer {self.layer_names[0]!r}")
            idx = [h % n for h in self.options.heads]
            check_unique("heads", self.options.heads, tuple(idx))
            weights = weights[:, idx]
        if self.options.average_heads:
            weights = weights.mean(dim=1, keepdim=True)
        return weights

    def _zero_padded_queries(self, weights: torch.Tensor, q_start: int) -> torch.Tensor:
        if self._all_queries_real:
            return weights
        rows = self.query_mask[:, q_start : q_start + weights.shape[-2]]
        return weights * rows[:, None, :, None].to(device=weights.device, dtype=weights.dtype)

    # ---------------------------------------------------------------- recording
    def check_keys(self, layer: int, q_total: int, keys: int) -> None:
        """The keys of a call are the trace's tokens: self-attention has one key per query,
        cross-attention one per source token (when the source mask is known). Other keys
        (a cache passed in, prefix tuning, prompt or memory vectors, pooled tokens) are no
        token of the trace: refused rather than mislabelled."""
        if self.kind == "self":
            want, what = q_total, f"its {q_total} queries"
        elif self.key_mask is not None:
            want = int(self.key_mask.shape[-1])
            what = f"the {want} source tokens"
        else:
            return
        if keys != want:
            raise UnsupportedModelError(
                f"{self.layer_names[layer]!r} attends to {keys} keys, not one per token of "
                f"{what}: keys that are no token of the trace (a past_key_values cache passed "
                "in, prefix tuning, prompt or memory vectors, pooled tokens) cannot be placed; "
                "trace the model without them"
            )

    def record(self, layer: int, q_start: int, weights: torch.Tensor, q_total: int) -> None:
        """Record the rows ``q_start:q_start + weights.shape[-2]`` of ``layer``'s attention.

        Args:
            layer: index of the layer in this stack.
            q_start: first query row of this chunk.
            weights: ``[batch, head, q_chunk, key]`` attention probabilities.
            q_total: number of query rows of the layer.
        """
        import torch

        self.num_heads = int(weights.shape[1])
        if q_start == 0:
            self.calls[layer] += 1
        self.check_keys(layer, q_total, int(weights.shape[-1]))
        if not self.wants(layer):
            return
        if self.options.requires_grad and self.stream is None:
            if q_start != 0 or weights.shape[-2] != q_total:
                raise ProbeError(
                    "requires_grad=True cannot be combined with chunk_size: capture without "
                    "chunking to keep the attention in the autograd graph"
                )
            # keep the very tensor the model multiplies with the values, so .grad is filled
            weights.retain_grad()
            self.graph_tensors[layer] = weights
            return
        weights = self._zero_padded_queries(weights, q_start)
        if self.stream is not None:
            self._stream_chunk(layer, q_start, weights, q_total)
            return
        kept = self._gathered(self._select_heads(weights.detach()))
        if self.buffer is None and q_start == 0 and kept.shape[-2] == q_total:
            # a whole layer: keep the very tensor (the model does not change it afterwards)
            dtype = self.options.dtype
            self.layers[layer] = kept if dtype is None else kept.to(dtype)
            return
        if self.buffer is None:
            b, h, _, k = kept.shape
            dtype = self.options.dtype or kept.dtype
            self.buffer = torch.zeros(
                (len(self.keep), b, h, q_total, k), dtype=dtype, device=kept.device
            )
        pos = self.keep.index(layer)
        self.buffer[pos, :, :, q_start : q_start + kept.shape[-2]] = kept

    def _gathered(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` on the gathering device: ``options.device``, else the device of the
        first layer recorded (layers of a dispatched model may each live on another device)."""
        if self.options.device is None and self._target is None:
            self._target = tensor.device
        target = self.options.device or self._target
        return tensor if tensor.device == target else tensor.to(target)

    def _stream_chunk(
        self, layer: int, q_start: int, weights: torch.Tensor, q_total: int
    ) -> None:
        import torch

        from probe.analysis._fusion import fuse_heads

        assert self.stream is not None
        fused = self._gathered(
            fuse_heads(self._select_heads(weights.detach()), self.stream.head_fusion,
                       check=False)  # capture records NaN; rollout refuses the result
        )
        if self._fused is None or q_start == 0:
            b, _, k = fused.shape
            self._fused = torch.zeros((b, q_total, k), dtype=torch.float32, device=fused.device)
        self._fused[:, q_start : q_start + fused.shape[-2]] = fused
        if q_start + fused.shape[-2] == q_total:
            self._fold_layer()

    def _fold_layer(self) -> None:
        from probe.analysis._rollout import rollout_step

        assert self.stream is not None and self._fused is not None
        fused, self._fused = self._fused, None  # hand the buffer over: folded in place
        prefix = self.num_prefix_tokens
        if prefix < 0:  # counted from the sequence: the keys before the grid (and suffix)
            prefix = max(int(fused.shape[-1]) - self.grid_tokens, 0)
        self.rollout_state = rollout_step(
            fused,
            self.rollout_state,
            discard_ratio=self.stream.discard_ratio,
            num_prefix_tokens=prefix,
            key_mask=self.key_mask,
            _consume=True,
        )

    # ---------------------------------------------------------------- result
    def check_calls(self) -> None:
        """Every layer must have run exactly once in the forward pass."""
        for i, n in enumerate(self.calls):
            if n > 1:
                raise ProbeError(
                    f"attention layer {self.layer_names[i]!r} ran {n} times in one forward: "
                    "probe.trace captures a single forward pass; pass the whole sequence at once "
                    "instead of generating step by step (probe.generate captures generation); "
                    "a model that reuses an attention layer across depth is supported for "
                    "ALBERT only: open an issue with the model name"
                )

    @property
    def called(self) -> bool:
        return any(self.calls)

    def _check_ran(self, missing: list[str]) -> None:
        """Raise if kept layers (the names in ``missing``) did not run; a streaming capture
        folds the layers that ran."""
        if missing and self.stream is None:
            raise ProbeError(
                f"attention layers {missing[:3]} did not run in the forward pass; probe cannot "
                "capture layers the model skips (check the inputs or select other layers)"
            )

    def _head_indices(self) -> tuple[int, ...] | None:
        """The heads kept, as indices into the layer's heads (``None``: averaged)."""
        if self.options.average_heads:
            return None
        if self.options.heads is not None:
            return tuple(h % self.num_heads for h in self.options.heads)
        return tuple(range(self.num_heads))

    def finish(self) -> AttentionStack:
        """Assemble the recorded layers into an :class:`AttentionStack`."""
        import torch

        self.check_calls()
        self._check_ran([self.layer_names[i] for i in self.keep if self.calls[i] == 0])
        layer_tensors = None
        attentions: torch.Tensor | LazyStack | None = self.buffer
        if self.layers and self.buffer is not None:  # some layers whole, others chunked
            for layer, kept in self.layers.items():
                self.buffer[self.keep.index(layer)] = kept
        elif self.layers:
            attentions = LazyStack([self.layers[i] for i in self.keep])
        if self.options.requires_grad and self.stream is None:
            layer_tensors = tuple(self.graph_tensors[i] for i in self.keep)
            # stacked now, a new tensor: attentions shares no memory with the graph tensors
            attentions = torch.stack(
                [
                    self._gathered(self._select_heads(self._zero_padded_queries(t.detach(), 0)))
                    for t in layer_tensors
                ]
            )
            if self.options.dtype is not None:
                attentions = attentions.to(self.options.dtype)
        if self.stream is not None:
            attentions = None
        return AttentionStack(
            kind=self.kind,  # type: ignore[arg-type]
            attentions=attentions,  # type: ignore[arg-type]
            layer_names=tuple(self.layer_names[i] for i in self.keep),
            layer_indices=tuple(self.keep),
            head_indices=self._head_indices(),
            layer_tensors=layer_tensors,
            num_model_layers=len(self.layer_names),
            num_heads=self.num_heads,
        )


def unshare_outputs(output: Any, stacks: list[AttentionStack | None]) -> None:
    """Stack now every lazily kept stack whose layers the model also returned.

    A model asked for ``output_attentions=True`` (or hooks that keep the maps) hands the very
    tensors probe keeps to the caller, who may change them; stacking copies them, so that
    ``trace.attentions`` stays what the forward computed.

    Args:
        output: the model's output (tensors, tuples, lists and mappings are searched).
        stacks: the stacks of the capture (``None`` entries are skipped).
    """
    lazy = [s for s in stacks if s is not None and isinstance(stored_attentions(s), LazyStack)]
    if not lazy:
        return
    returned = _storages(output, depth=4)
    if not returned:
        return
    for stack in lazy:
        stored = stored_attentions(stack)
        if any(_storage(stored.layer(i)) in returned for i in range(len(stored))):
            stored.stacked()


def _storage(tensor: Any) -> int:
    return int(tensor.untyped_storage().data_ptr())


def _storages(value: Any, depth: int) -> set[int]:
    """Data pointers of the storages of every tensor in ``value`` (nested ``depth`` deep)."""
    import torch

    if isinstance(value, torch.Tensor):
        ptr = _storage(value)
        return {ptr} if ptr else set()
    if depth == 0:
        return set()
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (tuple, list)):
        items = list(value)
    else:
        return set()
    found: set[int] = set()
    for item in items:
        found |= _storages(item, depth - 1)
    return found
