"""The options of ``probe render``: :class:`RenderArgs` and the constants the views share."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_IMAGE_METHODS",
    "DEFAULT_TEXT_METHODS",
    "FORMATS",
    "IMAGE_DEFAULT_VIEWS",
    "GENERATE_VIEWS",
    "RenderArgs",
    "STACKS",
    "STACK_VIEWS",
    "TEXT_ONLY_VIEWS",
    "check_view_options",
    "figure_inches",
]

FORMATS = ("png", "svg", "pdf", "html")


@dataclass(frozen=True)
class RenderArgs:
    """Options of ``probe render``."""

    view: str
    model: str | None = None
    text: str | None = None
    pair: str | None = None
    image: str | None = None
    word: str | None = None
    occurrence: int = 0
    candidates: tuple[str, ...] = ()
    layer: int | None = None
    head: int | None = None
    methods: tuple[str, ...] = ()
    fusion: str = "mean"
    discard: float = 0.0
    out: str = "probe-out"
    formats: tuple[str, ...] = ("png",)
    dpi: int = 200
    seed: int = 0
    pretrained: bool = False
    quiet: bool = False
    generate: int | None = None
    stack: str | None = None
    queries: tuple[int, ...] = ()
    device: str = "cpu"
    max_values: int | None = None
    width: str | None = None

TEXT_ONLY_VIEWS = ("coref", "alignment")
STACKS = ("encoder", "decoder", "cross")
STACK_VIEWS = ("heads", "head", "links")
GENERATE_VIEWS = ("heads", "head", "links", "alignment")
IMAGE_DEFAULT_VIEWS = ("saliency",)
DEFAULT_TEXT_METHODS = ("attention", "rollout", "relevance", "ig", "saliency", "inputxgrad",
                        "random")
DEFAULT_IMAGE_METHODS = (
    "attention", "rollout", "relevance", "ig", "saliency", "gradcam", "random",
)
#: windowed-attention models (Swin): no attention over the whole image to read
DEFAULT_WINDOWED_METHODS = ("ig", "saliency", "gradcam", "random")

#: Views whose output does not depend on a target: ``--pair`` would be silently ignored.
PAIR_IGNORED_VIEWS = ("heads", "head", "links", "coref", "rollout", "detr")


#: Views that draw no single layer or head: ``--layer`` / ``--head`` would be silently ignored
#: (gates and detr have their own messages; saliency reads ``--layer`` for vision CLS maps).
LAYER_IGNORED_VIEWS = ("coref", "rollout", "compare", "curves")
#: Views whose HTML page embeds no attention under the size budget: ``--max-values`` would be
#: ignored (the text forms of saliency / rollout / compare embed one score per token and take
#: it without effect, as their image forms use it).
MAX_VALUES_IGNORED_VIEWS = ("coref", "curves")
HEAD_IGNORED_VIEWS = ("heads", "coref", "rollout", "saliency", "compare", "curves", "window")


def check_view_options(args: RenderArgs) -> None:
    """``--occurrence``, ``--candidate`` and ``--pair`` on a view that ignores them are errors
    (like the other ignored options), and ``--occurrence`` is a non-negative integer."""
    from probe._errors import ProbeError

    if args.view != "coref" and (args.occurrence or args.candidates):
        flag = "--occurrence" if args.occurrence else "--candidate"
        raise ProbeError(f"{flag} only applies to the coref view, not {args.view}: drop it")
    if isinstance(args.occurrence, bool) or not isinstance(args.occurrence, int) or (
        args.occurrence < 0
    ):
        raise ProbeError(
            f"--occurrence must be 0 (the first), 1 (the second), ..., got {args.occurrence!r}"
        )
    if args.queries and args.view not in ("detr", "window"):
        raise ProbeError(
            f"--query only applies to the detr and window views, not {args.view}: drop it")
    repeated = sorted({q for q in args.queries if list(args.queries).count(q) > 1})
    if repeated:
        raise ProbeError(f"--query {repeated[0]} is given twice: name each query once")
    for flag, values, shown in (("--format", args.formats, str), ("--method", args.methods, str),
                                ("--candidate", args.candidates, repr)):
        twice = [v for i, v in enumerate(values) if v in list(values)[:i]]
        if twice:
            raise ProbeError(f"{flag} {shown(twice[0])} is given twice: pass each once")
    _check_max_values(args)
    _check_width(args)
    if args.view == "gates" and args.head is not None:
        raise ProbeError(
            "--head does not apply to the gates view (CNN gates have no heads): drop it (pick a "
            "stage with --layer)"
        )
    if args.layer is not None and args.view in LAYER_IGNORED_VIEWS:
        raise ProbeError(
            f"--layer does not apply to the {args.view} view (it uses every layer): drop it, or "
            "use heads, head or links for one layer"
        )
    if args.head is not None and args.view in HEAD_IGNORED_VIEWS:
        raise ProbeError(
            f"--head does not apply to the {args.view} view (it shows no single head): drop it, "
            "or use head or links --head H for one head"
        )
    if args.view == "detr" and args.head is not None:
        raise ProbeError(
            "the detr view averages the heads of a decoder layer: drop --head (pick the layer "
            "with --layer)"
        )
    if args.text and not args.text.strip():  # was 'empty text' after the model had loaded
        raise ProbeError("--text is blank: pass a sentence, e.g. --text \"The cat sat.\"")
    if args.pair is not None and not args.pair.strip():
        raise ProbeError(
            "--pair is blank: pass the second sentence of the similarity target, or drop --pair"
        )
    if args.pair is not None and args.view in PAIR_IGNORED_VIEWS:
        raise ProbeError(
            f"--pair sets the target of gradient methods; the {args.view} view shows attention "
            "only and would ignore it: drop it (or use saliency, compare or curves)"
        )


def figure_inches(args: RenderArgs) -> float | None:
    """``--width`` in inches (``single`` 3.5, ``double`` 7.0, or a number), or ``None``."""
    from probe._errors import ProbeError
    from probe.viewers import COLUMN_WIDTHS, resolve_width

    if args.width is None:
        return None
    text = str(args.width).strip().lower()
    try:
        value: str | float = text if text in COLUMN_WIDTHS else float(text)
        return resolve_width(value, "--width")
    except (ValueError, ProbeError):
        raise ProbeError(f"--width must be single (3.5 in), double (7.0 in) or a figure width "
                         f"in inches in [2, 40], got {args.width!r}") from None


def _check_width(args: RenderArgs) -> None:
    """``--width``: a width, and a figure format to apply it to (HTML pages have none)."""
    from probe._errors import ProbeError

    if args.width is None:
        return
    figure_inches(args)
    if not [f for f in args.formats if f != "html"]:
        raise ProbeError("--width sets the size of png/svg/pdf figures; the HTML page has none: "
                         "add --format png (or svg, pdf), or drop --width")


def _check_max_values(args: RenderArgs) -> None:
    """``--max-values``: a positive integer, with ``--format html``, on a view whose page has
    a size budget."""
    from probe._errors import ProbeError

    n = args.max_values
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ProbeError(f"--max-values must be a positive integer (the values one HTML page "
                         f"may embed; default 20000000), got {n!r}")
    if "html" not in args.formats:
        raise ProbeError("--max-values is the size budget of the HTML page: add --format html, "
                         "or drop it")
    if args.view in MAX_VALUES_IGNORED_VIEWS:
        raise ProbeError(f"--max-values does not apply to the {args.view} view (its page has no "
                         "size budget of attention values): drop it")
