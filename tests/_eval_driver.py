"""Run several ``probe eval`` command lines in one process group: one launcher start-up
(``torchrun``/``accelerate launch``, two processes importing torch on two busy cores) serves
them all. Usage: ``python tests/_eval_driver.py '[["eval", "coref", ...], [...]]'``.

The group is joined here, before the commands, so each command's evaluation session finds it
running and leaves it up for the next one (:func:`probe.evaluation._distributed.session`).
"""

from __future__ import annotations

import json
import sys

from probe.commands.bench._parallel import json_differences as differences  # noqa: F401


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
        dist.barrier()  # both processes done before either tears its connections down
        return 0
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(run(json.loads(sys.argv[1])))
