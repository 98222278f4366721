"""``probe render``: one view of one input, saved as figure files.

Each view is one function registered in :data:`VIEWS` that takes a :class:`Session` (the
loaded model and the prepared input) and returns ``[(file stem, Figure)]``.
:func:`add_parser` builds the command's options (``--fusion`` and ``--discard`` from the
``rollout`` method's declared options, so a registered head fusion is a valid ``--fusion``),
:func:`run` parses into :class:`RenderArgs`, :func:`render` validates, loads, builds and saves.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from matplotlib.figure import Figure

    from probe.attribution._registry import MethodOption
    from probe.capture._trace import Trace

__all__ = ["RenderArgs", "Session", "VIEWS", "add_parser", "render", "run"]

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

TEXT_ONLY_VIEWS = ("coref",)
IMAGE_DEFAULT_VIEWS = ("saliency",)
DEFAULT_TEXT_METHODS = ("attention", "rollout", "relevance", "ig", "saliency", "inputxgrad", "random")
DEFAULT_IMAGE_METHODS = (
    "attention", "rollout", "relevance", "ig", "saliency", "gradcam", "random",
)


@dataclass
class Session:
    """A loaded model and its prepared input, shared by the view functions."""

    args: RenderArgs
    model: Any
    processor: Any
    model_name: str
    modality: str
    text: str | None = None
    pixel_values: torch.Tensor | None = None
    display: np.ndarray | None = None
    mask: torch.Tensor | None = None
    source: str = ""
    _trace: Trace | None = None
    progress: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> Any:
        return self.text if self.modality == "text" else self.pixel_values

    def trace(self) -> Trace:
        if self._trace is None:
            import probe

            self._trace = probe.trace(self.model, self.inputs, tokenizer=self.processor)
        return self._trace

    def tokens(self) -> list[str]:
        tr = self.trace()
        if tr.tokens is not None:
            n = tr.valid_length(0)
            return list(tr.tokens[0][:n])
        prefix = ["CLS"] + [f"P{i}" for i in range(1, tr.num_prefix_tokens)]
        rows, cols = tr.grid  # type: ignore[misc]
        return prefix[: tr.num_prefix_tokens] + [f"{r},{c}" for r in range(rows) for c in range(cols)]

    def content_positions(self) -> list[int]:
        """Text: positions of the real, non-special tokens of batch item 0 (what strips show)."""
        tr = self.trace()
        keep = tr.attention_mask[0] & ~tr.special_tokens_mask[0]
        return [i for i, k in enumerate(keep.tolist()) if k]

    def content_tokens(self) -> list[str]:
        tokens = self.trace().tokens[0]  # type: ignore[index]
        return [tokens[i] for i in self.content_positions()]

    def attention(self) -> torch.Tensor:
        """``[layer, head, q, k]`` of batch item 0, padding removed."""
        tr = self.trace()
        n = tr.valid_length(0)
        return tr.require_attentions()[:, 0, :, :n, :n]

    def layer(self, default: int = -1) -> int:
        tr = self.trace()
        layer = self.args.layer if self.args.layer is not None else default
        tr.layer_position(layer)  # validates
        return layer % tr.num_model_layers

    def head(self, default: int = 0) -> int:
        tr = self.trace()
        head = self.args.head if self.args.head is not None else default
        tr.head_position(head)
        return head % tr.num_heads

    def target(self) -> Any:
        """The attribution target: similarity to --pair for embedding models, else the class."""
        if self.modality == "text" and self.args.pair:
            from probe.attribution._targets import similarity_target

            return similarity_target(self.model, self.processor, self.args.pair)
        return None


ViewFn = Callable[[Session], "list[tuple[str, Figure]]"]
VIEWS: dict[str, ViewFn] = {}


def register_view(name: str) -> Callable[[ViewFn], ViewFn]:
    """Register ``fn(session) -> [(stem, Figure)]`` as ``probe render NAME``."""

    def decorator(fn: ViewFn) -> ViewFn:
        VIEWS[name] = fn
        return fn

    return decorator


# ----------------------------------------------------------------------------- naming
def _slug(value: str, limit: int = 24) -> str:
    """Lower-case letters and digits of any script (CJK, Arabic, ... kept, so "它" and "他"
    name different files), everything else one ``-``."""
    import unicodedata

    kept = "".join(
        ch if ch.isalnum() or unicodedata.category(ch).startswith("M") else "-"
        for ch in unicodedata.normalize("NFC", value)
    )
    slug = re.sub(r"-+", "-", kept).strip("-").lower()
    return slug[:limit].strip("-") or "x"


def _stem(session: Session, view: str, *parts: Any) -> str:
    """``view_model[_parts][_input]``: predictable from the view, model and options."""
    bits = [view, _slug(session.model_name, 40)]
    bits += [str(p) for p in parts if p not in (None, "")]
    if session.modality == "text" and session.text:
        digest = hashlib.sha1(session.text.encode()).hexdigest()[:6]
        bits.append(f"{_slug(session.text, 16)}-{digest}")
    elif session.source:
        bits.append(_slug(session.source, 24))
    return "_".join(bits)


# ----------------------------------------------------------------------------- views
@register_view("heads")
def _heads(s: Session) -> list[tuple[str, Figure]]:
    from probe.viewers import head_grid, model_view

    attn = s.attention()
    tokens = s.tokens()
    if s.args.layer is None:
        fig = model_view(attn, tokens, model_name=s.model_name)
        return [(_stem(s, "heads", "all"), fig)]
    layer = s.layer()
    pos = s.trace().layer_position(layer)
    fig = head_grid(attn[pos], tokens, layer=layer, model_name=s.model_name)
    return [(_stem(s, "heads", f"L{layer}"), fig)]


@register_view("head")
def _head(s: Session) -> list[tuple[str, Figure]]:
    from probe.viewers import head_heatmap

    layer, head = s.layer(), s.head()
    tr = s.trace()
    fig = head_heatmap(
        s.attention()[tr.layer_position(layer), tr.head_position(head)], s.tokens(),
        model_name=s.model_name, layer=layer, head=head,
    )
    return [(_stem(s, "head", f"L{layer}H{head}"), fig)]


@register_view("links")
def _links(s: Session) -> list[tuple[str, Figure]]:
    from probe.viewers import link_view

    layer = s.layer()
    tr = s.trace()
    heads = [s.head()] if s.args.head is not None else None
    fig = link_view(
        s.attention()[tr.layer_position(layer)], s.tokens(), heads=heads,
        model_name=s.model_name, layer=layer,
    )
    suffix = f"L{layer}" + (f"H{heads[0]}" if heads else "")
    return [(_stem(s, "links", suffix), fig)]


@register_view("coref")
def _coref(s: Session) -> list[tuple[str, Figure]]:
    import probe
    from probe.viewers import coref_view

    if not s.args.word:
        raise ProbeError("the coref view needs --word: the word to follow, e.g. --word it")
    tr = s.trace()
    links = probe.coref(tr, s.args.word)
    weights = probe.word_attention(tr, s.args.word)  # [layer, head, words]
    best = links[0]
    pos_l, pos_h = tr.layer_position(best.layer), tr.head_position(best.head)
    word_index = _word_index(tr, s.args.word)
    fig = coref_view(
        list(tr.words[0]), word_index, weights[pos_l, pos_h],  # type: ignore[index]
        top=[(link.layer, link.head, link.antecedent, link.weight) for link in links[:8]],
        model_name=s.model_name, layer=best.layer, head=best.head,
    )
    return [(_stem(s, "coref", _slug(s.args.word)), fig)]


def _word_index(tr: Trace, word: str) -> int:
    words = [w.lower() for w in tr.words[0]]  # type: ignore[index]
    return words.index(word.lower())


def _takes(method: str, option: str) -> bool:
    from probe.attribution._registry import method_spec

    return method_spec(method).option(option) is not None


def _attribution(s: Session, method: str, **options: Any) -> Any:
    """``probe.attribute`` of ``method`` with ``--discard`` passed to every method that
    declares ``discard_ratio`` (the rollouts), plus ``options``."""
    import probe

    if s.args.discard and _takes(method, "discard_ratio"):
        options["discard_ratio"] = s.args.discard
    trace = None if method in ("relevance",) else s.trace()
    return probe.attribute(
        s.model, s.inputs, method, tokenizer=s.processor, target=s.target(), trace=trace, **options
    )


@register_view("rollout")
def _rollout(s: Session) -> list[tuple[str, Figure]]:
    suffix = f"{s.args.fusion}-d{s.args.discard:g}"
    return _single_method(s, "rollout", "rollout", suffix, head_fusion=s.args.fusion)


@register_view("saliency")
def _saliency(s: Session) -> list[tuple[str, Figure]]:
    if len(s.args.methods) > 1:
        raise ProbeError("the saliency view shows one --method; use the compare view for several")
    method = s.args.methods[0] if s.args.methods else "rollout"
    out = _single_method(s, method, "saliency", _methods_part(s, [method]) if s.args.methods else method)
    if s.modality == "vision" and s.args.layer is not None:
        import probe
        from probe.viewers import cls_head_grid

        layer = s.layer()
        tr = s.trace()
        maps = probe.patch_maps(tr, batch_index=0)[tr.layer_position(layer), 0]
        fig = cls_head_grid(s.display, maps, model_name=s.model_name, layer=layer)
        out.append((_stem(s, "saliency", "cls-heads", f"L{layer}"), fig))
    return out


def _single_method(
    s: Session, method: str, view: str, suffix: str, **options: Any
) -> list[tuple[str, Figure]]:
    from probe.viewers import saliency_overlay, token_strip

    _needs_target(s, [method])
    attr = _attribution(s, method, **options)
    if s.modality == "vision":
        fig = saliency_overlay(
            s.display, attr.as_grid()[0], model_name=s.model_name, method=attr.label,
        )
    else:
        keep = s.content_positions()
        fig = token_strip(
            s.content_tokens(), {attr.label: attr.scores[0, keep]}, signed=attr.signed,
            model_name=s.model_name, method=attr.label,
        )
    return [(_stem(s, view, suffix), fig)]


def _methods(s: Session) -> list[str]:
    import probe

    if s.args.methods:
        available = probe.list_methods(s.modality)  # type: ignore[arg-type]
        for m in s.args.methods:
            if m not in available:
                raise ProbeError(f"unknown --method {m!r} for {s.modality} models: use {list(available)}")
        return list(dict.fromkeys(s.args.methods))
    default = DEFAULT_IMAGE_METHODS if s.modality == "vision" else DEFAULT_TEXT_METHODS
    return [m for m in default if m in probe.list_methods(s.modality)]  # type: ignore[arg-type]


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
    from tqdm.auto import tqdm

    out = {}
    for m in tqdm(methods, desc="methods", disable=s.args.quiet, leave=False):
        attr = _attribution(s, m)
        out[attr.label] = attr  # named as compare names it (options that differ included)
    return out


@register_view("compare")
def _compare(s: Session) -> list[tuple[str, Figure]]:
    import probe
    from probe.viewers import comparison_panel

    methods = _methods(s)
    _needs_target(s, methods)
    attrs = _compute_all(s, methods)
    table = probe.compare(list(attrs.values()), metric="spearman", mask=s.trace())
    faith = _faithfulness(s, attrs)
    if s.modality == "vision":
        maps = {m: a.as_grid()[0] for m, a in attrs.items()}
        subject: Any = s.display
    else:
        keep = s.content_positions()
        maps = {m: a.scores[0, keep] for m, a in attrs.items()}
        subject = s.content_tokens()
    fig = comparison_panel(
        subject, maps, agreement=table.values, methods=list(table.methods),
        faithfulness=faith, model_name=s.model_name,
    )
    return [(_stem(s, "compare", _methods_part(s, methods)), fig)]


def _faithfulness(s: Session, attrs: dict[str, Any]) -> dict[str, dict[str, float]]:
    curves = _curves_for(s, attrs)
    return {
        m: {"deletion AUC": float(c[0].auc.mean()), "insertion AUC": float(c[1].auc.mean())}
        for m, c in curves.items()
    }


def _curves_for(s: Session, attrs: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Deletion and insertion curves of every attribution (empty for text without a target)."""
    import probe

    target = s.target()
    if s.modality == "text" and target is None and not _is_classifier(s):
        return {}
    out = {}
    for m, a in attrs.items():
        kwargs = dict(target=target, tokenizer=s.processor)
        out[m] = (
            probe.deletion_curve(s.model, s.inputs, a, **kwargs),
            probe.insertion_curve(s.model, s.inputs, a, **kwargs),
        )
    return out


def _is_classifier(s: Session) -> bool:
    """Whether the model outputs class logits ``[batch, classes]`` (read from its output)."""
    from probe.attribution._targets import model_logits

    logits = model_logits(s.trace().output, s.model)
    return logits is not None and logits.dim() == 2


@register_view("curves")
def _curves(s: Session) -> list[tuple[str, Figure]]:
    from probe.viewers import curves_view

    methods = _methods(s)
    _needs_target(s, methods)
    if s.modality == "text" and not s.args.pair:
        raise ProbeError("text curves need a target: pass --pair \"second sentence\"")
    curves = _curves_for(s, _compute_all(s, methods))
    deletion = {m: (c[0].fractions, c[0].values[0]) for m, c in curves.items()}
    insertion = {m: (c[1].fractions, c[1].values[0]) for m, c in curves.items()}
    fig_d = curves_view(deletion, kind="deletion", model_name=s.model_name)
    fig_i = curves_view(insertion, kind="insertion", model_name=s.model_name)
    part = _methods_part(s, methods)
    return [(_stem(s, "curves", "deletion", part), fig_d), (_stem(s, "curves", "insertion", part), fig_i)]


def _methods_part(s: Session, methods: list[str]) -> str:
    """File-name part naming the methods (``all`` for the default set), discard included."""
    part = "-".join(_slug(m, 40) for m in methods) if s.args.methods else "all"
    if s.args.discard and any(_takes(m, "discard_ratio") for m in methods):
        part += f"-d{s.args.discard:g}"
    return part


# ----------------------------------------------------------------------------- driver
def _choose_model(args: RenderArgs) -> str:
    if args.model:
        return args.model
    if args.image is not None:
        return "vit-shapes"
    if args.view in TEXT_ONLY_VIEWS or args.text is not None:
        return "minilm"
    if args.view in ("rollout", "saliency", "compare", "curves"):
        return "vit-shapes"
    return "minilm"


_DISCARD_VIEWS = ("rollout", "saliency", "compare", "curves")


def _check_applicable(args: RenderArgs) -> None:
    """Options the chosen view would ignore are errors, not silent no-ops."""
    if args.word is not None and args.view != "coref":
        raise ProbeError(f"--word only applies to the coref view, not {args.view}: drop it")
    if args.fusion != _rollout_option("head_fusion").default and args.view != "rollout":
        raise ProbeError(
            f"--fusion only applies to the rollout view; for {args.view} pick --method "
            "rollout-max or rollout-min"
        )
    if args.discard and args.view not in _DISCARD_VIEWS:
        raise ProbeError(f"--discard only applies to rollout methods, not the {args.view} view")
    if args.methods and args.view in ("heads", "head", "links", "coref", "rollout"):
        raise ProbeError(
            f"--method does not apply to the {args.view} view: use saliency, compare or curves"
        )
    if args.pair is not None and args.image is not None:
        raise ProbeError("--pair is a second sentence for text models: drop it with --image")


def _check_args(args: RenderArgs) -> None:
    if args.dpi < 10 or args.dpi > 2400:
        raise ProbeError(f"--dpi {args.dpi} is out of range: use 10..2400 (e.g. 200)")
    _check_flag("--fusion", _rollout_option("head_fusion"), args.fusion)
    _check_flag("--discard", _rollout_option("discard_ratio"), args.discard)
    _check_applicable(args)
    for method in args.methods:
        from probe.attribution._registry import method_spec

        try:
            method_spec(method)
        except ProbeError as exc:
            raise ProbeError(f"--method: {exc}") from None
    if args.image is not None:
        from probe.models._images import check_image_file

        check_image_file(args.image)  # fail fast, before loading a model
    out = os.path.abspath(args.out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ProbeError(f"--out {args.out!r} is a file: pass a directory")
    ancestor = out
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ProbeError(f"cannot create --out {args.out!r}: {ancestor!r} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ProbeError(f"cannot write to --out {args.out!r}: choose a writable directory")


def _rollout_option(name: str) -> MethodOption:
    """A declared option of the ``rollout`` method (``--fusion``, ``--discard`` follow it)."""
    from probe.attribution._registry import method_spec

    option = method_spec("rollout").option(name)
    if option is None:  # pragma: no cover - the built-in declares both
        raise ProbeError(f"the rollout method declares no {name!r} option")
    return option


def _check_flag(flag: str, option: MethodOption, value: Any) -> None:
    try:
        option.validate("rollout", value)
    except ProbeError as exc:
        raise ProbeError(f"{flag}: {exc}") from None


def _make_out(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ProbeError(
            f"cannot create --out {path!r} ({exc.strerror}): choose a writable directory"
        ) from None


def _session(args: RenderArgs) -> Session:
    from probe.models._registry import load_model, model_modality

    name = _choose_model(args)
    modality = model_modality(name)
    if args.image is not None and args.text is not None:
        raise ProbeError("pass either --text or --image, not both")
    if modality == "text" and args.image is not None:
        raise ProbeError(f"{name} is a text model: drop --image or choose an image model with --model")
    if modality == "vision" and args.text is not None:
        raise ProbeError(f"{name} is an image model: drop --text or choose a text model with --model")
    if args.view in TEXT_ONLY_VIEWS and modality == "vision":
        raise ProbeError(f"the {args.view} view needs a text model: drop --model or pass a text model")
    if modality == "text" and not args.text:
        raise ProbeError(f"the {args.view} view on {name} needs --text \"a sentence\"")
    model, processor = load_model(name, pretrained=args.pretrained)
    from probe.capture import adapter_for

    adapter = adapter_for(model)
    modality = adapter.modality
    if modality == "text" and not args.text:
        raise ProbeError(f"the {args.view} view on a text model needs --text \"a sentence\"")
    if modality == "vision" and args.text:
        raise ProbeError("this is an image model: drop --text, or pass --image FILE")
    if modality == "vision" and args.pair:
        raise ProbeError("--pair is a second sentence for text models: drop it for image models")
    if args.view in TEXT_ONLY_VIEWS and modality == "vision":
        raise ProbeError(f"the {args.view} view needs a text model such as minilm")
    s = Session(args, model, processor, adapter.name, modality)
    if modality == "text":
        s.text = args.text
    elif args.image is not None:
        from probe.models._images import load_image

        img = load_image(args.image, model, processor)
        s.pixel_values, s.display, s.source = img.pixel_values, img.display, img.source
    else:
        _generated_sample(s, args.seed)
    return s


def _generated_sample(s: Session, seed: int) -> None:
    from probe.models._shapes import make_shapes

    if getattr(s.model, "probe_name", None) == "vit-shapes":
        batch = make_shapes(1, seed=seed)
        s.pixel_values, s.display, s.mask = batch.images, batch.to_display(0), batch.masks[0]
        s.source = f"shapes-seed{seed}"
        return
    from probe.models._images import preprocess_image

    batch = make_shapes(1, seed=seed, image_size=64)
    img = preprocess_image(batch.to_display(0), s.model, s.processor, source=f"shapes-seed{seed}")
    s.pixel_values, s.display, s.source = img.pixel_values, img.display, img.source


def render(args: RenderArgs) -> list[str]:
    """Build the figures of ``args.view`` and save them in every requested format.

    Returns:
        The paths written, in order.
    """
    _check_args(args)
    from probe._progress import silence_library_bars, silence_progress

    silence_library_bars()
    if args.quiet:
        silence_progress()
    from probe.commands._render_html import HTML_VIEWS, html_pages

    if "html" in args.formats and args.view not in HTML_VIEWS:
        html_pages(args.view, None)  # type: ignore[arg-type]  # raises: no HTML form
    session = _session(args)
    fig_formats = [f for f in args.formats if f != "html"]
    figures = VIEWS[args.view](session) if fig_formats else []
    pages = html_pages(args.view, session) if "html" in args.formats else []
    from probe.viewers import save_figure

    _make_out(args.out)
    # all or nothing: every file is written into a temporary folder inside --out, and only
    # when all succeeded are they renamed into place
    import shutil
    import tempfile

    staging = tempfile.mkdtemp(prefix=".probe-render-", dir=args.out)
    try:
        staged = []
        for stem, fig in figures:
            for fmt in fig_formats:
                name = f"{stem}.{fmt}"
                save_figure(fig, os.path.join(staging, name), format=fmt, dpi=args.dpi)
                staged.append(name)
        for stem, page in pages:
            page.save(os.path.join(staging, f"{stem}.html"))
            staged.append(f"{stem}.html")
        paths = []
        for name in staged:
            path = os.path.join(args.out, name)
            os.replace(os.path.join(staging, name), path)
            paths.append(path)
        return paths
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------- command line
_VIEW_HELP = {
    "heads": "every head of --layer, or every layer x head without --layer",
    "head": "one head (--layer, --head) as a heatmap with token labels",
    "links": "bertviz-style link diagram of --layer (all heads, or --head)",
    "coref": "which words --word links to, per head and by rollout (--text, --word)",
    "rollout": "attention rollout: token strip (text) or saliency overlay (image)",
    "saliency": "one method (--method) as token strip or image overlay + per-head CLS maps",
    "compare": "several methods side by side with agreement and faithfulness",
    "curves": "deletion/insertion curves of several methods",
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``probe render`` to the top-level subparsers.

    ``--fusion`` accepts every head fusion registered when the parser is built, and
    ``--discard`` follows the ``rollout`` method's ``discard_ratio`` declaration.
    """
    fusion, discard = _rollout_option("head_fusion"), _rollout_option("discard_ratio")
    fusions = list(fusion.valid_choices() or ())
    views = list(VIEWS)
    render_parser = subparsers.add_parser(
        "render",
        help="render a figure (PNG/SVG/PDF) of one analysis",
        description="Render one analysis of one input as figure files and print their paths. "
        "Text views default to --model minilm; image views (rollout/saliency/compare/curves "
        "with an image model) default to --model vit-shapes and a generated sample image.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="views:\n"
        + "".join(f"  {name:<9} {_VIEW_HELP.get(name, '')}\n" for name in views)
        + "\nexamples:\n"
        "  probe render coref --text \"The animal didn't cross the street because it was too "
        "tired.\" --word it\n"
        "  probe render saliency --method relevance --format png --format pdf\n"
        "  probe render compare --text \"A man is playing a guitar.\" --pair \"Someone plays "
        "music.\"",
    )
    add = render_parser.add_argument
    add("view", choices=views, metavar="VIEW", help="one of: " + ", ".join(views))
    add("--model", help="minilm, vit-shapes, timm:<name>, a HF folder or hub id")
    add("--text", help="input sentence (text models)")
    add("--pair", help="second sentence: target = cosine similarity to it")
    add("--image", help="image file (image models); default: a generated sample")
    add("--word", help="word of --text to follow (coref)")
    add("--layer", type=int, help="layer index (negative counts from the end)")
    add("--head", type=int, help="head index")
    add(
        "--method", action="append", dest="methods", default=[],
        help="attribution method (repeatable; see 'probe models --methods')",
    )
    add(
        "--fusion", default=fusion.default, choices=fusions, metavar="FUSION",
        help=f"rollout head fusion: {', '.join(fusions)} (the registered head fusions; "
        f"default {fusion.default})",
    )
    add(
        "--discard", type=float, default=discard.default,
        help=f"rollout discard ratio: {discard.doc} (default {discard.default:g})",
    )
    add("--out", default="probe-out", help="output directory (default: probe-out)")
    add(
        "--format", action="append", dest="formats", choices=FORMATS, default=[],
        help="png, svg, pdf or html (repeatable; default png)",
    )
    add("--dpi", type=int, default=200, help="raster resolution (default 200)")
    add("--seed", type=int, default=0, help="seed of the generated sample image")
    add("--pretrained", action="store_true", help="timm: download weights (network)")
    add("--quiet", action="store_true", help="no progress bars")
    render_parser.set_defaults(run=run)
    return render_parser


def run(ns: argparse.Namespace) -> int:
    """Run ``probe render`` from parsed arguments: render, print the written paths."""
    names = RenderArgs.__dataclass_fields__
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(ns).items() if k in names}
    if not values.get("formats"):
        values["formats"] = ("png",)
    for path in render(RenderArgs(**values)):
        print(path)
    return 0
