"""Recording attention while a model generates with its KV cache on.

During ``generate`` every attention layer of the generating stack runs once per step: the first
step over the whole prompt (query length ``P``), every later step over the one new token
(query length 1) against the cached keys, or, without a KV cache (``use_cache=False``, or a
config whose ``use_cache`` is off such as MPT's), over the whole sequence so far again
(query length ``P + step``), of which the last row is the new token's. A
:class:`GenerationRecorder` keeps, per layer and step, the *last* query row of the step (the
row whose output predicts the next token) and, when asked, the other rows of the first step
(the prompt attending to itself). Memory grows with ``rows x keys``, never with ``keys^2``
unless the prompt rows are kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from probe._errors import ProbeError
from probe.capture._recorder import CaptureOptions, StackRecorder

if TYPE_CHECKING:
    import torch

__all__ = ["GenerationRecorder"]


class GenerationRecorder(StackRecorder):
    """Per-step rows of one generating stack (decoder self-attention or cross-attention).

    Args:
        kind: ``"self"`` or ``"cross"``.
        layer_names: module name of every attention layer of the stack, in model order.
        options: the capture options (layers, heads, average_heads, dtype).
        prompt_mask: ``[batch, prompt]`` bool, True for real prompt tokens (zeroes padded
            prompt query rows, as :class:`StackRecorder` does).
        keep_prompt: keep the prompt's own query rows of the first step.
    """

    def __init__(
        self,
        kind: str,
        layer_names: list[str],
        options: CaptureOptions,
        prompt_mask: torch.Tensor | None,
        keep_prompt: bool,
    ) -> None:
        super().__init__(kind, layer_names, options, key_mask=None, query_mask=prompt_mask)
        self.keep_prompt = keep_prompt
        self.rows: dict[int, list[torch.Tensor]] = {i: [] for i in self.keep}
        self.prompt: dict[int, torch.Tensor] = {}
        self.prompt_queries = 0
        self._first_keys = 0
        self._first_queries = 0

    def record(self, layer: int, q_start: int, weights: torch.Tensor, q_total: int) -> None:
        """Record rows ``q_start:q_start + weights.shape[-2]`` of ``layer`` at the current step.

        Args:
            layer: index of the layer in this stack.
            q_start: first query row of this chunk.
            weights: ``[batch, head, q_chunk, key]`` attention probabilities.
            q_total: query rows of this call (the prompt length at step 0, then 1, or the
                whole sequence so far without a KV cache).
        """
        import torch

        self.num_heads = int(weights.shape[1])
        if q_start == 0:
            self.calls[layer] += 1
        step = self.calls[layer] - 1
        if not self.wants(layer):
            return
        if step == 0:
            self._first_queries = q_total
        elif q_total != 1 and not self._recomputed(step, q_total, int(weights.shape[-1])):
            raise ProbeError(
                f"generation step {step} fed {q_total} tokens at once to "
                f"{self.layer_names[layer]!r}: "
                "assisted or speculative decoding is not supported; generate one token per step"
            )
        if self.kind == "self":
            self._check_keys(layer, step, q_total, int(weights.shape[-1]))
        if step == 0:
            weights = self._zero_padded_queries(weights, q_start)
        kept = self._select_heads(weights.detach())
        if self.options.dtype is not None:
            kept = kept.to(self.options.dtype)
        stop = q_start + kept.shape[-2]
        if stop == q_total:
            self.rows[layer].append(kept[:, :, -1].clone())
        if step == 0 and self.keep_prompt and q_total > 1:
            self.prompt_queries = q_total - 1
            if layer not in self.prompt:
                b, h, _, k = kept.shape
                self.prompt[layer] = torch.zeros(
                    (b, h, q_total - 1, k), dtype=kept.dtype, device=kept.device
                )
            last = min(stop, q_total - 1)
            if last > q_start:
                self.prompt[layer][:, :, q_start:last] = kept[:, :, : last - q_start]

    def _recomputed(self, step: int, q_total: int, keys: int) -> bool:
        """A step that runs the whole sequence so far again (generation without a KV cache,
        ``use_cache=False``): as many queries as the first step plus one per step, and, for
        self-attention, no cached keys. Its last row is the new token's, as with a cache."""
        return q_total == self._first_queries + step and (self.kind != "self" or keys == q_total)

    @property
    def selects_rows(self) -> bool:  # type: ignore[override]
        return not self.keep_prompt

    def wanted_rows(self, layer: int, q_total: int) -> tuple[int, ...] | None:
        """Without the prompt rows only the last row of each step is kept."""
        return None if self.keep_prompt else (q_total - 1,)

    def record_rows(
        self, layer: int, rows: tuple[int, ...], weights: torch.Tensor, q_total: int
    ) -> None:
        """Record the last row ``weights`` ``[batch, head, 1, key]`` of one call."""
        if rows[0] != 0:  # record() counts a call at its row 0, absent here
            self.calls[layer] += 1
        self.record(layer, rows[0], weights, q_total)

    def _check_keys(self, layer: int, step: int, q_total: int, keys: int) -> None:
        """Self-attention keys must be every position so far (no sliding-window cache)."""
        if step == 0:
            self._first_keys = keys
            return
        if keys < self._first_keys + step:
            raise ProbeError(
                f"{self.layer_names[layer]!r} saw {keys} keys at generation step {step}, fewer "
                "than the tokens so far: a sliding-window or compressed KV cache drops keys "
                "probe cannot place; generate with a full cache (cache_implementation='dynamic')"
            )

    def finish_steps(
        self, num_keys: int | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Assemble ``(generated rows, prompt rows)``.

        Args:
            num_keys: key columns of the result (self-attention: prompt + generated tokens,
                each step's keys placed from column 0); ``None`` for cross-attention, whose
                keys (the source) are the same at every step.

        Returns:
            ``[layer, batch, head, steps, key]`` and ``[layer, batch, head, prompt - 1, key]``
            (``None`` when the prompt rows were not kept or the prompt is one token).
        """
        import torch

        self.check_steps()
        steps = len(self.rows[self.keep[0]])
        first = self.rows[self.keep[0]][0]
        b, h, k0 = first.shape
        width = num_keys if num_keys is not None else k0
        out = torch.zeros((len(self.keep), b, h, steps, width), dtype=first.dtype,
                          device=first.device)
        for pos, layer in enumerate(self.keep):
            for s, row in enumerate(self.rows[layer]):
                k = min(int(row.shape[-1]), width)
                out[pos, :, :, s, :k] = row[..., :k]
        prompt = None
        if self.prompt:
            prompt = torch.zeros(
                (len(self.keep), b, h, self.prompt_queries, width), dtype=first.dtype,
                device=first.device,
            )
            for pos, layer in enumerate(self.keep):
                rows = self.prompt[layer]
                k = min(int(rows.shape[-1]), width)
                prompt[pos, ..., :k] = rows[..., :k]
        return out, prompt

    def check_steps(self) -> None:
        """Every kept layer ran at every step (a layer the model skipped cannot be assembled)."""
        counts = {self.layer_names[i]: len(self.rows[i]) for i in self.keep}
        if len(set(counts.values())) != 1 or 0 in counts.values():
            raise ProbeError(
                f"attention layers ran a different number of generation steps {counts}: probe "
                "cannot assemble layers the model skips (select other layers)"
            )

    @property
    def steps(self) -> int:
        return len(self.rows[self.keep[0]]) if self.keep else 0
