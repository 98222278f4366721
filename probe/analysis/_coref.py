"""Coreference links read from attention: which word a pronoun attends to, head by head.

Clark, Khandelwal, Levy and Manning, "What Does BERT Look At? An Analysis of BERT's
Attention", BlackboxNLP 2019, Sec. 4: token attention is merged into word attention
and a head "resolves" a mention when its strongest attention goes to an antecedent.

Token -> word merge rule (Clark et al. 2019, Sec. 4.1): the weight word ``u`` sends to word
``v`` is the MEAN over ``u``'s sub-tokens (as queries) of the SUM over ``v``'s sub-tokens (as
keys). Each word row therefore sums to at most 1 (the rest goes to special tokens).
Special tokens and padding belong to no word.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe._index import batch_position, is_int
from probe._errors import ProbeError
from probe.analysis._finite import check_trace_finite
from probe.analysis._trace_input import require_trace
from probe.analysis._unknown import warn_unknown

if TYPE_CHECKING:
    import torch

    from probe.capture._trace import Trace

__all__ = [
    "CorefLink",
    "CorefLinks",
    "Antecedents",
    "coref",
    "word_attention",
    "best_antecedents",
    "NON_ANTECEDENT_WORDS",
]

#: Closed-class English words that cannot head an antecedent noun phrase: articles and
#: determiners, prepositions, conjunctions, auxiliaries and modals, negation, particles and
#: contraction pieces. They are not default candidate antecedents (pronouns are kept: an
#: antecedent may be an earlier pronoun of the same entity). Pass ``candidates=`` to
#: choose candidates yourself, e.g. for other languages.
NON_ANTECEDENT_WORDS = frozenset(
    """
    a an the this that these those some any each every no all both either neither such
    of in on at by for with from to into onto upon about above below over under between
    among through during before after against without within along across behind beyond
    near off out up down around toward towards via per than as like since until till
    and or but nor so yet because although though while whereas if unless whether then
    once when where why how
    is am are was were be been being do does did done doing have has had having
    will would shall should can could may might must ought
    not never n't nt t s d ll m re ve didn doesn don isn wasn weren aren hasn haven hadn
    won wouldn shouldn couldn can't cannot mustn
    too very also just only even still already again there here
    """.split()
)


@dataclass(frozen=True)
class CorefLink:
    """One head's answer: the candidate antecedent its strongest attention goes to.

    Attributes:
        layer: the model's layer index.
        head: the model's head index (-1 when heads were averaged during capture).
        antecedent: the candidate word, as written in ``trace.words``.
        antecedent_index: its index in ``trace.words[batch_index]``.
        weight: the word-level attention the queried word sends to it (see module docs).
    """

    layer: int
    head: int
    antecedent: str
    antecedent_index: int
    weight: float


#: how many of the strongest links a :class:`CorefLinks` repr shows
_SHOWN_LINKS = 3


def _link_text(link: CorefLink) -> str:
    return (f"L{link.layer} H{link.head} \u2192 {link.antecedent!r} ({link.antecedent_index}) "
            f"{link.weight:.3f}")


class CorefLinks(tuple):  # type: ignore[type-arg]
    """A tuple of :class:`CorefLink` (one per head) that indexes, slices, iterates and
    compares as the plain tuple it is (``links == (CorefLink(...), ...)``), with a short repr:
    the count and the strongest few, ``CorefLinks(72 heads; strongest: L3 H1 → 'animal' (1)
    0.677, ...)``, where a full repr ran to kilobytes. ``tuple(links)`` is the plain tuple."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self:
            return "CorefLinks(0 heads)"
        strongest = sorted(self, key=lambda lk: (-lk.weight, lk.layer, lk.head))
        shown = "; ".join(_link_text(lk) for lk in strongest[:_SHOWN_LINKS])
        more = f"; ... {len(self) - _SHOWN_LINKS} more" if len(self) > _SHOWN_LINKS else ""
        plural = "s" if len(self) != 1 else ""
        return f"CorefLinks({len(self)} head{plural}; strongest: {shown}{more})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython, Jupyter
        printer.text(repr(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (CorefLinks, (tuple(self),))


@dataclass(frozen=True, repr=False)
class Antecedents:
    """Best antecedent of one word per head and according to attention rollout.

    Attributes:
        word: the queried word; ``word_index`` its index in ``trace.words[batch_index]``.
        candidates: indices of the candidate antecedent words that were compared.
        per_head: one :class:`CorefLink` per captured head, in (layer, head) order.
        rollout_antecedent, rollout_antecedent_index, rollout_weight: the candidate with
            the largest word-level weight in the attention rollout of all captured layers
            (Abnar & Zuidema 2020, mean head fusion).
    """

    word: str
    word_index: int
    candidates: tuple[int, ...]
    per_head: tuple[CorefLink, ...]
    rollout_antecedent: str
    rollout_antecedent_index: int
    rollout_weight: float

    def __repr__(self) -> str:  # per_head short: the full one ran to kilobytes
        rollout = ("not computed" if self.rollout_antecedent_index < 0 else
                   f"{self.rollout_antecedent!r} ({self.rollout_antecedent_index}) "
                   f"{self.rollout_weight:.3f}")
        return (f"Antecedents(word={self.word!r} ({self.word_index}), candidates="
                f"{list(self.candidates)}, per_head={CorefLinks(self.per_head)!r}, "
                f"rollout={rollout})")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython, Jupyter
        printer.text(repr(self))


# ------------------------------------------------------------------ words and tokens
def _words(trace: Trace, batch_index: int) -> tuple[tuple[str, ...], tuple[int | None, ...]]:
    if trace.words is None or trace.word_ids is None:
        raise ProbeError(
            "this trace has no words: capture the text itself (probe.trace(model, text, "
            "tokenizer=tok)) or a fast tokenizer's own output (tok(text, return_tensors='pt')) "
            "with tokenizer=tok; a plain dict or an ids tensor carries no word boundaries"
        )
    b = batch_position(batch_index, trace.batch_size)
    return tuple(trace.words[b]), tuple(trace.word_ids[b])


def word_membership(trace: Trace, batch_index: int) -> torch.Tensor:
    """``[word, token]`` float64 0/1 matrix: which real, non-special tokens form each word."""
    import torch

    words, word_ids = _words(trace, batch_index)
    b = batch_index % trace.batch_size
    real = trace.attention_mask[b].bool() & ~trace.special_tokens_mask[b].bool()
    member = torch.zeros(len(words), trace.seq_len, dtype=torch.float64)
    for t, w in enumerate(word_ids[: trace.seq_len]):
        if w is None or not bool(real[t]):
            continue
        if not 0 <= w < len(words):
            raise ProbeError(
                f"token {t} has word id {w} but the trace has {len(words)} words; the trace's "
                "words and word_ids disagree: capture it again with probe.trace"
            )
        member[w, t] = 1.0
    return member


def merge_to_words(attn: torch.Tensor, member: torch.Tensor) -> torch.Tensor:
    """Word-level attention ``[..., word, word]`` from token attention ``[..., query, key]``.

    Row ``u``, column ``v``: mean over ``u``'s tokens (queries) of the sum over ``v``'s tokens
    (keys), with ``member`` the ``[word, token]`` 0/1 membership matrix (Clark et al. 2019).
    Words without tokens get zero rows and columns.
    """
    member = member.to(device=attn.device, dtype=_work_dtype(attn))
    mean_rows = member / member.sum(-1, keepdim=True).clamp_min(1.0)
    return mean_rows @ attn.to(member.dtype) @ member.T


def _work_dtype(attn: torch.Tensor) -> torch.dtype:
    """float64 stays float64; everything else is computed in float32."""
    import torch

    return torch.float64 if attn.dtype == torch.float64 else torch.float32


def _is_punctuation(word: str) -> bool:
    return not any(ch.isalnum() for ch in word)


def word_key(word: str) -> str:
    """What two spellings of a word share: case (``casefold``: "STRASSE" is "straße") and
    Unicode compatibility forms (NFKC: "cafe" + U+0301 is "café", full-width "ＡＢＣ" is
    "ABC", the ligature "ﬁ" is "fi") do not tell words apart."""
    return fold(word.strip())


def fold(text: str) -> str:
    """``text`` with case and Unicode compatibility forms folded (NFKC, casefold, NFKC)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _grouping_hint(words: Sequence[str], wanted: Sequence[str]) -> str:
    """The fix when ``wanted`` spells runs of several words (Chinese, split per character) or
    part of a word (a run of kana, a SentencePiece tokenizer's whole Chinese sentence)."""
    from probe.analysis._word_groups import spans_of

    keys = {word_key(x) for x in words}
    joined = "".join(word_key(x) for x in words)
    spans = [w for w in wanted if spans_of(words, w)]
    inside = [w for w in wanted if w not in spans and word_key(w)
              and word_key(w) not in keys and word_key(w) in joined]
    if spans and not inside:
        return (
            f" ({', '.join(map(repr, spans))} {'spans' if len(spans) == 1 else 'span'} several "
            f"words of the trace: group them first with trace = probe.group_words(trace, "
            f"{spans!r}))"
        )
    if inside:
        part = [x for x in words if word_key(inside[0]) in word_key(x)]
        what = f"part of the word {part[0]!r}" if part else "part of several words"
        return (
            f" ({inside[0]!r} is {what}: make it a word first with trace = "
            f"probe.group_words(trace, {spans + inside!r}), which splits words at token "
            "boundaries)"
        )
    return ""


def resolve_word(
    words: Sequence[str], member: torch.Tensor, word: str | int, occurrence: int
) -> int:
    """Index in ``words`` of ``word`` (case-insensitive; ``occurrence`` counts from 0, a
    negative one from the last)."""
    if isinstance(word, str):
        word = str(word)  # np.str_ too
    elif is_int(word):  # np.int64(7) is word 7
        word = int(word)
    else:
        raise ProbeError(f"word must be a string or a word index, got {word!r}")
    if not is_int(occurrence):  # was "occurrence=0.0 but 'it' occurs 1 time(s); use -1..0"
        raise ProbeError(
            f"occurrence must be an int (0 is the first, -1 the last), got {occurrence!r}"
        )
    occurrence = int(occurrence)
    if isinstance(word, int):
        if not -len(words) <= word < len(words):
            raise ProbeError(
                f"word index {word} is out of range for {len(words)} words: {list(words)}"
            )
        index = word % len(words)
    else:
        matches = [i for i, w in enumerate(words) if word_key(w) == word_key(word)]
        if not matches:
            raise ProbeError(
                f"{word!r} is not a word of this sentence; use one of {list(words)} or an index"
                + _grouping_hint(words, [word])
            )
        n = len(matches)
        if not -n <= occurrence < n:
            raise ProbeError(
                f"occurrence={occurrence!r} but {word!r} occurs {n} time(s); use "
                f"{-n}..{n - 1} (0 is the first, -1 the last)"
            )
        index = matches[occurrence]
    if not bool(member[index].any()):
        raise ProbeError(
            f"word {words[index]!r} has no tokens in the trace (truncated?); pick another word"
        )
    return index


def _candidates(
    words: Sequence[str],
    member: torch.Tensor,
    index: int,
    candidates: Sequence[str | int] | None,
    word: str | int | None = None,
) -> list[int]:
    """Candidate antecedent indices (never the word itself nor a word without tokens);
    ``word`` as the caller named it (a repeated word's later occurrences are then named
    when the chosen one has no candidates)."""
    has_tokens = member.any(-1).tolist()
    if candidates is None:
        chosen = [
            i
            for i in range(index)
            if not _is_punctuation(words[i]) and words[i].lower() not in NON_ANTECEDENT_WORDS
        ]
    else:
        if isinstance(candidates, str) or is_int(candidates):
            candidates = [candidates]
        elif hasattr(candidates, "tolist") and getattr(candidates, "ndim", None) == 1:
            candidates = candidates.tolist()  # a numpy array or tensor of word indices
        if not isinstance(candidates, (list, tuple, set, frozenset, range)):
            raise ProbeError(
                f"candidates must be a list of words or word indices, got {candidates!r}"
            )
        if not candidates:
            raise ProbeError(
                "candidates is empty: pass at least one word, or candidates=None for the "
                "default (the content words before the word)"
            )
        chosen = []
        for c in candidates:
            if isinstance(c, str):
                c = str(c)
            elif is_int(c):  # np.int64(1) is word 1
                c = int(c)
            else:
                raise ProbeError(f"candidates must be words or word indices, got {c!r}")
            if isinstance(c, int):
                if not -len(words) <= c < len(words):
                    raise ProbeError(f"candidate index {c} is out of range for {len(words)} words")
                hits = [c % len(words)]
            else:
                hits = [i for i, w in enumerate(words) if word_key(w) == word_key(c)]
                if not hits:
                    raise ProbeError(
                        f"candidate {c!r} is not a word of this sentence: {list(words)}"
                        + _grouping_hint(words, [x for x in candidates if isinstance(x, str)])
                    )
            if hits == [index]:  # was dropped silently (or "no candidate antecedents")
                raise ProbeError(
                    f"candidate {c!r} is the followed word itself (word {index}, "
                    f"{words[index]!r}): a word is not its own antecedent; name another word"
                )
            chosen.extend(hits)
    chosen = sorted({i for i in chosen if i != index and has_tokens[i]})
    if not chosen and candidates is not None:
        raise ProbeError(
            f"no candidate of {list(candidates)!r} has tokens in the trace (truncated?): name "
            "words the trace holds"
        )
    if not chosen and not any(has_tokens[i] and not _is_punctuation(words[i])
                              for i in range(len(words)) if i != index):
        raise ProbeError(  # "pass candidates=[...]" named a fix there is no word for
            f"no candidate antecedents for {words[index]!r}: the sentence has no other word "
            "(punctuation aside); pass a sentence that holds the antecedent "
            "too, e.g. 'The cat sat because it was tired.'"
        )
    if not chosen:
        raise ProbeError(
            f"no candidate antecedents for {words[index]!r}: the default candidates are the "
            f"content words before {words[index]!r}"
            + _later_occurrences(words, has_tokens, index, word)
            + "; pass candidates=[...] to choose them"
        )
    return chosen


def _later_occurrences(words: Sequence[str], has_tokens: list[bool], index: int,
                       word: str | int | None) -> str:
    """``, and there are none; 'it' occurs 2 times, the later one: occurrence=1 (or -1)``
    when ``word`` (a string) occurs again after word ``index`` with default candidates
    before it, else ``""``."""
    if not isinstance(word, str):
        return ""

    def has_candidates(place: int) -> bool:
        return any(has_tokens[i] and not _is_punctuation(words[i])
                   and words[i].lower() not in NON_ANTECEDENT_WORDS for i in range(place))

    places = [i for i, w in enumerate(words) if word_key(w) == word_key(word)]
    later = [k for k, i in enumerate(places) if i > index and has_candidates(i)]
    if not later:
        return ""
    n = len(places)
    if len(later) == 1:
        which = f"the later one: occurrence={later[0]}" + (
            " (or -1)" if later[0] == len(places) - 1 else "")
    else:
        numbers = ", ".join(map(str, later[:-1])) + f" or {later[-1]}"
        which = f"the later ones: occurrence={numbers}" + (
            " (-1 is the last)" if later[-1] == len(places) - 1 else "")
    return f", and there are none; {str(word)!r} occurs {n} times, {which}"


# ------------------------------------------------------------------ public API
def word_attention(
    trace: Trace, word: str | int, batch_index: int = 0, *, occurrence: int = 0
) -> torch.Tensor:
    """Attention ``word`` sends to every word, per layer and head (Clark et al. 2019).

    Merge rule: the weight to word ``v`` is the mean over ``word``'s sub-tokens (as queries)
    of the sum over ``v``'s sub-tokens (as keys), so a row sums to at most 1; special tokens
    and padding belong to no word.

    Args:
        trace: a text trace with ``words`` and ``word_ids``.
        word: a word of ``trace.words[batch_index]`` (case-insensitive) or its index.
        batch_index: the batch item.
        occurrence: which occurrence of ``word`` if it appears several times (0 = first, -1 = last).

    Non-finite attention (NaN, inf) raises :class:`ProbeError` naming its layer and head; a
    ``word`` made only of the tokenizer's unknown token (``[UNK]``: not in the model's
    vocabulary) gives a ``UserWarning`` saying so (its weights are a placeholder's).

    Returns:
        ``[layer, head, num_words]`` float tensor (a new one).
    """
    require_trace(trace, "probe.word_attention")
    rows, index = word_rows(trace, word, batch_index, occurrence=occurrence)
    warn_unknown(trace, batch_index, [index], "probe.word_attention")
    return rows


def word_rows(
    trace: Trace, word: str | int, batch_index: int = 0, *, occurrence: int = 0
) -> tuple[torch.Tensor, int]:
    """:func:`word_attention` without the unknown-word warning (for the views, which say it
    in the figure), and the word's index."""
    words, _ = _words(trace, batch_index)
    member = word_membership(trace, batch_index)
    index = resolve_word(words, member, word, occurrence)
    b = batch_index % trace.batch_size
    positions = member[index].nonzero().flatten().tolist()  # the word's tokens
    attentions = trace.require_rows(positions)[:, b]  # [layer, head, tokens, key]
    check_trace_finite(
        attentions[:, None], "coref/word_attention", trace, queries=positions, items=[b]
    )
    member = member.to(device=attentions.device, dtype=_work_dtype(attentions))
    query = member[index, positions] / member[index].sum()  # mean over the word's tokens
    rows = query @ attentions.to(member.dtype)  # [layer, head, key]
    return rows @ member.T, index


def coref(
    trace: Trace,
    word: str | int,
    batch_index: int = 0,
    *,
    occurrence: int = 0,
    candidates: Sequence[str | int] | None = None,
) -> tuple[CorefLink, ...]:
    """Rank every captured head by how strongly ``word`` attends to a candidate antecedent.

    Clark et al. 2019, "What Does BERT Look At?", Sec. 4.3: for each head, the antecedent is the
    candidate word that ``word`` sends the most word-level attention to (merge rule: mean
    over ``word``'s sub-tokens of the sum over the candidate's sub-tokens); heads are sorted
    by that weight, strongest first (ties: lower layer, then lower head, first).

    Candidate antecedents, by default: the words *before* ``word`` (an antecedent precedes
    its anaphor; cataphora is not covered), excluding the word itself, special tokens and
    padding (they belong to no word), punctuation (words with no letter or digit) and the
    closed-class words in :data:`NON_ANTECEDENT_WORDS` (articles, prepositions,
    conjunctions, auxiliaries...), which cannot head an antecedent noun phrase. This keeps
    positional heads, which put most of their weight on the neighbouring word whatever it
    is (Clark et al. Sec. 3), from ranking first with a function word. Pass ``candidates``
    (words, matched case-insensitively at every occurrence, or word indices) to choose the
    candidates yourself: they are a set of words in sentence order (a word named twice counts
    once, whatever the order they were given in).

    What this shows is where each head looks in one sentence, not that it resolves
    coreference: a head that attends by position (e.g. to the first noun) also links "it" to
    "animal" in "The animal didn't cross the street because it was too tired." ``probe eval
    coref`` (:mod:`probe.evaluation.tasks._coref`) scores every head on Winograd-style
    minimal pairs, where any positional head gets exactly 50%; on the packaged MiniLM no
    head, nor the rollout, beats chance there (README, "Evaluation";
    ``benchmarks/eval-coref.json``).

    Args:
        trace: a text trace with ``words`` and ``word_ids``.
        word: the anaphor, e.g. ``"it"`` (case-insensitive) or its word index.
        batch_index: the batch item.
        occurrence: which occurrence of ``word`` (0 = first, -1 = last).
        candidates: explicit candidate antecedents (default: see above).

    Non-finite attention (NaN, inf) raises :class:`ProbeError` naming its layer and head.
    When ``word`` or a candidate is made only of the tokenizer's unknown token (``[UNK]``:
    not in the model's vocabulary), a ``UserWarning`` names them: their weights are a
    placeholder's, not the word's.

    Returns:
        One :class:`CorefLink` per captured (layer, head), sorted by weight, descending: a
        :class:`CorefLinks`, a tuple whose repr is the count and the strongest three.
    """
    require_trace(trace, "probe.coref")
    report = antecedents(
        trace, word, batch_index, candidates, occurrence=occurrence, with_rollout=False
    )
    warn_unknown(trace, batch_index, [report.word_index, *report.candidates], "probe.coref")
    return CorefLinks(sorted(report.per_head,
                             key=lambda link: (-link.weight, link.layer, link.head)))


def best_antecedents(
    trace: Trace,
    word: str | int,
    batch_index: int = 0,
    candidates: Sequence[str | int] | None = None,
    *,
    occurrence: int = 0,
    with_rollout: bool = True,
) -> Antecedents:
    """Best candidate antecedent of ``word`` for each head and according to the rollout.

    Per head as in :func:`coref` (Clark et al. 2019); for the rollout (Abnar & Zuidema 2020,
    mean head fusion, from the first captured layer on, which needs every layer from there
    to the model's last) the same merge rule is applied to the rollout matrix. Candidate
    rules as in :func:`coref`.

    Args:
        trace: a text trace with ``words`` and ``word_ids``.
        word: the anaphor (case-insensitive) or its word index.
        batch_index: the batch item.
        candidates: explicit candidate antecedents (words or indices); default as in
            :func:`coref`.
        occurrence: which occurrence of ``word`` (0 = first, -1 = last).
        with_rollout: also compute the rollout answer (otherwise its fields are empty:
            ``""``, ``-1`` and ``nan``).

    A ``word`` or candidate made only of the unknown token warns as in :func:`coref`.

    Returns:
        :class:`Antecedents`.
    """
    require_trace(trace, "probe.best_antecedents")
    report = antecedents(trace, word, batch_index, candidates, occurrence=occurrence,
                         with_rollout=with_rollout)
    warn_unknown(trace, batch_index, [report.word_index, *report.candidates],
                 "probe.best_antecedents")
    return report


def antecedents(
    trace: Trace,
    word: str | int,
    batch_index: int = 0,
    candidates: Sequence[str | int] | None = None,
    *,
    occurrence: int = 0,
    with_rollout: bool = True,
) -> Antecedents:
    """:func:`best_antecedents` without the unknown-word warning (for the views, which say
    it in the figure)."""
    import torch

    words, _ = _words(trace, batch_index)
    member = word_membership(trace, batch_index)
    index = resolve_word(words, member, word, occurrence)
    chosen = _candidates(words, member, index, candidates, word)
    weights = word_rows(trace, index, batch_index)[0][..., chosen]  # [layer, head, cand]
    best_weight, best = weights.max(-1)
    per_head = []
    for li, layer in enumerate(trace.layer_indices):
        for hi in range(weights.shape[1]):
            head = -1 if trace.head_indices is None else trace.head_indices[hi]
            antecedent = chosen[int(best[li, hi])]
            per_head.append(
                CorefLink(layer, head, words[antecedent], antecedent, float(best_weight[li, hi]))
            )
    rollout_word, rollout_index, rollout_weight = "", -1, float("nan")
    if with_rollout:
        from probe.analysis._rollout import rollout

        b = batch_index % trace.batch_size
        result = rollout(trace, start_layer=min(trace.layer_indices))[b]
        word_level = merge_to_words(result, member)[index, chosen]
        top = int(torch.argmax(word_level))
        rollout_index = chosen[top]
        rollout_word, rollout_weight = words[rollout_index], float(word_level[top])
    return Antecedents(
        word=words[index],
        word_index=index,
        candidates=tuple(chosen),
        per_head=CorefLinks(per_head),
        rollout_antecedent=rollout_word,
        rollout_antecedent_index=rollout_index,
        rollout_weight=rollout_weight,
    )
