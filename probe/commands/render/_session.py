"""The render session: the chosen model and its prepared input, the option checks that run
before anything loads, and the file naming every view follows (:func:`_stem`)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.commands.render._args import (
    OPTION_VIEWS,
    STACKS,
    TEXT_ONLY_VIEWS,
    RenderArgs,
    check_view_options,
    not_for_view,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

    from probe.attribution._registry import MethodOption
    from probe.capture._trace import Trace

__all__ = ["Session"]


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
    #: ``(height, width)`` of the image file before it was resized for the model
    display_size: tuple[int, int] | None = None
    mask: torch.Tensor | None = None
    source: str = ""
    _trace: Trace | None = None
    progress: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> Any:
        return self.text if self.modality == "text" else self.pixel_values

    def captures(self) -> bool:
        """Whether probe can capture this model's attention (CNNs: no, they have gates)."""
        from probe.commands._pages import captures

        return captures(self.model)

    def trace(self) -> Trace:
        if self._trace is None:
            import probe

            if self.args.generate is not None:
                self._trace = self.generation().to_trace()
            else:
                self._trace = probe.trace(self.model, self.inputs, tokenizer=self.processor)
            if self.args.view == "coref" or self.args.word is not None:  # links --word too
                from probe.viewers._plot import group_spans  # --word 马路 over 马 路: one word

                self._trace = group_spans(self._trace, 0, self.args.word, *self.args.candidates)
        return self._trace

    def generation(self) -> Any:
        """``probe.generate`` on ``--text`` (``--generate N`` new tokens, default 24), once;
        its text is kept in ``extra["generated"]`` for :func:`render` to report."""
        if "generation" not in self.extra:
            import probe

            n = self.args.generate if self.args.generate is not None else DEFAULT_GENERATE
            gen = probe.generate(self.model, self.text, tokenizer=self.processor, max_new_tokens=n)
            self.extra["generation"] = gen
            self.extra["generated"] = gen.text[0] if gen.text else ""
        return self.extra["generation"]

    def tokens(self) -> list[str]:
        tr = self.trace()
        if tr.labels is not None:  # readable labels: byte-level symbols decoded
            n = tr.valid_length(0)
            return list(tr.labels[0][:n])
        prefix = ["CLS"] + [f"P{i}" for i in range(1, tr.num_prefix_tokens)]
        rows, cols = tr.grid  # type: ignore[misc]
        cells = [f"{r},{c}" for r in range(rows) for c in range(cols)]
        suffix = [f"D{i}" for i in range(tr.num_suffix_tokens)]  # YOLOS's detection tokens
        return prefix[: tr.num_prefix_tokens] + cells + suffix

    def content_positions(self) -> list[int]:
        """Text: positions of the real, non-special tokens of batch item 0 (what strips show)."""
        tr = self.trace()
        keep = tr.attention_mask[0] & ~tr.special_tokens_mask[0]
        return [i for i, k in enumerate(keep.tolist()) if k]

    def content_tokens(self) -> list[str]:
        labels = self.trace().labels[0]  # type: ignore[index]
        return [labels[i] for i in self.content_positions()]

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



# ----------------------------------------------------------------------------- naming
def _slug(value: str, limit: int = 24) -> str:
    """A readable file-name part of ``value``: lower-case letters and digits of any script
    (CJK, Arabic, Devanagari... kept, so "它" and "他" name different files), everything
    else one ``-``.

    Characters a label writes as code points (zero-width and bidi controls, a lone combining
    mark...: :func:`probe._text.visible_text`) are written ``u200b``. A value with no letter
    or digit names its symbols and punctuation by their Unicode names: "👍" gives
    ``thumbs-up-sign``, "?" ``question-mark``; ``x`` only when nothing is left (blank).
    The hash in :func:`_stem` keeps names unique whatever the slug.
    """
    import unicodedata

    from probe._text import visible_text

    pieces = re.split(r"<U\+([0-9A-F]{4,6})>", visible_text(unicodedata.normalize("NFC", value)))
    readable = any(ch.isalnum() for piece in pieces[::2] for ch in piece)

    out: list[str] = []
    for i, piece in enumerate(pieces):
        if i % 2:  # a code point
            out.append(f"-u{piece.lower()}-")
            continue
        for ch in piece:
            kind = unicodedata.category(ch)
            if ch.isalnum() or (kind[0] == "M" and out and out[-1][-1:] != "-"):
                out.append(ch)  # a mark only on a kept letter (not on a dropped emoji)
            elif not readable and kind[0] in "SP":
                out.append("-" + re.sub(r"[^A-Za-z0-9]+", "-", unicodedata.name(ch, "")) + "-")
            else:
                out.append("-")
    kept = "".join(out)
    slug = re.sub(r"-+", "-", kept).strip("-").lower()
    return slug[:limit].strip("-") or "x"


DEFAULT_GENERATE = 24
GENERATE_LIMIT = 1024


def _stem(session: Session, view: str, *parts: Any) -> str:
    """``view_model[_parts]_input-hash``: readable parts plus a hash that keeps names unique.

    The readable parts (view, model, options such as layer/head/methods, a slug of the text or
    image name) say what a file shows; slugs drop punctuation and cut long text, so two
    inputs can share them. The last 8 hex digits are a hash of everything that changes the
    output (:func:`_input_digest`): two renders that differ in any of it never share a name.
    """
    bits = [view, _slug(session.model_name, 40)]
    bits += [str(p) for p in parts if p not in (None, "")]
    if session.modality == "text" and session.text:
        readable = _slug(session.text, 16)
    elif session.source:
        readable = _slug(session.source, 24)
    else:
        readable = "input"
    bits.append(f"{readable}-{_input_digest(session)}")
    return "_".join(bits)


# options that do not change what a figure shows: where it goes, which file types, progress
# bars, and the device it is computed on (``--device cpu:0`` named the file apart from ``cpu``)
_NOT_OUTPUT = ("out", "formats", "quiet", "device")


def normal_block(s: Session) -> int | None:
    """``--block`` as its non-negative index (``-4`` of 4 blocks is ``0``), ``None`` without
    it or for the last block (gradcam's default, as without ``--block``); out of range as
    given (refused later)."""
    block = s.args.block
    if block is None:
        return None
    count, _ = _gradcam_blocks(s)
    if count and -count <= block < count:
        block %= count
        return None if block == count - 1 else block
    return block


def _gradcam_blocks(s: Session) -> tuple[int, str]:
    """How many blocks ``gradcam``'s ``block`` option can pick on the session's model, and
    what they are (``block``; a CNN's: ``stage``), as the adapter finds them."""
    from probe.capture import adapter_for

    adapter = adapter_for(s.model)
    cnn = hasattr(adapter, "feature_layer")
    pick = adapter.feature_layer if cnn else adapter.block
    count = 0
    while count < 10_000:
        try:
            pick(count)
        except ProbeError:
            break
        count += 1
    return count, "stage" if cnn else "block"


def _input_digest(session: Session) -> str:
    """8 hex digits of SHA-256 over the full input and every option that changes the output.

    Every :class:`RenderArgs` field except ``out``, ``formats``, ``quiet`` and ``device``
    counts (a new option is covered without listing it), plus the resolved model (an absolute
    folder path for a folder) and the bytes of ``--image``. Fields at their default value are
    left out of the hash, so adding an option to probe does not rename the files of commands
    that do not use it.
    """
    if "name_digest" in session.extra:
        return str(session.extra["name_digest"])
    import dataclasses
    import json

    args = session.args
    key: dict[str, Any] = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(args)
        if f.name not in _NOT_OUTPUT and (f.default is dataclasses.MISSING
                                          or getattr(args, f.name) != f.default)
    }
    if "block" in key:  # one block, one name: -4 and 0 of 4; -1 and none (the default)
        key["block"] = normal_block(session)
        if key["block"] is None:
            del key["block"]
    model = _choose_model(args)
    key["model"] = os.path.abspath(model) if os.path.isdir(model) else model
    if args.image is not None:
        h = hashlib.sha256()
        with open(args.image, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        key["image"] = h.hexdigest()
    text = json.dumps(key, sort_keys=True, default=repr, ensure_ascii=True)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    session.extra["name_digest"] = digest
    return digest


# ----------------------------------------------------------------------------- checks
def _choose_model(args: RenderArgs) -> str:
    if args.model is not None:
        if not args.model.strip():
            raise ProbeError(
                "--model is empty: drop it for the default (minilm for text, vit-shapes for "
                "images) or name a model"
            )
        return args.model
    if args.view == "alignment":
        return "toy-mt"
    if args.view == "gates":
        return "cnn-shapes"
    if args.view == "detr":
        return "detr-shapes"
    if args.view == "window":
        return "swin-shapes"
    if args.view == "cross":
        return "caption-shapes"
    if args.image is not None:
        return "vit-shapes"
    if args.view in TEXT_ONLY_VIEWS or args.text is not None:
        return "minilm"
    if args.view in ("rollout", "saliency", "compare", "curves"):
        return "vit-shapes"
    return "minilm"


_DISCARD_VIEWS = OPTION_VIEWS["--discard"]

#: views that only image models of one kind can show, and what to pass instead
_IMAGE_MODEL_VIEWS = {
    "gates": "a CNN with attention gates (e.g. --model cnn-shapes)",
    "detr": "a DETR detector (e.g. --model detr-shapes or a local DETR folder)",
    "window": "a Swin model (e.g. --model swin-shapes or timm:swin_tiny_patch4_window7_224)",
    "cross": "an image-to-text model (a VisionEncoderDecoderModel, e.g. --model caption-shapes)",
}


def _check_applicable(args: RenderArgs) -> None:
    """Options the chosen view would ignore are errors, not silent no-ops."""
    if args.word is not None and args.view not in OPTION_VIEWS["--word"]:
        raise not_for_view("--word", args.view)
    if args.view == "coref" and not args.word:  # before the model loads, not after
        raise ProbeError("the coref view needs --word: the word to follow, e.g. --word it")
    fused = args.fusion != _rollout_option("head_fusion").default
    if fused and args.view not in OPTION_VIEWS["--fusion"]:
        raise not_for_view("--fusion", args.view, " (pick --method rollout-max or rollout-min "
                           "for other fusions)" if args.view in _DISCARD_VIEWS else "")
    if args.discard and args.view not in OPTION_VIEWS["--discard"]:
        raise not_for_view("--discard", args.view)
    if args.methods and args.view not in OPTION_VIEWS["--method"]:
        raise not_for_view("--method", args.view)
    if args.pair is not None and args.image is not None:
        raise ProbeError("--pair is a second sentence for text models: drop it with --image")
    check_view_options(args)
    _check_generation_options(args)


def _check_generation_options(args: RenderArgs) -> None:
    """``--generate`` and ``--stack``: only on the views that read them, values in range."""
    if args.generate is not None:
        if args.view not in OPTION_VIEWS["--generate"]:
            raise not_for_view("--generate", args.view)
        if isinstance(args.generate, bool) or not 1 <= args.generate <= GENERATE_LIMIT:
            raise ProbeError(
                f"--generate {args.generate} is out of range: use 1..{GENERATE_LIMIT} (e.g. 20)"
            )
        if args.pair is not None:
            raise ProbeError("--pair does not apply with --generate: drop it")
    if args.stack is not None:
        if args.stack not in STACKS:
            raise ProbeError(f"--stack {args.stack!r} is unknown: use one of {', '.join(STACKS)}")
        if args.view not in OPTION_VIEWS["--stack"]:
            raise not_for_view("--stack", args.view)


_SEED_LIMIT = 2**64


def normalize_args(args: RenderArgs) -> RenderArgs:
    """The arguments as the views use them: ``--word`` without surrounding whitespace
    (``--word " it "`` follows ``it``; a word made only of whitespace is refused)."""
    import dataclasses

    if args.word is not None and not args.word.strip():  # "" read as "needs --word"
        raise ProbeError("--word is blank: pass a word of --text, e.g. --word it")
    if args.word is not None and args.word != args.word.strip():
        args = dataclasses.replace(args, word=args.word.strip())
    if args.discard == 0 and str(args.discard).startswith("-"):  # -0.0: 0, one file name
        args = dataclasses.replace(args, discard=0.0)
    return args


def _check_text_options(args: RenderArgs) -> None:
    """Text options must be valid UTF-8 (argv bytes that are not arrive as lone surrogates)."""
    for flag, value in (("--text", args.text), ("--pair", args.pair), ("--word", args.word),
                        ("--model", args.model), ("--method", " ".join(args.methods))):
        if value is None:
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ProbeError(
                f"{flag} is not valid UTF-8 (an undecodable byte at character {exc.start}): "
                "pass UTF-8 text"
            ) from None


def _check_args(args: RenderArgs) -> None:
    _check_text_options(args)
    if isinstance(args.seed, bool) or not 0 <= args.seed < _SEED_LIMIT:
        raise ProbeError(f"--seed {args.seed} is out of range: use 0..2**64-1 (e.g. 0)")
    _choose_model(args)  # an empty --model is an error, not the default
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
    from probe._report import check_output_dir

    check_output_dir(args.out)


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
        if flag == "--discard":  # was "--discard: option 'discard_ratio' of method 'rollout'
            # must be < 1, got 1.0", the method's keyword in a command line message
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
            raise ProbeError(f"--discard {shown} is out of range: use a fraction in "
                             f"[{option.minimum:g}, {option.below:g}) of each row's weakest "
                             "weights to drop, e.g. --discard 0.9") from None
        raise ProbeError(f"{flag}: {exc}") from None



# ----------------------------------------------------------------------------- loading
def _session(args: RenderArgs, loaded: dict[Any, Any] | None = None) -> Session:
    """Load the model of ``args`` (or take it from ``loaded``, filled on the first call, so a
    batch of inputs loads it once) and prepare the input."""
    from probe.models._registry import load_model, model_modality

    name = _choose_model(args)
    modality = model_modality(name)
    if args.image is not None and args.text is not None:
        raise ProbeError("pass either --text or --image, not both")
    if modality == "text" and args.image is not None:
        raise ProbeError(
            f"{name} is a text model: drop --image or choose an image model with --model")
    if modality == "vision" and args.text is not None:
        raise ProbeError(
            f"{name} is an image model: drop --text or choose a text model with --model")
    if args.view in TEXT_ONLY_VIEWS and modality == "vision":
        raise ProbeError(
            f"the {args.view} view needs a text model: drop --model or pass a text model")
    if modality == "vision" and args.direction != "auto":
        raise ProbeError(f"--direction lays out the tokens of a text; {name} is an image model "
                         "and draws none: drop it")
    if modality == "vision" and args.word is not None:  # links --word: an internal error
        raise ProbeError(f"--word highlights a word of --text; {name} is an image model and "
                         "has no words: drop --word, or pass a text model with --model")
    if modality == "text" and args.view in _IMAGE_MODEL_VIEWS:
        raise ProbeError(
            f"the {args.view} view needs {_IMAGE_MODEL_VIEWS[args.view]}; {name} is a text model"
        )
    if modality == "text" and not args.text:
        raise ProbeError(f"the {args.view} view on {name} needs --text \"a sentence\"")
    _check_text_saliency_layer(args, modality)
    from probe.evaluation._device import move_model, resolve_device

    device = resolve_device(args.device).device  # a bad --device fails before loading
    key = (name, args.pretrained, str(device))
    if loaded is not None and key in loaded:
        model, processor = loaded[key]
    else:
        model, processor = load_model(name, pretrained=args.pretrained)
        move_model(model, device)
        if loaded is not None:
            loaded[key] = (model, processor)
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
    if modality == "vision" and args.word is not None:  # a folder or timm: name read late
        raise ProbeError("--word highlights a word of --text; this is an image model and has "
                         "no words: drop --word, or pass a text model with --model")
    _check_text_saliency_layer(args, modality)
    s = Session(args, model, processor, adapter.name, modality)
    s.extra["adapter"] = adapter
    if args.generate is not None and modality != "text":
        raise ProbeError(
            f"--generate needs a text model that generates, not the image model {name}")
    if modality == "text":
        s.text = args.text
    elif args.image is not None:
        from probe.models._images import frames_note, load_image_frames

        img, frames = load_image_frames(args.image, model, processor)
        if frames > 1:  # said after success, with the other notes
            s.extra["note"] = f"probe: note: --image {frames_note(args.image, frames)}"
        s.pixel_values, s.display, s.source = img.pixel_values, img.display, img.source
        s.display_size = img.original_size
    else:
        _generated_sample(s, args.seed)
    return s


def _check_text_saliency_layer(args: RenderArgs, modality: str) -> None:
    """``--layer`` on the saliency view adds per-head CLS maps, which only image models have:
    on a text model it would be ignored, so it is an error."""
    if args.view == "saliency" and modality == "text" and args.layer is not None:
        raise ProbeError(
            "--layer adds per-head CLS maps to the saliency view of image models; for a text "
            "model drop it (or see one layer's heads with the heads view)"
        )


def _generated_sample(s: Session, seed: int) -> None:
    from probe.models._shapes import make_shapes

    if getattr(s.model, "probe_name", None) == "detr-shapes":
        from probe.models._scenes import make_scenes

        scenes = make_scenes(1, seed=seed)
        s.pixel_values, s.display = scenes.images, scenes.to_display(0)
        s.source = f"scenes-seed{seed}"
        return
    if getattr(s.model, "probe_name", None) == "caption-shapes":
        from probe.models._captions import make_captions

        scenes = make_captions(1, seed=seed)
        s.pixel_values, s.display = scenes.images, scenes.to_display(0)
        s.source = f"captions-seed{seed}"
        return
    if getattr(s.model, "probe_name", None) in ("vit-shapes", "cnn-shapes", "swin-shapes"):
        batch = make_shapes(1, seed=seed)
        s.pixel_values, s.display, s.mask = batch.images, batch.to_display(0), batch.masks[0]
        s.source = f"shapes-seed{seed}"
        return
    from probe.models._images import preprocess_image

    batch = make_shapes(1, seed=seed, image_size=64)
    img = preprocess_image(batch.to_display(0), s.model, s.processor, source=f"shapes-seed{seed}")
    s.pixel_values, s.display, s.source = img.pixel_values, img.display, img.source
