"""The ``probe`` command line: parse, call the public API, save. Nothing else lives here.

``probe --help`` and ``probe render --help`` import neither torch nor matplotlib: every heavy
import happens inside the command handlers.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from probe._errors import ProbeError
from probe._version import __version__

__all__ = ["main"]

VIEWS = ("heads", "head", "links", "coref", "rollout", "saliency", "compare", "curves")
FORMATS = ("png", "svg", "pdf")
EVALS = ("faithfulness", "sanity", "text")


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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


@dataclass(frozen=True)
class EvalArgs:
    """Options of ``probe eval``."""

    task: str
    model: str | None = None
    json: str | None = None
    n: int | None = None
    seed: int = 0
    methods: tuple[str, ...] = ()
    quick: bool = False
    quiet: bool = False


@dataclass(frozen=True)
class BenchArgs:
    """Options of ``probe bench``."""

    json: str | None = None
    quick: bool = False
    device: str = "auto"
    repeats: int = 5
    quiet: bool = False
    parts: tuple[str, ...] = field(default_factory=tuple)
    threads: int | None = None


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="probe",
        description="Attention interpretability for PyTorch transformers: capture, analyze, render.",
        epilog="Embedded offline models: minilm (text), vit-shapes (vision). "
        "Run 'probe models' for the list.",
    )
    parser.add_argument("--version", action="version", version=f"probe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    render = sub.add_parser(
        "render",
        help="render a figure (PNG/SVG/PDF) of one analysis",
        description="Render one analysis of one input as figure files and print their paths. "
        "Text views default to --model minilm; image views (rollout/saliency/compare/curves "
        "with an image model) default to --model vit-shapes and a generated sample image.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="views:\n"
        "  heads     every head of --layer, or every layer x head without --layer\n"
        "  head      one head (--layer, --head) as a heatmap with token labels\n"
        "  links     bertviz-style link diagram of --layer (all heads, or --head)\n"
        "  coref     which words --word links to, per head and by rollout (--text, --word)\n"
        "  rollout   attention rollout: token strip (text) or saliency overlay (image)\n"
        "  saliency  one method (--method) as token strip or image overlay + per-head CLS maps\n"
        "  compare   several methods side by side with agreement and faithfulness\n"
        "  curves    deletion/insertion curves of several methods\n\n"
        "examples:\n"
        "  probe render coref --text \"The animal didn't cross the street because it was too "
        "tired.\" --word it\n"
        "  probe render saliency --method relevance --format png --format pdf\n"
        "  probe render compare --text \"A man is playing a guitar.\" --pair \"Someone plays "
        "music.\"",
    )
    render.add_argument("view", choices=VIEWS, metavar="VIEW", help="one of: " + ", ".join(VIEWS))
    render.add_argument("--model", help="minilm, vit-shapes, timm:<name>, a HF folder or hub id")
    render.add_argument("--text", help="input sentence (text models)")
    render.add_argument("--pair", help="second sentence: target = cosine similarity to it")
    render.add_argument("--image", help="image file (image models); default: a generated sample")
    render.add_argument("--word", help="word of --text to follow (coref)")
    render.add_argument("--layer", type=int, help="layer index (negative counts from the end)")
    render.add_argument("--head", type=int, help="head index")
    render.add_argument(
        "--method", action="append", dest="methods", default=[],
        help="attribution method (repeatable; see 'probe models --methods')",
    )
    render.add_argument("--fusion", default="mean", help="rollout head fusion: mean, max or min")
    render.add_argument("--discard", type=float, default=0.0, help="rollout discard ratio in [0, 1)")
    render.add_argument("--out", default="probe-out", help="output directory (default: probe-out)")
    render.add_argument(
        "--format", action="append", dest="formats", choices=FORMATS, default=[],
        help="png, svg or pdf (repeatable; default png)",
    )
    render.add_argument("--dpi", type=int, default=200, help="raster resolution (default 200)")
    render.add_argument("--seed", type=int, default=0, help="seed of the generated sample image")
    render.add_argument("--pretrained", action="store_true", help="timm: download weights (network)")
    render.add_argument("--quiet", action="store_true", help="no progress bars")

    models = sub.add_parser("models", help="list embedded models and attribution methods")
    models.add_argument("--methods", action="store_true", help="also list attribution methods")

    ev = sub.add_parser(
        "eval",
        help="evaluate methods: faithfulness on ground truth, sanity checks, text agreement",
        description="faithfulness: pointing game, mass on object, deletion/insertion AUC and "
        "time per image on generated shapes; sanity: cascading randomisation; text: agreement "
        "with Integrated Gradients and ERASER scores on shipped sentence pairs.",
    )
    ev.add_argument("task", choices=EVALS, metavar="TASK", help="one of: " + ", ".join(EVALS))
    ev.add_argument("--model", help="default: vit-shapes (faithfulness, sanity), minilm (text)")
    ev.add_argument("--json", help="write the results to this JSON file")
    ev.add_argument("--n", type=int, help="number of images / pairs")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--method", action="append", dest="methods", default=[], help="restrict methods")
    ev.add_argument("--quick", action="store_true", help="small fast run")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")

    bench = sub.add_parser(
        "bench",
        help="benchmark capture overhead, memory, analyzer speed and CLI start-up",
        description="Side-by-side timings in one process (warm-up, median of repeats), "
        "reported as ratios; CPU, plus CUDA when available.",
    )
    bench.add_argument("--json", help="write the results to this JSON file")
    bench.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    bench.add_argument("--device", default="auto", help="auto, cpu or cuda")
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument(
        "--part", action="append", dest="parts", default=[],
        choices=("capture", "memory", "analyzers", "cli"), help="run only these parts",
    )
    bench.add_argument(
        "--threads", type=int, help="torch CPU threads (default 1, or PROBE_BENCH_THREADS)"
    )
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _fields(cls: type, ns: argparse.Namespace) -> dict:
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    values = {k: v for k, v in vars(ns).items() if k in names}
    for k, v in values.items():
        if isinstance(v, list):
            values[k] = tuple(v)
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``probe`` command. Returns the exit code."""
    parser = _build_parser()
    try:
        ns = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, --version, parse errors
        return int(exc.code or 0)
    if ns.command is None:
        parser.print_help()
        return 0
    if ns.command in ("eval", "bench"):
        from probe._progress import silence_library_bars, silence_progress

        silence_library_bars()
        if ns.quiet:
            silence_progress()
    try:
        if ns.command == "render":
            args = RenderArgs(**_fields(RenderArgs, ns))
            if not args.formats:
                args = RenderArgs(**{**args.__dict__, "formats": ("png",)})
            from probe.commands._render import render

            paths = render(args)
            for path in paths:
                print(path)
            return 0
        if ns.command == "models":
            return _models(ns.methods)
        if ns.command == "eval":
            from probe.evaluation._tasks import run_eval

            return run_eval(EvalArgs(**_fields(EvalArgs, ns)))
        if ns.command == "bench":
            from probe.commands._bench import run_bench

            return run_bench(BenchArgs(**_fields(BenchArgs, ns)))
    except ProbeError as exc:
        print(f"probe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("probe: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: one line unless debugging
        if os.environ.get("PROBE_DEBUG"):
            raise
        print(
            f"probe: internal error: {type(exc).__name__}: {exc} (this is a bug; rerun with "
            "PROBE_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return 1
    return 2


def _models(with_methods: bool) -> int:
    from probe.models._registry import list_models

    print("embedded models (offline):")
    for name, (modality, desc) in list_models().items():
        print(f"  {name:<12} {modality:<7} {desc}")
    print("also: timm:<name> (random init, --pretrained to download), a HF folder or hub id")
    if with_methods:
        from probe._text import plain_text
        from probe.attribution._registry import list_methods, method_spec

        print("attribution methods:")
        for name in list_methods():
            spec = method_spec(name)
            print(f"  {name:<12} {'/'.join(spec.modalities):<12} {plain_text(spec.description)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
