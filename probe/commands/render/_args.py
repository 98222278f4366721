"""The options of ``probe render``: :class:`RenderArgs` and the constants the views share."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_IMAGE_METHODS",
    "DEFAULT_METHODS_HELP",
    "DEFAULT_TEXT_METHODS",
    "FORMATS",
    "IMAGE_DEFAULT_VIEWS",
    "GENERATE_VIEWS",
    "RenderArgs",
    "STACKS",
    "STACK_VIEWS",
    "OPTION_VIEWS",
    "TEXT_ONLY_VIEWS",
    "VIEW_NAMES",
    "check_view_options",
    "not_for_view",
    "views_phrase",
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
    occurrence: int | None = None  # None: not given (the first)
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
    direction: str = "auto"
    width: str | None = None
    context: str | None = None  # None: not given (the coref figure's default, "excerpt")
    block: int | None = None  # None: not given (gradcam's own default, the last block)

TEXT_ONLY_VIEWS = ("coref", "alignment")
#: Views that lay out the tokens of ``--text``, and so read ``--direction``.
DIRECTION_VIEWS = ("heads", "head", "links", "coref", "rollout", "saliency", "compare",
                   "alignment")
STACKS = ("encoder", "decoder", "cross")
STACK_VIEWS = ("heads", "head", "links")
GENERATE_VIEWS = ("heads", "head", "links", "alignment")
IMAGE_DEFAULT_VIEWS = ("saliency",)
#: compare/curves without --method: one method of each kind, not every registered method
#: (the rollout presets rollout-max/rollout-min and attention flow, both variants of
#: rollout, are left out). On images inputxgrad is left out too, for a reason the tests
#: check (tests/test_grad_methods.py): its pixels are the normalised input and ig's default
#: image baseline is zeros in that space, so inputxgrad, x * grad f(x), is exactly ig with
#: one right-Riemann step from the same baseline, a coarser copy of a method already shown.
#: On text the two differ (ig keeps [CLS]/[SEP] and starts the other tokens from [PAD],
#: inputxgrad measures every token from the zero embedding), so text keeps both.
#: DEFAULT_METHODS_HELP says so.
DEFAULT_TEXT_METHODS = ("attention", "rollout", "relevance", "ig", "saliency", "inputxgrad",
                        "random")
DEFAULT_IMAGE_METHODS = (
    "attention", "rollout", "relevance", "ig", "saliency", "gradcam", "random",
)
#: windowed-attention models (Swin): no attention over the whole image to read
DEFAULT_WINDOWED_METHODS = ("ig", "saliency", "gradcam", "random")
#: what compare and curves show without --method, and why (``probe render --help``)
DEFAULT_METHODS_HELP = (
    "compare/curves without --method show a default set (files named '..._default_...'), "
    "one method of each kind rather than all: text " + ", ".join(DEFAULT_TEXT_METHODS)
    + "; images " + ", ".join(DEFAULT_IMAGE_METHODS) + "; Swin "
    + ", ".join(DEFAULT_WINDOWED_METHODS) + "; CNNs their gate methods, gradcam, ig, random. "
    "Left out, by name only: rollout-max and rollout-min (rollout with another head fusion), "
    "flow (attention flow, a max-flow variant of rollout) and, on images, inputxgrad (the "
    "gradient times the normalised pixels: ig with one step from ig's default baseline, "
    "zeros in that space, so a coarser ig)"
)

#: every view of ``probe render``, in ``--help`` order (``tests`` check it against the registry)
VIEW_NAMES = ("heads", "head", "links", "coref", "rollout", "saliency", "compare", "curves",
              "detr", "window", "gates", "alignment", "cross")
#: The views that read each view-specific option: the one declaration that the refusals of
#: an option on another view (:func:`not_for_view`) and the ``*_IGNORED_VIEWS`` below come
#: from. ``--layer`` on saliency: the per-head CLS maps of image models; ``--pair``: the
#: similarity target of text embedding models; ``--max-values``: pages with a size budget
#: (the text forms of rollout / saliency / compare embed one score per token and take it
#: without effect, as their image forms use it).
OPTION_VIEWS: dict[str, tuple[str, ...]] = {
    "--word": ("coref", "links"),
    "--occurrence": ("coref", "links"),
    "--candidate": ("coref",),
    "--context": ("coref",),
    "--layer": ("heads", "head", "links", "saliency", "detr", "window", "gates", "alignment",
                "cross"),
    "--head": ("head", "links", "alignment"),
    "--pair": ("saliency", "compare", "curves"),
    "--query": ("detr", "window"),
    "--method": ("saliency", "compare", "curves"),
    "--fusion": ("rollout",),
    "--block": ("saliency", "compare", "curves"),
    "--discard": ("rollout", "saliency", "compare", "curves"),
    "--generate": GENERATE_VIEWS,
    "--stack": STACK_VIEWS,
    "--max-values": ("heads", "head", "links", "rollout", "saliency", "compare", "detr",
                     "window", "gates", "alignment"),
}


def _ignoring(flag: str) -> tuple[str, ...]:
    return tuple(v for v in VIEW_NAMES if v not in OPTION_VIEWS[flag])


#: Views whose output does not depend on a target: ``--pair`` would be silently ignored.
PAIR_IGNORED_VIEWS = _ignoring("--pair")
#: Views that draw no single layer: ``--layer`` would be silently ignored.
LAYER_IGNORED_VIEWS = _ignoring("--layer")
#: Views that draw no single head: ``--head`` would be silently ignored.
HEAD_IGNORED_VIEWS = _ignoring("--head")
#: Views whose HTML page embeds no attention under the size budget: ``--max-values`` would be
#: ignored.
MAX_VALUES_IGNORED_VIEWS = _ignoring("--max-values")


def not_for_view(flag: str, view: str, why: str = "") -> Exception:
    """The refusal of ``flag`` on ``view``, naming every view that reads it
    (:data:`OPTION_VIEWS`): ``--word does not apply to the heads view: it is used by the coref
    view only; drop it``. ``why`` (`` (it uses every layer)``) follows the view."""
    from probe._errors import ProbeError

    return ProbeError(f"{flag} does not apply to the {view} view{why}: it is used by "
                      f"{views_phrase(OPTION_VIEWS[flag])} only; drop it")


def views_phrase(views: tuple[str, ...] | list[str]) -> str:
    """``the coref view``, ``the detr and window views``, ``the a, b and c views``."""
    names = list(views)
    if len(names) == 1:
        return f"the {names[0]} view"
    return f"the {', '.join(names[:-1])} and {names[-1]} views"


_NO_HEAD = {
    "gates": " (CNN gates have no heads; pick a stage with --layer)",
    "detr": " (it averages the heads of a decoder layer; pick the layer with --layer)",
}


def check_view_options(args: RenderArgs) -> None:
    """``--occurrence``, ``--candidate`` and ``--pair`` on a view that ignores them are errors
    (like the other ignored options; ``--occurrence 0``, the default spelled out, too), and
    ``--occurrence`` is an integer (its range is checked against the sentence: a negative one
    counts from the last)."""
    from probe._errors import ProbeError

    if args.occurrence is not None and args.view not in OPTION_VIEWS["--occurrence"]:
        raise not_for_view("--occurrence", args.view)
    if args.candidates and args.view not in OPTION_VIEWS["--candidate"]:
        raise not_for_view("--candidate", args.view)
    if args.context is not None:
        if args.view not in OPTION_VIEWS["--context"]:
            raise not_for_view("--context", args.view)
        if args.context not in ("excerpt", "all"):
            raise ProbeError(f"--context must be excerpt or all, got {args.context!r}")
        if "html" in args.formats and len(args.formats) == 1:
            raise ProbeError("--context sets how much text the coref figure draws; the HTML "
                             "page always shows the whole text: add --format png (or svg, "
                             "pdf), or drop --context")
    if args.occurrence is not None and args.word is None:  # links: --word is optional
        raise ProbeError("--occurrence picks one of the repeats of --word: add --word, or drop "
                         "--occurrence")
    if args.view == "links" and args.word is not None and (
        args.stack is not None or "html" in args.formats
    ):
        raise ProbeError("--word highlights a word in the links figure of --text's own "
                         "attention (png/svg/pdf, no --stack): drop --word, or --stack and "
                         "--format html")
    if any(not c.strip() for c in args.candidates):  # was "--candidate '' is not a word of..."
        raise ProbeError("--candidate is blank: pass a word of --text, e.g. --candidate animal")
    if args.occurrence is not None and (
            isinstance(args.occurrence, bool) or not isinstance(args.occurrence, int)):
        raise ProbeError(f"--occurrence must be an integer (0 the first, -1 the last), got "
                         f"{args.occurrence!r}")
    if args.queries and args.view not in OPTION_VIEWS["--query"]:
        raise not_for_view("--query", args.view)
    if args.block is not None and args.view not in OPTION_VIEWS["--block"]:
        raise not_for_view("--block", args.view, " (it computes no GradCAM)")
    repeated = sorted({q for q in args.queries if list(args.queries).count(q) > 1})
    if repeated:
        raise ProbeError(f"--query {repeated[0]} is given twice: name each query once")
    for flag, values, shown in (("--format", args.formats, str), ("--method", args.methods, str),
                                ("--candidate", args.candidates, repr)):
        twice = [v for i, v in enumerate(values) if v in list(values)[:i]]
        if twice:
            raise ProbeError(f"{flag} {shown(twice[0])} is given twice: pass each once")
    if args.view == "compare" and len(args.methods) == 1:  # was refused after the model load
        raise ProbeError(f"the compare view sets methods side by side and --method names one "
                         f"({args.methods[0]!r}): add another --method, drop --method for the "
                         "default set, or use the saliency view for one method")
    _check_max_values(args)
    _check_direction(args)
    _check_width(args)
    _check_unused(args)
    if args.layer is not None and args.view not in OPTION_VIEWS["--layer"]:
        raise not_for_view("--layer", args.view, " (it uses every layer)")
    if args.head is not None and args.view not in OPTION_VIEWS["--head"]:
        raise not_for_view("--head", args.view, _NO_HEAD.get(args.view, " (it shows no single "
                                                                     "head)"))
    if args.text is not None and not args.text.strip():  # '': "needs --text", as if not given
        raise ProbeError("--text is blank: pass a sentence, e.g. --text \"The cat sat.\"")
    if args.pair is not None and not args.pair.strip():
        raise ProbeError(
            "--pair is blank: pass the second sentence of the similarity target, or drop --pair"
        )
    if args.pair is not None and args.view not in OPTION_VIEWS["--pair"]:
        raise not_for_view("--pair", args.view, " (it sets the target of gradient methods, "
                           "which this view does not run)")


def _check_direction(args: RenderArgs) -> None:
    """``--direction`` (auto, ltr, rtl) only where tokens are laid out: a text input of a
    view that draws them."""
    from probe._errors import ProbeError

    if args.direction == "auto":
        return
    if args.direction not in ("ltr", "rtl"):
        raise ProbeError(f"--direction must be auto, ltr or rtl, got {args.direction!r}")
    if args.image is not None:
        raise ProbeError("--direction lays out the tokens of a --text; an --image has none: "
                         "drop it")
    if args.view == "curves" and "html" not in args.formats:
        raise ProbeError("--direction lays out the tokens of the curves view's HTML page (its "
                         "figures draw none): add --format html, or drop it")
    if args.view not in DIRECTION_VIEWS and args.view != "curves":
        raise ProbeError(f"--direction does not apply to the {args.view} view (it lays out no "
                         f"tokens): drop it, or use {', '.join(DIRECTION_VIEWS)}")


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


def _check_unused(args: RenderArgs) -> None:
    """``--seed``, ``--pretrained`` and ``--dpi`` where nothing reads them: each was ignored
    silently, yet renamed the file (every option off its default is in the name's hash), so
    the same figure came out under another name."""
    from probe._errors import ProbeError

    if args.seed and args.text is not None:
        raise ProbeError("--seed picks the generated sample image of an image model; a --text "
                         "has none: drop --seed")
    if args.seed and args.image is not None:
        raise ProbeError("--seed picks the generated sample image, and with --image there is "
                         "none: drop --seed (or --image, to render a generated sample)")
    if args.pretrained and not (args.model or "").startswith("timm:"):
        raise ProbeError(f"--pretrained downloads the weights of a --model timm:<name> (random "
                         f"init without it); {args.model or 'the default model'} loads its own "
                         "weights: drop --pretrained")
    if args.dpi != RenderArgs.dpi and all(f == "html" for f in args.formats):
        raise ProbeError("--dpi sets the resolution of png/svg/pdf figures; the HTML page has "
                         "none: add --format png (or svg, pdf), or drop --dpi")


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
    if args.view not in OPTION_VIEWS["--max-values"]:
        raise not_for_view("--max-values", args.view, " (its page has no size budget of "
                           "attention values)")
