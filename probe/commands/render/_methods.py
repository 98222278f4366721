"""The attributions a render view shows: which methods, computed how, and their faithfulness
(shared by the figure views and their HTML forms)."""

from __future__ import annotations

from typing import Any

from probe._errors import ProbeError
from probe.commands.render._session import Session, _gradcam_blocks, _slug, normal_block

__all__: list[str] = []


def _takes(method: str, option: str) -> bool:
    from probe.attribution._registry import method_spec

    return method_spec(method).option(option) is not None


def _attribution(s: Session, method: str, **options: Any) -> Any:
    """``probe.attribute`` of ``method`` with ``--discard`` passed to every method that
    declares ``discard_ratio`` (the rollouts), plus ``options``."""
    import probe

    if s.args.discard and _takes(method, "discard_ratio"):
        options["discard_ratio"] = s.args.discard
    options.update(_block_options(s, [method]).get(method, {}))
    trace = s.trace() if method != "relevance" and s.captures() else None
    try:
        return probe.attribute(
            s.model, s.inputs, method, tokenizer=s.processor, target=s.target(), trace=trace,
            **options
        )
    except ProbeError as exc:
        raise ProbeError(_cli_flow_wording(method, str(exc))) from None


def _cli_flow_wording(method: str, message: str) -> str:
    """attention_flow's size refusal worded for the command line, which has no ``rows=`` nor
    ``max_tokens=`` (it told a ``probe render`` user to pass them)."""
    import re

    found = re.match(r"attention_flow is exact but slow: batch item \d+ has (\d+) real tokens, "
                     r"above max_tokens=(\d+);", message)
    if found is None:
        return message
    n, limit = found.groups()
    return (f"--method {method} (attention flow) is exact but slow: the input has {n} real "
            f"tokens, above its limit of {limit}: use --method rollout, or a shorter input (from "
            f"Python, probe.attribute(..., {method!r}, max_tokens={n}) lifts the limit)")


def _methods(s: Session) -> list[str]:
    from probe.commands._pages import curve_methods

    return curve_methods(s.model, s.modality, s.args.methods, captures=s.captures(),
                         has_target=bool(s.args.methods) or _has_target(s))


def _has_target(s: Session) -> bool:
    """Vision and text classifiers explain their predicted class; sentence encoders need
    ``--pair``."""
    return s.modality != "text" or bool(s.args.pair) or _is_classifier(s)


def _needs_target(s: Session, methods: list[str]) -> None:
    from probe.attribution._registry import method_spec

    if s.modality != "text" or s.args.pair:
        return
    if _is_classifier(s):
        return
    grad = [m for m in methods if method_spec(m).uses_gradients]
    if grad:
        raise ProbeError(
            f"methods {grad} need a target: pass --pair \"second sentence\" (similarity target) "
            "or choose attention methods with --method"
        )


def _compute_all(s: Session, methods: list[str]) -> dict[str, Any]:
    from probe.commands._pages import compute_attributions

    return compute_attributions(s.model, s.inputs, methods, tokenizer=s.processor,
                                target=s.target(), trace=s.trace() if s.captures() and any(
                                    m != "relevance" for m in methods) else None,
                                discard=s.args.discard, quiet=s.args.quiet,
                                options=_block_options(s, methods))


def _block_options(s: Session, methods: list[str]) -> dict[str, dict[str, int]]:
    """``{"gradcam": {"block": B}}`` for ``--block B`` (nothing without it), after checking
    that the view computes gradcam and that the model has block ``B``."""
    block = s.args.block
    if block is None:
        return {}
    if "gradcam" not in methods:
        raise ProbeError(
            f"--block picks the block GradCAM reads, but this view computes no gradcam "
            f"(methods: {', '.join(methods)}): add --method gradcam (image models), or drop "
            "--block")
    count, noun = _gradcam_blocks(s)
    if count == 0:
        raise ProbeError(f"--block picks the block GradCAM reads, but gradcam finds no "
                         f"{noun} on {s.model_name}: drop --block")
    if not -count <= block < count:
        valid = ", ".join(map(str, range(count - 1))) + f" or {count - 1}" if count > 1 else "0"
        raise ProbeError(
            f"--block {block} is out of range: gradcam on {s.model_name} reads one of its "
            f"{count} {noun}s: use {valid} (or -{count}..-1 from the end; -1, the last, is the "
            "default)")
    block %= count  # -1 and the last block, -4 and 0 (of 4) are one block, named one way
    return {} if block == count - 1 else {"gradcam": {"block": block}}  # the last: the default


def _block_part(s: Session) -> str:
    """``-bB``: the file-name part of ``--block`` (:func:`normal_block`)."""
    block = normal_block(s)
    return "" if block is None else f"-b{block}"


def _faithfulness(s: Session, attrs: dict[str, Any]) -> dict[str, dict[str, float]]:
    curves = _curves_for(s, attrs)
    return {
        m: {"deletion AUC": float(c[0].auc.mean()), "insertion AUC": float(c[1].auc.mean())}
        for m, c in curves.items()
    }


def _curves_for(s: Session, attrs: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Deletion and insertion curves of every attribution (empty for text without a target)."""
    from probe.commands._pages import deletion_insertion

    target = s.target()
    if s.modality == "text" and target is None and not _is_classifier(s):
        return {}
    return deletion_insertion(s.model, s.inputs, attrs, target=target, tokenizer=s.processor)


def _is_classifier(s: Session) -> bool:
    """Whether the model outputs class logits ``[batch, classes]`` (read from its output)."""
    from probe.attribution._targets import model_logits

    logits = model_logits(s.trace().output, s.model)
    return logits is not None and logits.dim() == 2


def _methods_part(s: Session, methods: list[str], named: bool = False) -> str:
    """File-name part naming the methods (``default`` for the default set of compare and
    curves, which is not every method, unless ``named``: the saliency view's one default
    method is named, ``rollout``), discard included."""
    part = "-".join(_slug(m, 40) for m in methods) if s.args.methods or named else "default"
    if s.args.discard and any(_takes(m, "discard_ratio") for m in methods):
        part += f"-d{s.args.discard:g}"
    if s.args.block is not None and "gradcam" in methods:  # one file per block
        part += _block_part(s)
    return part


# ----------------------------------------------------------------------------- coref
def _coref_report(s: Session) -> Any:
    """``probe.best_antecedents`` of ``--word`` (``--occurrence``, ``--candidate``) on the
    session's text, with the API's error messages worded for the command line."""
    from probe.analysis._coref import antecedents

    try:  # the [UNK] words are named on the figure and in a note, not in a warning
        return antecedents(
            s.trace(), s.args.word, 0, list(s.args.candidates) or None,
            occurrence=s.args.occurrence or 0, with_rollout=False,
        )
    except ProbeError as exc:
        raise ProbeError(_cli_wording(str(exc), s.args)) from None


def _cli_wording(message: str, args: Any = None) -> str:
    """The Python API's keywords in a coref error, as the command line's flags; a word that
    is not one of the sentence's is named by its flag (``--word 'zebra'``, ``--candidate
    'zebra'``) when ``args`` (the :class:`RenderArgs`) tell which one it is."""
    import re

    message = re.sub(r"\boccurrence=", "--occurrence ", message)
    message = message.replace("pass candidates=[...]", "pass --candidate WORD (repeatable)")
    message = re.sub(r"^candidate (index )?", "--candidate ", message)
    message = message.replace("is not a word of this sentence", "is not a word of --text")
    message = message.replace("the sentence has no other word", "--text has no other word")
    message = message.replace("pass a sentence that holds", "pass a --text that holds")
    if args is not None and message.startswith("'"):  # "'zebra' is not a word of --text"
        word = args.word if args.word is not None else ""
        for flag, value in (("--word", word), *(("--candidate", c) for c in args.candidates)):
            if message.startswith(f"{value!r} is not a word"):
                message = f"{flag} {message}"
                break
    return message.replace(" or an index", "")


def _coref_suffix(s: Session) -> str:
    """File-name part of the coref view: the word, its occurrence and the candidates."""
    part = _slug(s.args.word or "", 24)
    if s.args.occurrence:
        part += f"-{s.args.occurrence}"
    if s.args.candidates:
        part += "-c-" + "-".join(_slug(c, 16) for c in s.args.candidates)
    return part
