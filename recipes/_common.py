"""Shared command-line plumbing of the recipes (argument parsing and saving figures)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def parser(description: str, default_out: str = "probe-out") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", default=default_out, help=f"output directory (default {default_out})")
    p.add_argument("--format", action="append", dest="formats", choices=("png", "svg", "pdf"),
                   default=[], help="figure format, repeatable (default png)")
    p.add_argument("--dpi", type=int, default=150)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


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
