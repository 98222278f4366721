"""Word alignment from cross-attention (or any target x source scores), and its error rate.

A translation model's cross-attention row for the step that produced target token ``t`` is a
distribution over source tokens. Merged to words with the coreference rule (mean over the
target word's sub-tokens, sum over the source word's sub-tokens), it gives a soft word
alignment ``[target_word, source_word]`` per layer and head; hard alignments are read from it
by argmax or by a threshold, and scored against gold links with the alignment error rate of
Och & Ney (2003), "A Systematic Comparison of Various Statistical Alignment Models":

    AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|),   S ⊆ P the sure and possible gold links.

Gradient-based scores (:func:`probe.attribution.gradient_alignment`) and a random baseline
(:func:`random_alignment`) come as the same :class:`Alignment`, so they are scored alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError
from probe._index import batch_position, is_real, model_position
from probe.analysis._finite import check_trace_finite

if TYPE_CHECKING:
    import torch

__all__ = [
    "Alignment",
    "alignment",
    "check_generation_words",
    "alignment_error_rate",
    "corpus_aer",
    "hard_alignment",
    "random_alignment",
    "word_alignment_scores",
]

Link = tuple[int, int]
Rule = Literal["argmax", "threshold"]


@dataclass(frozen=True)
class Alignment:
    """Soft word alignment of one sentence pair.

    Attributes:
        scores: ``[layer, head, target_word, source_word]`` non-negative scores (attention:
            each row sums to at most 1, the rest went to special tokens). Gradient and random
            alignments have one "layer" and one "head".
        target_words, source_words: the words of both sides.
        layer_indices, head_indices: the model's indices of each score layer and head
            (``head_indices`` ``None`` when heads were averaged during capture).
        method: ``"attention"``, ``"saliency"``, ``"grad_x_input"``, ``"random"``, ...
        num_model_layers: the model's number of (cross-attention) layers, so that a negative
            ``layer`` counts from the model's last layer as everywhere else (``-1`` on an
            alignment of layers ``(1, 3)`` of a 6-layer model is layer 5, not kept); 0 when
            unknown (then a negative ``layer`` counts back from the last kept, as everywhere).
        num_heads: the model's number of cross-attention heads per layer, so that a negative
            ``head`` counts from the model's last head (``-1`` on an alignment of heads
            ``(0, 1)`` of a 4-head model is head 3, not kept); 0 when unknown (then a
            negative ``head`` counts back from the last kept: gradient and random alignments'
            one head).
    """

    scores: torch.Tensor
    target_words: tuple[str, ...]
    source_words: tuple[str, ...]
    layer_indices: tuple[int, ...]
    head_indices: tuple[int, ...] | None
    method: str = "attention"
    num_model_layers: int = 0
    num_heads: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.target_words), len(self.source_words))

    def __repr__(self) -> str:
        # not the dataclass repr: it printed every score (576 numbers for a 9-word sentence)
        scores = f"{tuple(self.scores.shape)} {str(self.scores.dtype).removeprefix('torch.')}"
        return (f"Alignment(method={self.method!r}, scores={scores}, "
                f"target_words={self.target_words}, source_words={self.source_words}, "
                f"layer_indices={self.layer_indices}, head_indices={self.head_indices})")

    def matrix(self, layer: int | None = None, head: int | None = None) -> torch.Tensor:
        """``[target_word, source_word]``: one layer and head, or the mean over the ones left
        ``None`` (``matrix()`` fuses every layer and head)."""
        s = self.scores
        s = s.mean(0) if layer is None else s[self.layer_position(layer)]
        if head is None:
            return s.mean(0)
        return s[self.head_position(head)]

    def links(
        self,
        layer: int | None = None,
        head: int | None = None,
        *,
        rule: Rule = "argmax",
        threshold: float = 0.5,
    ) -> frozenset[Link]:
        """Hard links ``(target_word, source_word)`` of :meth:`matrix` (see
        :func:`hard_alignment`)."""
        return hard_alignment(self.matrix(layer, head), rule=rule, threshold=threshold)

    def layer_position(self, layer: int) -> int:
        """Position in ``scores`` of the model's layer ``layer`` (negative counts back from the
        model's last layer, as ``Trace.layer_position`` does).

        Raises:
            ProbeError: not an integer, beyond the model, or not in this alignment.
        """
        return _model_position("layer", layer, self.layer_indices, self.num_model_layers,
                               "layers")

    def head_position(self, head: int) -> int:
        """Position in ``scores``' head dimension of the model's head ``head`` (negative
        counts back from the model's last cross-attention head, as layers do).

        Raises:
            ProbeError: heads averaged during capture, not an integer, beyond the model, or
                not in this alignment.
        """
        if self.head_indices is None:
            raise ProbeError("heads were averaged during capture: pass head=None")
        return _model_position("head", head, self.head_indices, self.num_heads,
                               "heads per layer")


def _model_position(kind: str, value: Any, indices: Sequence[int], count: int,
                    unit: str) -> int:
    """Position in ``indices`` (the model's ``kind`` numbers an alignment holds) of ``value``,
    a model ``kind`` (negative counts back from the model's last; ``count`` 0 when unknown:
    from the last held), by the one shared check :func:`probe._index.model_position`."""
    return model_position(value, indices, count,
                          name=kind, unit=unit, missing="is not in this alignment",
                          fix=f"generate with {kind}s=None or including it")


# --------------------------------------------------------------------------- merging
def _membership(word_ids: Sequence[int | None], num_words: int) -> torch.Tensor:
    """``[word, token]`` 0/1 float64 membership."""
    import torch

    member = torch.zeros(num_words, len(word_ids), dtype=torch.float64)
    for t, w in enumerate(word_ids):
        if w is None:
            continue
        if not 0 <= w < num_words:
            raise ProbeError(f"token {t} has word id {w} but there are {num_words} words")
        member[w, t] = 1.0
    return member


def word_alignment_scores(
    scores: torch.Tensor,
    target_word_ids: Sequence[int | None],
    source_word_ids: Sequence[int | None],
    num_target_words: int,
    num_source_words: int,
) -> torch.Tensor:
    """Merge token scores ``[..., target_token, source_token]`` into words.

    Row of target word ``u``, column of source word ``v``: the mean over ``u``'s tokens of the
    sum over ``v``'s tokens (the rule :func:`probe.word_attention` uses); tokens with word id
    ``None`` (special tokens, padding) belong to no word.

    Returns:
        ``[..., target_word, source_word]`` float64.
    """
    if scores.shape[-2] != len(target_word_ids) or scores.shape[-1] != len(source_word_ids):
        raise ProbeError(
            f"scores {tuple(scores.shape[-2:])} do not match {len(target_word_ids)} target and "
            f"{len(source_word_ids)} source word ids"
        )
    import torch

    tgt = _membership(target_word_ids, num_target_words).to(scores.device)
    src = _membership(source_word_ids, num_source_words).to(scores.device)
    tgt = tgt / tgt.sum(-1, keepdim=True).clamp_min(1.0)
    return tgt @ scores.to(torch.float64) @ src.T


def alignment(generation: Any, batch_index: int = 0) -> Alignment:
    """Word alignment from the cross-attention of a generation (:func:`probe.generate`).

    Row ``i`` of the cross-attention is the decoder step that produced generated token ``i``
    (see :class:`probe.GenerationTrace`); target words are the generated words, source words
    the words of the source text; both come from the tokenizer (pass ``tokenizer=`` to
    :func:`probe.generate`).

    Args:
        generation: a :class:`probe.GenerationTrace` of an encoder-decoder.
        batch_index: the batch item.

    Returns:
        An :class:`Alignment` with ``scores`` ``[layer, head, target_word, source_word]``.
    """
    cross = getattr(generation, "cross", None)
    if cross is None or cross.attentions is None:
        raise ProbeError(
            "alignment needs cross-attention: generate with an encoder-decoder model "
            "(probe.generate(model, text, tokenizer=tok))"
        )
    if not hasattr(generation, "prompt_words"):  # a Trace with cross-attention
        raise ProbeError(
            f"alignment takes the GenerationTrace that probe.generate returns (it reads the "
            f"generated and source words), got {type(generation).__name__}: pass that result "
            "itself, not gen.to_trace() or a probe.trace"
        )
    b = batch_position(batch_index, generation.batch_size)
    check_generation_words(generation, "alignment", b)
    words, word_ids = generation.words, generation.word_ids
    src_words, src_ids = generation.prompt_words, generation.prompt_word_ids
    steps = cross.attentions.shape[3]
    target_ids = list(word_ids[b])[:steps]
    if generation.generated_mask is not None:
        target_ids = [w if bool(generation.generated_mask[b, i]) else None
                      for i, w in enumerate(target_ids)]
    source_ids = list(src_ids[b])
    if generation.source_mask is not None:
        source_ids = [
            w if bool(generation.source_mask[b, t]) else None for t, w in enumerate(source_ids)
        ]
    check_trace_finite(
        cross.attentions[:, b : b + 1], "alignment", cross, items=[b], stack="cross-attention"
    )
    merged = word_alignment_scores(
        cross.attentions[:, b].detach().cpu(), target_ids, source_ids, len(words[b]),
        len(src_words[b])
    )
    return Alignment(
        scores=merged, target_words=tuple(words[b]), source_words=tuple(src_words[b]),
        layer_indices=tuple(cross.layer_indices), head_indices=cross.head_indices,
        num_model_layers=int(getattr(cross, "num_model_layers", 0)
                             or getattr(generation, "num_model_layers", 0)),
        num_heads=int(getattr(cross, "num_heads", 0)),
    )


# --------------------------------------------------------------------------- hard links
def hard_alignment(
    matrix: torch.Tensor, *, rule: Rule = "argmax", threshold: float = 0.5
) -> frozenset[Link]:
    """Hard links ``(target_word, source_word)`` from a soft ``[target_word, source_word]`` matrix.

    * ``"argmax"``: each target word links to its highest-scoring source word (rows that are
      all zero link nowhere);
    * ``"threshold"``: every pair whose score, after normalising the row to sum to 1 over the
      source words, is at least ``threshold``.
    """
    import torch

    if not isinstance(matrix, torch.Tensor):
        got = type(matrix).__name__
        raise ProbeError(
            f"hard_alignment takes a [target_word, source_word] score tensor, got {got}: pass "
            + ("alignment.matrix(), or call alignment.hard()" if got == "Alignment" else
               "probe.alignment(generation).matrix()"
               + (", not the Trace" if got == "Trace" else ""))
        )
    if matrix.dim() != 2:
        raise ProbeError(
            f"hard_alignment takes a [target, source] matrix, got {tuple(matrix.shape)}")
    if rule not in ("argmax", "threshold"):
        raise ProbeError(f"rule must be 'argmax' or 'threshold', got {rule!r}")
    if not is_real(threshold) or not 0 < threshold <= 1:  # np.float32(0.5) counts
        raise ProbeError(f"threshold must be in (0, 1], got {threshold!r}")
    threshold = float(threshold)
    if matrix.is_complex():
        raise ProbeError(f"hard_alignment takes real scores, got {matrix.dtype}")
    finite = torch.isfinite(matrix)
    if not bool(finite.all()):  # a NaN row linked nowhere, silently
        t, s = (int(i) for i in (~finite).nonzero()[0])
        raise ProbeError(
            f"the matrix holds {float(matrix[t, s])} at target word {t}, source word {s}: "
            "hard links need finite scores; replace them (torch.nan_to_num(matrix)) or fix "
            "the generation that made them"
        )
    m = matrix.detach().to(torch.float64).clamp_min(0.0)
    totals = m.sum(-1)
    links: set[Link] = set()
    if rule == "argmax":
        best = m.argmax(-1)
        for t in range(m.shape[0]):
            if float(totals[t]) > 0:
                links.add((t, int(best[t])))
        return frozenset(links)
    norm = m / totals.clamp_min(1e-12)[:, None]
    for t, s in (norm >= threshold).nonzero().tolist():
        if float(totals[t]) > 0:
            links.add((int(t), int(s)))
    return frozenset(links)


def check_generation_words(generation: Any, what: str, batch_index: int = 0) -> None:
    """Raise if ``generation`` lacks the words of the source or of item ``batch_index``'s
    generated text.

    Raises:
        ProbeError: naming why they are missing: no text or fast tokenizer given, or generated
            tokens that do not re-encode to themselves (no word boundary can be trusted).
    """
    if generation.prompt_words is None or generation.prompt_word_ids is None:
        raise ProbeError(
            f"{what} needs the words of both sides: pass text and tokenizer=... (a fast "
            "tokenizer) to probe.generate"
        )
    b = batch_position(batch_index, generation.batch_size)
    missing = getattr(generation.words, "missing", None)
    if generation.words is None or generation.word_ids is None or (
        missing is not None and missing[b] is not None
    ):
        raise ProbeError(
            f"{what} needs the words of the generated text, but the generated tokens of batch "
            f"item {b} are not how the tokenizer writes their decoded text (encoding it again "
            "gives other tokens), so no word boundary can be trusted: read the token-level "
            "gen.cross.attentions [layer, batch, head, generated, source] instead"
        )


def _link_set(links: Any, name: str) -> set[Link]:
    """``links`` as a set of ``(target_word, source_word)`` integer pairs: lists from JSON
    (``[[0, 1], ...]``) and integer tensors ``[n, 2]`` are taken; anything else is refused."""
    import operator

    if links is None or isinstance(links, (str, bytes)) or not hasattr(links, "__iter__"):
        raise ProbeError(f"{name} links must be a set of (target_word, source_word) pairs, got "
                         f"{type(links).__name__}: pass e.g. {{(0, 0), (1, 2)}}")
    out: set[Link] = set()
    for link in links:
        try:
            t, src = link
            pair = (operator.index(t), operator.index(src))
        except (TypeError, ValueError):
            shown = repr(link) if len(repr(link)) <= 40 else repr(link)[:37] + "..."
            raise ProbeError(f"{name} link {shown} is not a (target_word, source_word) pair of "
                             "integers: pass links as e.g. {(0, 0), (1, 2)}") from None
        if min(pair) < 0:
            raise ProbeError(f"{name} link {pair} has a negative word index: links count words "
                             "from 0")
        out.add(pair)
    return out


def _sentences(value: Any, name: str) -> list[Any]:
    """One link set per sentence (a generator is taken too)."""
    if isinstance(value, (str, bytes, set, frozenset)) or not hasattr(value, "__iter__"):
        raise ProbeError(f"{name} must be a list with one set of links per sentence, got "
                         f"{type(value).__name__}: for one sentence use alignment_error_rate")
    return list(value)


def alignment_error_rate(
    predicted: Iterable[Link], sure: Iterable[Link], possible: Iterable[Link] | None = None
) -> float:
    """Alignment error rate (Och & Ney 2003): ``1 - (|A∩S| + |A∩P|) / (|A| + |S|)``.

    Args:
        predicted: the hard links ``A``.
        sure: the sure gold links ``S``.
        possible: the possible gold links ``P`` (``S`` is added to it; default ``P = S``).

    Returns:
        A number in ``[0, 1]``; 0 is a perfect alignment.
    """
    a, s = _link_set(predicted, "predicted"), _link_set(sure, "sure")
    p = (set() if possible is None else _link_set(possible, "possible")) | s
    if not a and not s:
        raise ProbeError("both the predicted and the sure alignment are empty: AER is undefined")
    return 1.0 - (len(a & s) + len(a & p)) / (len(a) + len(s))


def corpus_aer(
    predicted: Sequence[Iterable[Link]],
    sure: Sequence[Iterable[Link]],
    possible: Sequence[Iterable[Link]] | None = None,
) -> float:
    """AER over a corpus: the link counts of every sentence summed before the ratio (as the
    shared tasks compute it), not the mean of per-sentence rates."""
    predicted, sure = _sentences(predicted, "predicted"), _sentences(sure, "sure")
    possible = None if possible is None else _sentences(possible, "possible")
    if len(predicted) != len(sure) or (possible is not None and len(possible) != len(sure)):
        raise ProbeError("predicted, sure and possible alignments must cover the same sentences")
    hits = total = 0
    for i, (a_links, s_links) in enumerate(zip(predicted, sure)):
        a, s = _link_set(a_links, f"predicted[{i}]"), _link_set(s_links, f"sure[{i}]")
        p = (_link_set(possible[i], f"possible[{i}]") if possible is not None else set()) | s
        hits += len(a & s) + len(a & p)
        total += len(a) + len(s)
    if total == 0:
        raise ProbeError("no links at all in the corpus: AER is undefined")
    return 1.0 - hits / total


def random_alignment(like: Alignment, generator: torch.Generator | None = None) -> Alignment:
    """A random baseline shaped like ``like``: each target word's scores drawn uniformly and
    normalised (one layer, one head), so its argmax is a uniformly random source word."""
    import torch

    if not isinstance(like, Alignment):
        raise ProbeError(
            f"random_alignment takes an Alignment to shape the baseline like, got "
            f"{type(like).__name__}: pass probe.alignment(gen)"
        )
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ProbeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}: "
            "e.g. torch.Generator().manual_seed(0)"
        )
    t, s = like.shape
    scores = torch.rand((1, 1, t, s), generator=generator, dtype=torch.float64)
    scores = scores / scores.sum(-1, keepdim=True).clamp_min(1e-12)
    return Alignment(scores, like.target_words, like.source_words, (0,), (0,), method="random")
