"""Run several ``probe eval`` command lines in one process group: one launcher start-up
(``torchrun``/``accelerate launch``, two processes importing torch on two busy cores) serves
them all. Usage: ``python tests/_eval_driver.py '[["eval", "coref", ...], [...]]'``.

The group is joined here, before the commands, so each command's evaluation session finds it
running and leaves it up for the next one (:func:`probe.evaluation._distributed.session`).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

TIMING = frozenset({"run_time_s", "seconds_per_image", "seconds", "versions", "processes"})
"""JSON keys that differ between runs by nature (times, versions, the process split)."""


def differences(a: Any, b: Any, path: str = "", skip: frozenset[str] = TIMING) -> list[str]:
    """Where two eval JSONs differ beyond float tolerance (``skip`` keys aside)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) - skip != set(b) - skip:
            return [f"{path}: keys {sorted((set(a) ^ set(b)) - skip)}"]
        return [d for k in a if k not in skip for d in differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b))
                for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        same = math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
        return [] if same else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def run(commands: list[list[str]]) -> int:
    import os

    import torch.distributed as dist

    from probe.cli import main

    if "WORLD_SIZE" not in os.environ:  # not launched: one process, no group
        return max((main(argv) for argv in commands), default=0)
    dist.init_process_group(backend="gloo")
    try:
        for argv in commands:
            code = main(argv)
            if code:
                return code
        return 0
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(run(json.loads(sys.argv[1])))
