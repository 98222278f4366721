"""``probe eval TASK``: run one evaluation task, print its table, write its JSON.

The tasks themselves live in :mod:`probe.evaluation.tasks`; this module parses the command
line into :class:`EvalArgs` and dispatches.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._report import jsonable, write_json

if TYPE_CHECKING:
    from torch import nn

__all__ = ["EvalArgs", "add_parser", "run", "run_eval"]

EVALS = ("faithfulness", "sanity", "text", "coref")


@dataclass(frozen=True)
class EvalArgs:
    """Options of ``probe eval``."""

    task: str
    model: str | None = None
    json: str | None = None
    n: int | None = None
    seed: int = 0
    methods: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    quick: bool = False
    quiet: bool = False
    data: str | None = None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``probe eval`` to the top-level subparsers."""
    ev = subparsers.add_parser(
        "eval",
        help="evaluate methods: faithfulness on ground truth, sanity checks, text agreement, "
        "coreference heads on minimal pairs",
        description="faithfulness: pointing game, mass on object, deletion/insertion AUC and "
        "time per image on generated shapes; sanity: cascading randomisation; text: agreement "
        "with Integrated Gradients and ERASER scores on shipped sentence pairs; coref: per head, "
        "rollout and majority of heads, accuracy on Winograd-style minimal pairs with binomial "
        "p-values and a held-out choice of the best head.",
    )
    ev.add_argument("task", choices=EVALS, metavar="TASK", help="one of: " + ", ".join(EVALS))
    ev.add_argument(
        "--model", help="default: vit-shapes (faithfulness, sanity), minilm (text, coref)"
    )
    ev.add_argument("--json", help="write the results to this JSON file")
    ev.add_argument("--n", type=int, help="number of images / pairs")
    ev.add_argument(
        "--data", metavar="FILE",
        help="coref: minimal pairs, one 'sentence|pronoun|correct|distractor' per line, "
        "consecutive lines pairing up (default: the shipped pairs)",
    )
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--method", action="append", dest="methods", default=[], help="restrict methods")
    ev.add_argument(
        "--option", action="append", dest="options", default=[], metavar="METHOD.OPTION=VALUE",
        help="a method option (repeatable), e.g. rollout.head_fusion=max or ig.n_steps=16; "
        "'probe models --methods' lists each method's options",
    )
    ev.add_argument("--quick", action="store_true", help="small fast run")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(run=run)
    return ev


def run(ns: argparse.Namespace) -> int:
    """Run ``probe eval`` from parsed arguments."""
    from probe._progress import silence_library_bars, silence_progress

    silence_library_bars()
    if ns.quiet:
        silence_progress()
    args = EvalArgs(
        task=ns.task, model=ns.model, json=ns.json, n=ns.n, seed=ns.seed,
        methods=tuple(ns.methods), options=tuple(ns.options), quick=ns.quick, quiet=ns.quiet,
        data=ns.data,
    )
    return run_eval(args)


def run_eval(
    args: EvalArgs,
    *,
    model: nn.Module | None = None,
    tokenizer: Any = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> int:
    """``probe eval TASK``: run one evaluation, print its table, write JSON. Returns 0.

    Args:
        args: the parsed options.
        model: use this model instead of loading ``args.model`` (tests inject tiny models);
            ``tokenizer`` goes with it for text.
        options: method -> keyword options for :func:`probe.attribute`, merged over the
            ``--option`` assignments of ``args`` (default: the methods' defaults).

    Raises:
        ProbeError: bad options or a model that does not fit the task.
    """
    from probe.attribution._registry import parse_method_options
    from probe.evaluation import tasks

    task = args.task
    if task not in tasks.DEFAULT_N:
        raise ProbeError(f"unknown eval task {task!r}: use one of {sorted(tasks.DEFAULT_N)}")
    if isinstance(args.seed, bool) or not isinstance(args.seed, int) or args.seed < 0:
        raise ProbeError(f"--seed must be a non-negative integer, got {args.seed!r}")
    if args.n is not None and args.n < 1:
        raise ProbeError(f"--n must be a positive integer, got {args.n}")
    if args.data is not None and task != "coref":
        raise ProbeError(f"--data only applies to the coref eval, not {task}: drop it")
    if task == "coref" and (args.methods or args.options or options):
        raise ProbeError(
            "the coref eval scores attention heads and rollout, not attribution methods: "
            "drop --method/--option"
        )
    if task == "coref" and args.data is not None:
        from probe.evaluation.tasks import load_coref_pairs

        load_coref_pairs(args.data)  # a bad file fails before the model loads
    method_opts: Any = options
    if args.options:  # --option assignments, typed by the methods' declarations
        parsed: dict[str, Any] = parse_method_options(args.options)
        if isinstance(options, dict):
            for method, given in options.items():
                both = isinstance(given, dict)
                parsed[method] = {**parsed.get(method, {}), **given} if both else given
        elif options is not None:
            raise ProbeError("options must map a method name to a dict of its keyword options")
        method_opts = parsed
    n = args.n if args.n is not None else (
        tasks.QUICK_N[task] if args.quick else tasks.DEFAULT_N[task]
    )
    name = args.model
    if model is None:
        from probe.models._registry import load_model

        name = name or tasks.DEFAULT_MODEL[task]
        model, tokenizer = load_model(name)
    runner: dict[str, Callable[[], dict[str, Any]]] = {
        "faithfulness": lambda: tasks.eval_faithfulness(
            model, n=n, seed=args.seed, methods=args.methods, quiet=args.quiet, model_name=name,
            options=method_opts,
        ),
        "sanity": lambda: tasks.eval_sanity(
            model, n=n, seed=args.seed, methods=args.methods, quiet=args.quiet, model_name=name,
            options=method_opts,
        ),
        "text": lambda: tasks.eval_text(
            model, tokenizer, n=n, seed=args.seed, methods=args.methods, quiet=args.quiet,
            model_name=name, options=method_opts,
        ),
        "coref": lambda: tasks.eval_coref(
            model, tokenizer, n=n, seed=args.seed, data=args.data, quiet=args.quiet,
            model_name=name,
        ),
    }
    result = runner[task]()
    result["quick"] = bool(args.quick)
    result["versions"] = _versions()
    if name == "vit-shapes":
        result["model_weights"] = _vit_shapes_weights()
    printer = {
        "faithfulness": tasks.faithfulness_markdown,
        "sanity": tasks.sanity_markdown,
        "text": tasks.text_markdown,
        "coref": tasks.coref_markdown,
    }
    print(printer[task](result))
    if args.json:
        path = write_json(args.json, jsonable(result), indent=2)
        print(f"wrote {path}")
    return 0


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    from probe._version import __version__

    out: dict[str, str | None] = {"probe": __version__}
    for name in ("torch", "transformers", "timm", "captum"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    import platform

    out["python"] = platform.python_version()
    return out


def _vit_shapes_weights() -> dict[str, Any]:
    """sha256 and training metadata of the shipped ``vit-shapes`` weights (which file ran)."""
    import hashlib

    from probe.models._vit_shapes import WEIGHTS_PATH, read_vit_shapes_metadata

    digest = hashlib.sha256(Path(WEIGHTS_PATH).read_bytes()).hexdigest()
    return {"sha256": digest, "metadata": read_vit_shapes_metadata()}
