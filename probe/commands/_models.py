"""``probe models``: list the embedded models, or with ``--methods`` the attribution methods
with the options each declares."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``probe models`` to the top-level subparsers."""
    models = subparsers.add_parser("models", help="list embedded models and attribution methods")
    models.add_argument(
        "--methods", action="store_true",
        help="list the attribution methods and their options instead of the models",
    )
    models.set_defaults(run=run)
    return models


def run(ns: argparse.Namespace) -> int:
    """Print the models, or with ``--methods`` the methods with their options."""
    if ns.methods:
        _print_methods()
        return 0
    from probe.models._registry import list_models

    models = list_models()
    width = max([12, *(len(name) for name in models)])
    print("embedded models (offline):")
    for name, (modality, desc) in models.items():
        print(f"  {name:<{width}} {modality:<7} {desc}")
    print("also: timm:<name> (random init, --pretrained to download), a HF folder or hub id")
    print("attribution methods: probe models --methods")
    return 0


def _print_methods() -> None:
    from probe._text import plain_text
    from probe.attribution._registry import list_methods, method_spec

    print("attribution methods (options: name=default):")
    names = list_methods(every=True)
    width = max([12, *(len(name) for name in names)])
    for name in names:
        spec = method_spec(name)
        print(f"  {name:<{width}} {'/'.join(spec.modalities):<12} {plain_text(spec.description)}")
        if spec.options:
            opts = ", ".join(f"{o.name}={o.default!r}" for o in spec.options)
            print(f"  {'':<{width}} {'':<12} options: {opts}")
        if spec.needs is not None:
            print(f"  {'':<{width}} {'':<12} needs: a model with {spec.needs}")
