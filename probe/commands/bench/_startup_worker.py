"""One fresh process of ``probe bench --part startup``: ``probe render coref`` on MiniLM, step
by step as :func:`probe.commands.render.render` takes them, with the wall and CPU time of
each step.

The imports that loading MiniLM pulls in are taken first, one group at a time, so their
cost shows on its own line (importing them first changes where the time is counted, not
how much there is): ``torch``; the parts of torch that ``transformers.modeling_utils``
imports although a BERT forward never uses them (TorchDynamo, ``torch.distributed.tensor``);
the ``transformers`` package; its index of every model folder (``transformers.models``); the
rest of ``modeling_utils``; the BERT code. Then: probe's render command, loading the model
(files into the model: config, weights, tokenizer), the capture, matplotlib and probe's
viewers, the figure, and saving the PNG.

``python -m probe.commands.bench._startup_worker OUT_DIR`` prints one JSON line:
``{"phases": [[name, wall_s, cpu_s], ...], "files": [...]}``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from probe.commands.bench._cli import COREF_TEXT

__all__ = ["IMPORT_GROUPS", "measure_phases"]

#: (phase name, modules imported in it), in order.
IMPORT_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("import torch", ("torch",)),
    ("import torch._dynamo + torch.distributed.tensor (for transformers)",
     ("torch._dynamo", "torch.distributed.tensor")),
    ("import transformers (package)", ("transformers",)),
    ("import transformers.models (index of all models)", ("transformers.models",)),
    ("import transformers.modeling_utils (rest)", ("transformers.modeling_utils",)),
    ("import BERT model + tokenizer code", ("transformers.models.bert.modeling_bert",
                                            "transformers.models.bert.tokenization_bert")),
)


def _now() -> tuple[float, float]:
    t = os.times()
    return time.perf_counter(), t.user + t.system


def measure_phases(out_dir: str) -> dict[str, Any]:
    """Render the coref figure of :data:`COREF_TEXT` into ``out_dir``, timing each step.

    Returns:
        ``{"phases": [[name, wall_s, cpu_s], ...], "files": [written file names]}``; a step
        whose modules were already imported (in-process use) measures near zero.
    """
    phases: list[list[Any]] = []
    start = _now()

    def step(name: str, fn: Callable[[], Any]) -> Any:
        nonlocal start
        result = fn()
        end = _now()
        phases.append([name, round(end[0] - start[0], 4), round(end[1] - start[1], 4)])
        start = end
        return result

    for name, modules in IMPORT_GROUPS:
        step(name, lambda modules=modules: [importlib.import_module(m) for m in modules])

    def render_modules() -> Any:
        from probe.commands.render._args import RenderArgs
        from probe.commands.render._figures import VIEWS
        from probe.commands.render._session import _check_args, _session, normalize_args

        return RenderArgs, VIEWS, _check_args, _session, normalize_args

    RenderArgs, VIEWS, check_args, session_for, normalize_args = step(  # noqa: N806
        "import probe render command", render_modules)

    def load() -> Any:
        from probe._progress import silence_library_bars, silence_progress

        args = normalize_args(RenderArgs(
            view="coref", model="minilm", text=COREF_TEXT, word="it", out=out_dir,
            formats=("png",), quiet=True,
        ))
        check_args(args)
        silence_library_bars()
        silence_progress()
        return session_for(args)

    session = step("load model (config, weights, tokenizer)", load)
    step("capture (probe.trace)", session.trace)

    def plotting() -> Any:
        import matplotlib.backends.backend_agg
        import matplotlib.figure  # noqa: F401

        from probe.viewers import save_figure

        return save_figure

    save_figure = step("import matplotlib + probe.viewers", plotting)
    figures = step("figure (coref view)", lambda: VIEWS["coref"](session))

    def save() -> list[str]:
        os.makedirs(out_dir, exist_ok=True)
        names = []
        for stem, fig in figures:
            save_figure(fig, os.path.join(out_dir, f"{stem}.png"), format="png", dpi=200)
            names.append(f"{stem}.png")
        return names

    files = step("save PNG (draw, encode, write)", save)
    return {"phases": phases, "files": files}


if __name__ == "__main__":
    print(json.dumps(measure_phases(sys.argv[1])), flush=True)
    os._exit(0)  # as the probe console script leaves: no interpreter teardown
