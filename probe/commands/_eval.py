"""``probe eval TASK``: run one evaluation task, print its table, write its JSON.

The tasks themselves live in :mod:`probe.evaluation.tasks`; this module parses the command
line into :class:`EvalArgs` and dispatches.

Under ``accelerate launch --num_processes N`` or ``torchrun --nproc_per_node N`` every process
runs this command: the task splits its items between the processes and gathers the results
(:mod:`probe.evaluation._distributed`), and only the main process prints and writes the JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._report import check_output_file, jsonable, write_json
from probe.evaluation._device import DEVICE_HELP

if TYPE_CHECKING:
    from torch import nn

__all__ = ["EvalArgs", "add_parser", "run", "run_eval"]

EVALS = ("faithfulness", "sanity", "text", "coref", "alignment")
BATCHED = ("faithfulness", "sanity", "alignment")  # evals taking --batch-size
MAX_N = 100_000  # 200x the default; beyond it the generated images alone outgrow memory
MAX_SEED = 2**32 - 1  # the evals seed torch generators with 1000 * seed + batch (< 2**64)


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
    batch_size: int | None = None
    data: str | None = None
    device: str = "auto"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``probe eval`` to the top-level subparsers."""
    ev = subparsers.add_parser(
        "eval",
        help="evaluate methods: faithfulness on ground truth, sanity checks, text agreement, "
        "coreference heads on minimal pairs",
        description="Evaluate attribution methods and attention heads. TASK is one of:\n\n"
        "  faithfulness  pointing game, mass on object, deletion/insertion AUC and time per "
        "image on generated shapes\n"
        "  sanity        cascading randomisation\n"
        "  text          agreement with Integrated Gradients and ERASER scores on shipped "
        "sentence pairs\n"
        "  coref         per head, rollout and majority of heads: accuracy on Winograd-style "
        "minimal pairs, binomial p-values, a held-out choice of the best head\n"
        "  alignment     alignment error rate of cross-attention heads, gradients and random "
        "on the toy-mt language pair",
    )
    ev.add_argument("task", choices=EVALS, metavar="TASK", help="one of: " + ", ".join(EVALS))
    ev.add_argument(
        "--model",
        help="default: vit-shapes (faithfulness, sanity), minilm (text, coref), toy-mt (alignment)",
    )
    ev.add_argument("--json", help="write the results to this JSON file (missing folders are "
                    "created)")
    ev.add_argument("--n", type=int, help=f"number of images / pairs / sentences, 1..{MAX_N} "
                    "(default: 500 images for faithfulness, 16 for sanity, 200 alignment pairs, "
                    "every shipped pair for text and coref)")
    ev.add_argument(
        "--data", metavar="FILE",
        help="coref: minimal pairs, one 'sentence|pronoun|correct|distractor' per line, "
        "consecutive lines pairing up (default: the shipped pairs)",
    )
    ev.add_argument("--seed", type=int, default=0,
                    help=f"evaluation seed, 0..{MAX_SEED} (faithfulness, sanity: 0..979) "
                    "(default 0): images, randomised weights, random baselines, bootstrap and "
                    "the coref held-out split")
    ev.add_argument("--method", action="append", dest="methods", default=[],
                    help="restrict methods")
    ev.add_argument(
        "--option", action="append", dest="options", default=[], metavar="METHOD.OPTION=VALUE",
        help="a method option (repeatable), e.g. rollout.head_fusion=max or ig.n_steps=16; "
        "'probe models --methods' lists each method's options",
    )
    ev.add_argument(
        "--batch-size", type=int, dest="batch_size", metavar="B",
        help="faithfulness: images per attribution call (default 50); sanity: images per "
        "randomisation cascade (default 4); alignment: sentences generated at once (default "
        "50). The unit split between processes under accelerate launch/torchrun, and the "
        "unit of the per-batch seeds",
    )
    ev.add_argument("--device", default="auto", metavar="DEVICE", help=DEVICE_HELP)
    ev.add_argument("--quick", action="store_true",
                    help="small fast run: --n 48 faithfulness, 4 sanity, 8 text, 10 coref, 24 "
                    "alignment (an explicit --n wins)")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(run=run)
    return ev


def run(ns: argparse.Namespace) -> int:
    """Run ``probe eval`` from parsed arguments."""
    import sys

    from probe._progress import silence_library_bars, silence_progress
    from probe.evaluation._distributed import launcher_hint

    hint = launcher_hint()
    if hint:
        print(f"probe eval: {hint}", file=sys.stderr)
    silence_library_bars()
    if ns.quiet:
        silence_progress()
    args = EvalArgs(
        task=ns.task, model=ns.model, json=ns.json, n=ns.n, seed=ns.seed,
        methods=tuple(ns.methods), options=tuple(ns.options), quick=ns.quick, quiet=ns.quiet,
        batch_size=ns.batch_size,
        data=ns.data,
        device=ns.device,
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
            ``tokenizer`` goes with it for text. It runs on ``args.device`` and goes back to
            its own device afterwards (a loaded model is moved once and stays).
        options: method -> keyword options for :func:`probe.attribute`, merged over the
            ``--option`` assignments of ``args`` (default: the methods' defaults).

    Raises:
        ProbeError: bad options or a model that does not fit the task.
    """
    from probe.attribution._registry import parse_method_options
    from probe.evaluation import tasks

    task = args.task
    if args.data is not None and task != "coref":  # alignment ignored it, silently
        raise ProbeError(f"--data only applies to the coref eval, not {task}: drop it")
    if task == "alignment":
        return _run_alignment(args, model, tokenizer)
    if task not in tasks.DEFAULT_N:
        raise ProbeError(f"unknown eval task {task!r}: use one of {sorted(tasks.DEFAULT_N)}")
    _check_seed(args.seed)
    if task in ("faithfulness", "sanity") and args.seed > tasks.MAX_IMAGE_SEED:
        # every model: the CNN and Swin faithfulness evals did not check it at all
        raise ProbeError(
            f"--seed {args.seed} would draw images from the shapes models' training seeds; "
            f"use --seed 0..{tasks.MAX_IMAGE_SEED}"
        )
    _check_n(args.n, upper=task not in ("coref", "text"))  # theirs: after the data, below
    _check_model(args.model)
    if args.batch_size is not None and task not in BATCHED:
        raise ProbeError(
            f"--batch-size applies to the {', '.join(BATCHED)} evals, not to {task!r}: drop it"
        )
    if args.batch_size is not None and args.batch_size < 1:
        raise ProbeError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.json is not None:  # "" too: it wrote nothing, silently
        check_output_file(args.json)  # before minutes of work, not after
    device = _device(args.device)
    if args.data is not None and not args.data.strip():  # was "cannot read ... from ."
        raise ProbeError("--data is empty: name a pairs file, or drop --data for the shipped "
                         "pairs")
    if task == "coref" and (args.methods or args.options or options):
        raise ProbeError(
            "the coref eval scores attention heads and rollout, not attribution methods: "
            "drop --method/--option"
        )
    from probe.attribution._registry import method_spec

    for method in args.methods:  # an unknown name was refused only after the model loaded
        try:
            method_spec(method)
        except ProbeError as exc:
            raise ProbeError(f"--method: {exc}") from None
    available = _available(args)  # a bad --data file, or --n beyond it: before the model loads
    _check_n(args.n)
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
    if args.n is None and n is not None and available is not None:
        n = min(n, available)  # --quick on a pairs file shorter than its 10
    from probe._progress import silence_progress
    from probe.evaluation._distributed import gather_list, session

    with session() as current:
        if current.rank != 0:
            silence_progress()  # one progress bar: the main process's
        quiet = args.quiet or current.rank != 0
        result, where = _run_task(args, n, method_opts, model, tokenizer, device, quiet=quiet)
        items = gather_list(sum(current.shards))
        devices = gather_list(where)
    if current.rank != 0:
        return 0
    result["processes"] = {
        "count": current.world_size, "items_per_process": items, "devices": devices,
    }
    _note_idle(items)
    result["quick"] = bool(args.quick)
    result["versions"] = _versions()
    if (args.model or (tasks.DEFAULT_MODEL[task] if model is None else None)) == "vit-shapes":
        result["model_weights"] = _vit_shapes_weights()
    printer = {
        "faithfulness": tasks.faithfulness_markdown,
        "sanity": tasks.sanity_markdown,
        "text": tasks.text_markdown,
        "coref": tasks.coref_markdown,
    }
    from probe.evaluation._cnn_eval import GRID_TASKS

    if result.get("task") in GRID_TASKS:  # CNNs and Swin: scored on their unit grid
        from probe.evaluation._cnn_eval import cnn_faithfulness_markdown

        printer["faithfulness"] = cnn_faithfulness_markdown
    print(printer[task](result))
    if args.json:
        path = write_json(args.json, jsonable(result), indent=2)
        print(f"wrote {path}")
    return 0


def _run_task(
    args: EvalArgs,
    n: int | None,
    method_opts: Any,
    model: nn.Module | None,
    tokenizer: Any,
    device: str,
    *,
    quiet: bool,
) -> tuple[dict[str, Any], str]:
    """Load the model unless given, place it on ``device`` and run the task on this
    process's share of the items; returns the result and the device the model ran on."""
    from probe.evaluation import tasks
    from probe.evaluation._device import place_model

    task = args.task
    name = args.model
    injected = model is not None
    if model is None:
        from probe.models._registry import load_model

        name = name or tasks.DEFAULT_MODEL[task]
        model, tokenizer = load_model(name)
    batch = {} if args.batch_size is None else {"batch_size": args.batch_size}
    runner: dict[str, Callable[[], dict[str, Any]]] = {
        "faithfulness": lambda: tasks.eval_faithfulness(
            model, n=n, seed=args.seed, methods=args.methods, quiet=quiet, model_name=name,
            options=method_opts, **batch,
        ),
        "sanity": lambda: tasks.eval_sanity(
            model, n=n, seed=args.seed, methods=args.methods, quiet=quiet, model_name=name,
            options=method_opts, **batch,
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
    if task == "faithfulness" and _is_cnn(model):
        # CNNs: CBAM spatial gates, GradCAM, IG and random on the unit grid; Swin: GradCAM,
        # IG, saliency and random on the stage-0 patch grid (no whole-image attention)
        from probe.evaluation import _cnn_eval

        chosen = tuple((m, dict((method_opts or {}).get(m, {}))) for m in args.methods) or None
        runner["faithfulness"] = lambda: _cnn_eval.eval_cnn_faithfulness(
            model, n=n, seed=args.seed, methods=chosen, **batch
        )
    with place_model(model, device, restore=injected) as where:
        return runner[task](), where


def _run_alignment(args: EvalArgs, model: nn.Module | None, tokenizer: Any) -> int:
    """``probe eval alignment`` (see :mod:`probe.evaluation._alignment_eval`)."""
    from probe.evaluation import _alignment_eval as task

    _check_seed(args.seed)
    if args.methods or args.options:
        raise ProbeError("probe eval alignment takes no --method or --option: drop them")
    _check_n(args.n, upper=False)
    if args.n is not None:
        with _cli_n():
            task.select_pairs(args.n)  # beyond the held-out split: before the model loads
    _check_model(args.model)
    if args.batch_size is not None and args.batch_size < 1:
        raise ProbeError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.json is not None:  # "" too: it wrote nothing, silently
        check_output_file(args.json)
    device = _device(args.device)
    n = args.n if args.n is not None else (task.QUICK_N if args.quick else task.DEFAULT_N)
    name = args.model or "toy-mt"
    injected = model is not None
    if model is None:
        from probe.models._registry import load_model

        model, tokenizer = load_model(name)
    batch = {} if args.batch_size is None else {"batch_size": args.batch_size}
    from probe._progress import silence_progress
    from probe.evaluation._device import place_model
    from probe.evaluation._distributed import gather_list, session

    with session() as current:
        if current.rank != 0:
            silence_progress()
        with place_model(model, device, restore=injected) as where:
            result = task.eval_alignment(
                model, tokenizer, n=n, seed=args.seed, model_name=name,
                quiet=args.quiet or current.rank != 0, **batch,
            )
        items = gather_list(sum(current.shards))
        devices = gather_list(where)
    if current.rank != 0:
        return 0
    result["processes"] = {
        "count": current.world_size, "items_per_process": items, "devices": devices,
    }
    _note_idle(items)
    result["quick"] = bool(args.quick)
    result["versions"] = _versions()
    print(task.alignment_markdown(result))
    if args.json:
        path = write_json(args.json, jsonable(result), indent=2)
        print(f"wrote {path}")
    return 0


def _available(args: EvalArgs) -> int | None:
    """The number of pairs the text and coref evals will score (``None`` for the other
    tasks), read before the model loads: a bad ``--data`` file, or an ``--n`` beyond the pairs
    (which silently ran on fewer), is refused here."""
    if args.task == "coref":
        from probe.evaluation.tasks._coref import select_coref_pairs

        with _cli_n():
            return len(select_coref_pairs(args.n, data=args.data))
    if args.task == "text":
        from probe.evaluation.tasks._text import select_sentence_pairs

        with _cli_n():
            return len(select_sentence_pairs(args.n))
    return None


@contextmanager
def _cli_n() -> Iterator[None]:
    """The tasks' refusals of ``n=`` worded as ``--n``."""
    from probe.evaluation.tasks._common import cli_n_wording

    try:
        yield
    except ProbeError as exc:
        worded = cli_n_wording(str(exc))
        if worded == str(exc):
            raise
        raise ProbeError(worded) from None


def _check_seed(seed: int) -> None:
    """``--seed``: 0..MAX_SEED (a huge one reached torch's generators, which take < 2**64,
    as ``1000 * seed + batch``, after the model had loaded)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ProbeError(f"--seed {seed!r} is out of range: use 0..{MAX_SEED} (e.g. 0)")


def _check_n(n: int | None, *, upper: bool = True) -> None:
    """``--n``: positive and, with ``upper``, at most :data:`MAX_N` (evals of shipped data
    check it after the data: beyond it, their own count is the bound to name)."""
    if n is not None and n < 1:
        raise ProbeError(f"--n must be a positive integer, got {n}")
    if upper and n is not None and n > MAX_N:
        raise ProbeError(f"--n {n} is more than the {MAX_N} inputs an eval holds in memory: "
                         f"use --n 1..{MAX_N}")


def _check_model(name: str | None) -> None:
    if name is not None and not name.strip():  # "" ran the default model
        raise ProbeError("--model is empty: drop it for the task's default model or name one")


def _device(spec: str) -> str:
    """``--device`` resolved for this process (:func:`resolve_device`), its note on stderr."""
    from probe.evaluation._device import resolve_device

    choice = resolve_device(spec)
    if choice.note:
        import sys

        print(f"probe eval: {choice.note}", file=sys.stderr)
    return choice.device


def _note_idle(items: list[int]) -> None:
    """One line on stderr when some processes got no unit of work (fewer units than
    processes): the run is correct but those processes only loaded the model."""
    idle = [rank for rank, count in enumerate(items) if count == 0]
    if idle:
        import sys

        print(
            f"probe eval: process(es) {', '.join(map(str, idle))} of {len(items)} got no work "
            "(fewer units than processes): lower --batch-size or raise --n to use them",
            file=sys.stderr,
        )


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


def _is_cnn(model: Any) -> bool:
    """CNNs and windowed-attention models: evaluated on their unit grid without attention."""
    from probe.evaluation._cnn_eval import is_cnn, is_windowed

    return is_cnn(model) or is_windowed(model)
