"""Shared command-line plumbing of the recipes (argument parsing and saving figures)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def recipe_parser(**kwargs: Any) -> argparse.ArgumentParser:
    """The argument parser of a recipe: a bad or repeated option (``--dpi abc``, ``--out a
    --out b``, which argparse took as ``b``) is one ``error:`` line and exit code 2, as the
    recipes' own checks (argparse printed its usage line too)."""
    from probe.commands._parser import Parser

    class RecipeParser(Parser):
        def error_line(self, message: str) -> str:
            return f"error: {message} (see --help)\n"

    return RecipeParser(**kwargs)


def parser(description: str, default_out: str = "probe-out") -> argparse.ArgumentParser:
    p = recipe_parser(description=description)
    p.add_argument("--out", default=default_out, help=f"output directory (default {default_out})")
    p.add_argument("--format", action="append", dest="formats", choices=("png", "svg", "pdf"),
                   default=[], help="figure format, repeatable (default png)")
    p.add_argument("--dpi", type=int, default=150)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def valid_outputs(args: argparse.Namespace, *, counts: Sequence[str] = ()) -> bool:
    """``False`` (after one ``error:`` line on stderr) when an option is out of range.

    Checked before any work, creating nothing: ``--out`` must be a folder that can be made and
    written (not a file, not under a file, not read-only), ``--dpi`` in 10..2400 (as ``probe
    render``), ``--json`` (when the recipe has it) a writable file path, and every option in
    ``counts`` (attribute names, e.g. ``"images"``) >= 0.
    """
    from probe._errors import ProbeError
    from probe._report import check_output_dir, check_output_file

    try:
        for name in counts:
            if getattr(args, name) < 0:
                raise ProbeError(f"--{name.replace('_', '-')} must be >= 0")
        if not 10 <= args.dpi <= 2400:
            raise ProbeError(f"--dpi {args.dpi} is out of range: use 10..2400 (e.g. 150)")
        check_output_dir(args.out)
        if getattr(args, "json", None):
            try:
                check_output_file(args.json)
            except ProbeError as exc:
                raise ProbeError(f"--json: {exc}") from None
    except ProbeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    return True


def figures_main(
    argv: Sequence[str] | None,
    p: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], list[str]],
    *,
    counts: Sequence[str] = (),
) -> int:
    """A figure recipe's ``main``: parse ``argv`` with ``p``, check the options
    (:func:`valid_outputs`, with ``counts``), honour ``--quiet``, then print every path that
    ``run(args)`` wrote, one a line.

    Returns:
        The exit code: 0 done, 2 bad options (nothing done).
    """
    args = p.parse_args(argv)
    if not valid_outputs(args, counts=counts):
        return 2
    quiet(args.quiet)
    for path in run(args):
        print(path)
    return 0


def eval_args(description: str, argv: list[str] | None, *, what: str, images: int,
              min_n: int = 1, json_help: str = "write the evaluation JSON here",
              ) -> argparse.Namespace | None:
    """The options the figure-and-evaluation recipes share (``--n``, ``--images``, ``--json``,
    ``--threads`` and :func:`parser`'s), parsed and checked before any work; ``None`` after
    one ``error:`` line on stderr when one is out of range (the recipe returns 2).

    Args:
        description: the recipe's ``--help`` line.
        argv: the command line (``None``: ``sys.argv``).
        what: what ``--n`` counts, e.g. ``"images"``.
        images: the default of ``--images``, the inputs drawn as figures.
        min_n: the smallest ``--n`` the evaluation can use.
        json_help: the help of ``--json``.
    """
    p = parser(description)
    p.add_argument("--n", type=int, default=500, help=f"evaluation {what} (default 500)")
    p.add_argument("--images", type=int, default=images,
                   help=f"{what} with figures (default {images})")
    p.add_argument("--json", default=None, help=json_help)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)
    if args.n < min_n or args.images < 0:
        print(f"error: --n must be >= {min_n} and --images >= 0", file=sys.stderr)
        return None
    return args if valid_outputs(args) else None


def write_results(args: argparse.Namespace, written: list[str], result: Any) -> int:
    """The end of an evaluation recipe: write ``result`` as JSON to ``--json`` when given (its
    path joins ``written``), then print ``wrote <path>`` for every path in ``written`` unless
    ``--quiet``.

    Returns:
        0, the exit code.
    """
    if args.json:
        from probe._report import jsonable, write_json

        write_json(args.json, jsonable(result), indent=1)
        written.append(args.json)
    if not args.quiet:
        print("\n".join(f"wrote {w}" for w in written))
    return 0


def quiet(enabled: bool) -> None:
    """Silence progress bars when ``enabled`` (the recipes' ``--quiet``)."""
    if enabled:
        from probe._progress import silence_progress

        silence_progress()


def save(fig: Figure, out: str, stem: str, formats: Sequence[str], dpi: int) -> list[str]:
    """Save ``fig`` as ``out/stem.<format>`` for every format (atomically); return the paths."""
    from probe.viewers import save_figure

    os.makedirs(out, exist_ok=True)
    paths = []
    for fmt in formats or ("png",):
        path = os.path.join(out, f"{stem}.{fmt}")
        save_figure(fig, path, format=fmt, dpi=dpi)
        paths.append(path)
    return paths
