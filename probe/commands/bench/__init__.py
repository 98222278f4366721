"""``probe bench``: what capture and analysis cost, measured side by side in one process.

Every timing is the median of several repeats after a warm-up, and every comparison is a
ratio of variants measured *interleaved*: in each repeat all variants run once, round-robin,
in an order rotated from repeat to repeat, so that noise from a shared machine hits all of
them alike. A ratio is the median over repeats of the per-repeat ratio (paired). Absolute
times are recorded as context only.

Parts (``--part``; all by default; the registry is :data:`~probe.commands.bench._parts.PARTS`):

* ``capture`` (:mod:`._capture`): forward with :func:`probe.trace` against the plain forward
  of the same model as loaded (SDPA / fused attention), its eager forward, and its eager
  forward keeping the attention maps (``output_attentions=True``, what bertviz users run).
  MiniLM at 128 and 512 tokens and a random-init ViT-S/16 at 224x224.
* ``memory`` (:mod:`._memory`): peak memory a forward adds on long inputs (1024-4096 tokens,
  MiniLM-sized random BERT), one fresh process per measurement (:mod:`._memory_worker`): the
  plain SDPA forward, ``output_attentions=True`` and probe's streaming rollout; plus the check
  that the streaming rollout equals :func:`probe.rollout` of the full ``output_attentions``.
* ``analyzers`` (:mod:`._analyzers`, :mod:`._throughput`): :func:`probe.rollout` and
  :func:`probe.relevance_from_gradients` on a ViT-S trace against straightforward reference
  loops (as in the research code), against the forward that produced the trace and against
  one forward plus one backward; and the throughput (images per second) of every vision
  attribution method on ``vit-shapes`` and ViT-S at batch 1 and 32.
* ``cli`` (:mod:`._cli`): cold start of ``probe --help`` and ``probe render coref`` end to end.
* ``parallel`` (:mod:`._parallel`): ``probe eval sanity`` in one process and in two
  (``torchrun``), eval time, wall clock and CPU time side by side, the JSONs compared.

The results are one JSON document (machine, settings, raw medians, ratios, goals and whether
each is met; :mod:`._run`, :mod:`._goals`); :func:`to_markdown` renders it as tables
(``python -m probe.commands.bench --markdown OUT.json``).

CPU timings run with one torch thread by default (``PROBE_BENCH_THREADS`` overrides it; 0
keeps torch's default): on a machine whose cores are shared, multi-threaded kernels spend
most of their time waiting for preempted threads and ratios become meaningless.
"""

from __future__ import annotations

from probe.commands.bench._analyzers import (
    VisionCase,
    bench_analyzers,
    reference_relevance,
    reference_rollout,
)
from probe.commands.bench._capture import VARIANTS, CaptureCase, bench_capture
from probe.commands.bench._cli import bench_cli
from probe.commands.bench._goals import GOALS, evaluate_goals
from probe.commands.bench._markdown import main, to_markdown
from probe.commands.bench._memory import bench_memory
from probe.commands.bench._parts import PARTS, BenchPart
from probe.commands.bench._run import machine_info, run_bench
from probe.commands.bench._settings import SCHEMA, BenchSettings, make_settings
from probe.commands.bench._timing import paired_ratio, time_interleaved

__all__ = [
    "GOALS",
    "PARTS",
    "SCHEMA",
    "VARIANTS",
    "BenchPart",
    "BenchSettings",
    "CaptureCase",
    "VisionCase",
    "bench_analyzers",
    "bench_capture",
    "bench_cli",
    "bench_memory",
    "evaluate_goals",
    "machine_info",
    "main",
    "make_settings",
    "paired_ratio",
    "reference_relevance",
    "reference_rollout",
    "run_bench",
    "time_interleaved",
    "to_markdown",
]
