"""``probe render``: one view of one input, saved as figure files.

Each view is one function registered in :data:`VIEWS` (``_figures.py``; its HTML form, if any,
in ``_html.py``) that takes a :class:`Session` (the loaded model and the prepared input,
``_session.py``) and returns ``[(file stem, Figure)]``. :func:`add_parser` builds the
command's options (``--fusion`` and ``--discard`` from the ``rollout`` method's declared
options, so a registered head fusion is a valid ``--fusion``), :func:`run` parses into
:class:`RenderArgs`, :func:`render` validates, loads, builds and saves (all or nothing).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from probe._errors import ProbeError
from probe.commands._help import HelpFormatter
from probe.commands.render._args import (
    DEFAULT_METHODS_HELP,
    FORMATS,
    STACKS,
    RenderArgs,
    figure_inches,
)
from probe.commands.render import _detr  # noqa: F401  (registers the detr view)
from probe.commands.render import _windows  # noqa: F401  (registers the window view)
from probe.commands.render._cnn import check_attention_view
from probe.commands.render._figures import VIEWS
from probe.commands.render._html import HTML_VIEWS, html_pages
from probe.commands.render._notes import unknown_words_note
from probe.commands.render._session import _check_args, _rollout_option, _session, normalize_args
from probe.commands.render._stacks import STACK_FIGURES, STACK_PAGES
from probe.commands.render._wording import cli_width_wording

# registered last: the cross view comes after alignment in ``VIEW_NAMES`` (``--help`` order)
from probe.commands.render import _image_text  # noqa: E402,F401,I001  (the cross view)

__all__ = ["add_parser", "render", "render_batch", "run"]


def _make_out(path: str) -> bool:
    """Create ``--out`` if needed; True when this call created it."""
    existed = os.path.isdir(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ProbeError(
            f"cannot create --out {path!r} ({exc.strerror}): choose a writable directory"
        ) from None
    return not existed


def render(args: RenderArgs) -> list[str]:
    """Build the figures of ``args.view`` and save them in every requested format.

    All or nothing: every file is written into a temporary ``.probe-render-*`` folder inside
    ``--out`` and renamed into place only when all are written (:func:`_commit`); on an error
    or an interruption (Ctrl-C, SIGTERM) the folder is removed and ``--out`` is as it was.

    Returns:
        The paths written, in order.
    """
    return render_batch([args])


def render_batch(batch: Sequence[RenderArgs]) -> list[str]:
    """:func:`render` for several inputs (``--text`` or ``--image`` repeated) in one go.

    Every input is checked before the model loads; the model loads once; each input's
    figures are saved (and dropped) before the next input is prepared, so memory holds one
    input's figures at a time. All or nothing over the whole batch: an error on any input
    writes nothing, and names the input (``--text 3 of 5 ('...')``) when there are several.

    Args:
        batch: one :class:`RenderArgs` per input, differing only in ``text`` / ``image``.

    Returns:
        The paths written, input by input, in order.
    """
    batch = [normalize_args(args) for args in batch]
    if not batch:
        raise ProbeError("nothing to render: pass --text or --image")
    for index, args in enumerate(batch):
        try:
            _check_args(args)
        except ProbeError as exc:
            if len(batch) == 1:
                raise
            raise ProbeError(f"{_which(batch, index)}: {exc}") from None
    _check_distinct(batch)
    from probe._progress import silence_library_bars, silence_progress
    from probe.commands._backend import import_matplotlib

    import_matplotlib()  # a bad MPLBACKEND before the model loads

    first = batch[0]
    silence_library_bars()
    if first.quiet:
        silence_progress()
    if "html" in first.formats and first.view not in HTML_VIEWS:
        html_pages(first.view, None)  # type: ignore[arg-type]  # raises: no HTML form
    out = first.out
    created = _make_out(out)
    import shutil
    import tempfile

    done = False
    # absolute: the writers expand a leading "~", which --out (like --image) keeps literal
    staging = tempfile.mkdtemp(prefix=".probe-render-", dir=os.path.abspath(out))
    try:
        staged: list[str] = []
        generated: list[str] = []
        notes: list[str] = []
        loaded: dict[Any, Any] = {}
        for index, args in enumerate(batch):
            try:
                session = _stage(args, staging, staged, loaded)
            except ProbeError as exc:
                if len(batch) == 1:
                    raise
                raise ProbeError(f"{_which(batch, index)}: {exc}") from None
            if "generated" in session.extra:
                generated.append(session.extra["generated"])
            if "note" in session.extra:
                notes.append(session.extra["note"])
            if session.modality == "text" and session.text:
                which = "--text" if len(batch) == 1 else f"--text {index + 1} of {len(batch)}"
                note = unknown_words_note(session.processor, session.text, session.model_name,
                                          which)
                if note is not None:
                    notes.append(note)
        paths = _commit(staging, out, staged)
        done = True
        for text in generated:
            _report_generated(text)
        for note in notes:  # after success: an error stays the only line
            _report_note(note)
        return paths
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not done:
            try:
                os.rmdir(out)  # only if still empty
            except OSError:
                pass


def _stage(args: RenderArgs, staging: str, staged: list[str], loaded: dict[Any, Any]) -> Any:
    """Build one input's figures and pages and save them into ``staging`` (names appended to
    ``staged``); returns the :class:`Session`."""
    session = _session(args, loaded)
    check_attention_view(session)
    from probe.viewers import figure_width

    fig_formats = [f for f in args.formats if f != "html"]
    view = STACK_FIGURES[args.view] if args.stack is not None else VIEWS[args.view]
    with figure_width(figure_inches(args)):  # --width: every figure of the view
        try:
            figures = view(session) if fig_formats else []
        except ProbeError as exc:  # a viewer's width= refusal, in --width's words
            if args.width is None:
                raise
            raise ProbeError(cli_width_wording(str(exc), args.view, args.width)) from None
    if "html" not in args.formats:
        pages = []
    elif args.stack is not None:
        pages = STACK_PAGES[args.view](session)
    else:
        pages = html_pages(args.view, session)
    from probe.viewers import save_figure

    names = [f"{stem}.{fmt}" for stem, _ in figures for fmt in fig_formats]
    names += [f"{stem}.html" for stem, _ in pages]
    clash = sorted(set(names) & set(staged))
    if clash:  # the file name digests every option and the input: a true duplicate
        raise ProbeError(f"{clash[0]} would be written twice: pass each input once")
    for stem, fig in figures:
        for fmt in fig_formats:
            save_figure(fig, os.path.join(staging, f"{stem}.{fmt}"), format=fmt, dpi=args.dpi)
    for stem, page in pages:
        page.save(os.path.join(staging, f"{stem}.html"))
    staged.extend(names)
    return session


def _check_distinct(batch: Sequence[RenderArgs]) -> None:
    """The inputs of a batch: all text or all image, each given once."""
    inputs = (("--text", [a.text for a in batch]), ("--image", [a.image for a in batch]))
    for flag, values in inputs:
        seen: set[str] = set()
        for value in values:
            if value is None:
                continue
            key = os.path.abspath(value) if flag == "--image" else value
            if key in seen:
                raise ProbeError(f"{flag} {value!r} is given twice: pass each input once")
            seen.add(key)


def _which(batch: Sequence[RenderArgs], index: int) -> str:
    """``--text 3 of 5 ('The animal ...')``: which input of a batch an error is about."""
    args = batch[index]
    flag, value = ("--image", args.image) if args.image is not None else ("--text", args.text)
    shown = value if value is None or len(value) <= 40 else (
        "..." + value[-37:] if flag == "--image" else value[:37] + "..."  # a path's end names it
    )
    return f"{flag} {index + 1} of {len(batch)} ({shown!r})"


def _report_note(note: str) -> None:
    import sys

    print(note, file=sys.stderr, flush=True)


def _report_generated(text: str) -> None:
    """The generated text, as one ``generated: ...`` line on stderr (stdout keeps only the
    written paths, one a line)."""
    import sys

    line = " ".join(text.split())
    print(f"generated: {line}", file=sys.stderr, flush=True)


def _commit(staging: str, out: str, names: list[str]) -> list[str]:
    """Rename the staged files ``names`` from ``staging`` into ``out``: all of them or none.

    Every target is checked before the first rename (a folder or other non-file in the way is
    an error). A file already at a target is kept as a hard link (or copy) in ``staging``
    until all renames succeeded; if one fails, or the process is interrupted, the ones done
    are undone and the replaced files restored.

    Returns:
        The paths written, in order.
    """
    targets = [os.path.join(out, name) for name in names]
    for target in targets:
        if os.path.lexists(target) and (os.path.isdir(target) or not os.path.isfile(target)):
            raise ProbeError(
                f"cannot write {target}: something that is not a file has that name; move it "
                "or choose another --out"
            )
    backups = os.path.join(staging, ".replaced")
    os.mkdir(backups)
    done: list[tuple[str, str | None]] = []  # (target, backup of the file it replaced)
    try:
        for name, target in zip(names, targets):
            backup = None
            if os.path.lexists(target):
                backup = os.path.join(backups, name)
                _keep_copy(target, backup)
            os.replace(os.path.join(staging, name), target)
            done.append((target, backup))
    except BaseException as exc:
        for target, backup in reversed(done):
            try:
                if backup is None:
                    os.unlink(target)
                else:
                    os.replace(backup, target)
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise ProbeError(
                f"cannot write {exc.filename or out} ({exc.strerror or exc}): nothing was "
                "written; check --out"
            ) from None
        raise
    return targets


def _keep_copy(path: str, backup: str) -> None:
    """``backup`` holds ``path``'s current file: a hard link, or a copy where links fail."""
    try:
        os.link(path, backup, follow_symlinks=False)
    except OSError:
        import shutil

        shutil.copy2(path, backup, follow_symlinks=False)


# ----------------------------------------------------------------------------- command line
#: one line per view in ``probe render --help`` (at most 64 characters: one line of an
#: 80-column terminal), and the details of some, wrapped under them
_VIEW_HELP = {
    "heads": "every head of --layer; every layer x head without --layer",
    "head": "one head (--layer, --head) as a heatmap with token labels",
    "links": "bertviz-style link diagram of --layer (all heads, or --head)",
    "coref": "which words --word links to, per head",
    "rollout": "attention rollout: token strip (text) or image overlay",
    "saliency": "one --method as token strip or image overlay + per-head CLS maps",
    "compare": "several methods side by side, with agreement and faithfulness",
    "curves": "deletion/insertion curves of several methods",
    "detr": "each DETR object query's cross-attention, box and class",
    "window": "Swin: where token --query attends within its window, per head",
    "gates": "CNN attention gates beside GradCAM (cnn-shapes)",
    "alignment": "word alignment of --text and its translation (toy-mt)",
    "cross": "image-to-text: where each written token looked (caption-shapes)",
}
_VIEW_DETAILS = {
    "coref": "--text, --word; --occurrence, --candidate, --context (a long text is drawn as "
    "an excerpt; all: the whole text). One sentence is no evidence: see 'probe eval coref'",
    "links": "--word highlights a word's lines (--occurrence picks a repeated one)",
    "compare": "text without --pair: the methods that need no target, and no faithfulness",
    "detr": "default detr-shapes, or a DETR folder; --query, --layer",
    "cross": "default caption-shapes and a generated scene (--seed), or --image FILE; --layer: "
    "one decoder layer (default every layer averaged); the caption goes to stderr as "
    "'generated: ...'",
    "window": "--query is row-major on the grid of block --layer (default the centre); "
    "default swin-shapes, or --model timm:swin_...",
    "gates": "branch and channel-spatial gates get figures of their own; --layer S: stage "
    "S's blocks, else each stage's last",
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
        help="render one analysis as a figure: PNG, SVG, PDF or HTML",
        description="Render one analysis of one input as figure files and print their "
        "paths.\n\nText views default to --model minilm; image views "
        "(rollout/saliency/compare/curves with an image model) default to --model vit-shapes "
        "and a generated sample image.",
        formatter_class=HelpFormatter,
        epilog="views:\n"
        + "".join(f"  {name:<10} {_VIEW_HELP.get(name, '')}\n" for name in views)
        + "\ndetails:\n"
        + "".join(f"  {name:<10} {_VIEW_DETAILS[name]}\n" for name in views
                  if name in _VIEW_DETAILS)
        + "\nexamples:\n"
        "  probe render coref --word it \\\n"
        "      --text \"The animal didn't cross the street because it was too tired.\"\n"
        "  probe render saliency --method relevance --format png --format pdf\n"
        "  probe render compare --text \"A man is playing a guitar.\" \\\n"
        "      --pair \"Someone plays music.\"",
    )
    add = render_parser.add_argument
    add("view", choices=views, metavar="VIEW", help="one of: " + ", ".join(views))
    add("--model", help="minilm, vit-shapes, timm:<name>, a HF folder or hub id")
    add(
        "--text", action="append", dest="texts", default=[],
        help="input sentence (text models); repeat it to render several sentences with one "
        "model load",
    )
    add(
        "--text-file", metavar="FILE",
        help="render every non-blank line of this UTF-8 file as a --text (- reads standard "
        "input)",
    )
    add("--pair", help="second sentence: target = cosine similarity to it (for every --text)")
    add(
        "--image", action="append", dest="images", default=[],
        help="image file (image models; repeatable); default: a generated sample",
    )
    add("--word", help="word of --text to follow (coref); links: the word whose lines are "
        "highlighted")
    add(
        "--occurrence", type=int, default=None, metavar="N",
        help="coref, links: which occurrence of a repeated --word (0 = the first, the default; "
        "-1 = the last)",
    )
    add(
        "--candidate", action="append", dest="candidates", default=[], metavar="WORD",
        help="coref: a candidate antecedent (repeatable; default: the content words before "
        "--word)",
    )
    add(
        "--context", default=None, choices=("excerpt", "all"),
        help="coref figures: excerpt (the default) draws a long text from the earliest marked "
        "antecedent to the end of --word's sentence, with ... where text is cut; all draws the "
        "whole text",
    )
    add("--layer", type=int, help="layer index (negative counts from the end); gates: the stage")
    add("--head", type=int, help="head index (negative counts from the end)")
    add(
        "--method", action="append", dest="methods", default=[],
        help="attribution method (repeatable; see 'probe models --methods'); "
        + DEFAULT_METHODS_HELP,
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
    add(
        "--block", type=int, metavar="B",
        help="gradcam: the block whose input tokens it weighs (ViT, DeiT: the transformer "
        "block; Swin: blocks counted over all stages; CNNs: the stage); negative counts from "
        "the end; default -1, the last (saliency, compare, curves with gradcam among the "
        "methods)",
    )
    add("--out", default="probe-out", help="output directory (default: probe-out)")
    add(
        "--format", action="append", dest="formats", choices=FORMATS, default=[],
        help="png, svg, pdf or html (repeatable; default png)",
    )
    add("--dpi", type=int, default=200, help="raster resolution (default 200)")
    add(
        "--width", metavar="W",
        help="figure width as printed: single (one column, 3.5 in), double (7.0 in) or inches; "
        "panels wrap into rows to fit, text stays >= 6 pt (else an error says what fits)",
    )
    add("--seed", type=int, default=0, help="seed of the generated sample image")
    add("--pretrained", action="store_true", help="timm: download weights (network)")
    add("--quiet", action="store_true", help="no progress bars")
    add(
        "--generate", type=int, metavar="N",
        help="let the model generate N tokens from --text and show the attention of the whole "
        "sequence (heads/head/links/alignment; the text goes to stderr as 'generated: ...')",
    )
    add(
        "--stack", choices=STACKS, metavar="STACK",
        help="encoder, decoder or cross: which attention of an encoder-decoder "
        "heads/head/links show (cross: decoder tokens attend to source tokens)",
    )
    add(
        "--query", type=int, action="append", dest="queries", default=[], metavar="I",
        help="detr: an object query to show (repeatable; default: those scoring >= 0.5); "
        "window: a query token, row-major on the block's grid (default the centre); negative "
        "counts from the end",
    )
    add(
        "--max-values", type=int, metavar="N",
        help="with --format html: the page's size budget in embedded values (default "
        "20000000); a page over it is refused with the options that select less",
    )
    add(
        "--direction", default="auto", choices=("auto", "ltr", "rtl"),
        help="text views: lay the tokens out left to right or right to left; auto (the "
        "default) reads it from the text's first strong letter (Arabic, Hebrew: right to left)",
    )
    add(
        "--device", default="cpu", metavar="DEVICE",
        help="where the model runs: cpu (default), cuda, cuda:N or auto (cuda when available); "
        "the model is moved once after loading, inputs follow it, figures are drawn from "
        "CPU copies",
    )
    render_parser.set_defaults(run=run)
    return render_parser


def run(ns: argparse.Namespace) -> int:
    """Run ``probe render`` from parsed arguments: render, print the written paths."""
    import dataclasses

    names = RenderArgs.__dataclass_fields__
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(ns).items() if k in names}
    if not values.get("formats"):
        values["formats"] = ("png",)
    base = RenderArgs(**values)
    texts = list(ns.texts) + (_read_text_file(ns.text_file) if ns.text_file is not None else [])
    if texts and ns.images:
        raise ProbeError("pass either --text or --image, not both")
    if texts:
        batch = [dataclasses.replace(base, text=text) for text in texts]
    elif ns.images:
        batch = [dataclasses.replace(base, image=image) for image in ns.images]
    else:
        batch = [base]
    for path in render_batch(batch):
        _print_path(path)
    return 0


def _read_text_file(path: str) -> list[str]:
    """The non-blank lines of ``--text-file`` (UTF-8, a BOM allowed; ``-`` reads standard
    input), each stripped."""
    import sys

    from probe._text import not_utf8

    name = "- (standard input)" if path == "-" else repr(path)
    try:
        if path == "-":
            if sys.stdin is None or sys.stdin.closed:
                raise ProbeError("--text-file -: standard input is closed: pipe the sentences in")
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
        text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
        lines = [line.strip() for line in text.split("\n")]  # not splitlines: U+2028 stays
    except FileNotFoundError:
        from probe._atomic import dangling_link

        link = dangling_link(path)
        if link is not None:
            raise ProbeError(f"--text-file {name} {link}: fix the link or pass the text file "
                             "itself") from None
        raise ProbeError(f"--text-file {name} does not exist: pass a text file") from None
    except IsADirectoryError:
        raise ProbeError(f"--text-file {name} is a directory: pass a text file") from None
    except UnicodeDecodeError as exc:
        raise ProbeError(f"--text-file {name} {not_utf8(data, exc)}: save it as UTF-8") from None
    except OSError as exc:
        raise ProbeError(
            f"cannot read --text-file {name} ({exc.strerror}): pass a readable text file"
        ) from None
    texts = [line for line in lines if line]
    if not texts:
        raise ProbeError(f"--text-file {name} has no non-blank line: one sentence per line")
    return texts


def _print_path(path: str) -> None:
    """Print a written path; one with bytes that are not UTF-8 goes out as those bytes."""
    import sys

    try:
        print(path)
    except UnicodeEncodeError:
        sys.stdout.flush()
        sys.stdout.buffer.write(os.fsencode(path) + b"\n")
        sys.stdout.flush()
