"""``probe eval sanity|coref|alignment|text`` and ``faithfulness`` on cnn-shapes and
swin-shapes over two processes; the accelerate command.

Each two-process run is compared with the one-process run of the same command line: the
JSONs must agree to float tolerance (timings, versions and the process split aside), and each
process must have done its share. One launcher start-up serves the four evals
(``tests/_eval_driver.py``), through ``accelerate launch --multi_gpu --num_processes 2``, the
accelerate form that starts two processes on a CPU machine (``--cpu`` starts one); torchrun
itself is tested in ``tests/test_distributed_eval.py``. The README's exact command line
(``-m probe.cli``) runs under ``-m slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import probe
from probe.evaluation._distributed import launcher_hint
from tests._eval_driver import differences

DRIVER = Path(__file__).with_name("_eval_driver.py")
# small and cheap, but each eval split: 4 sentences of 2 pairs, 2 batches of 2 images,
# 2 batches of 2 sentences, 2 sentence pairs; sanity with one attention and one gradient
# method, text with attention against an 8-step Integrated Gradients; on the CPU also where
# CUDA is available (benchmarks/gpu.sh runs the GPU comparison)
COMMANDS = {
    "coref": ["eval", "coref", "--n", "2", "--quiet", "--device", "cpu"],
    "sanity": ["eval", "sanity", "--n", "4", "--batch-size", "2", "--method", "attention",
               "--method", "gradcam", "--quiet", "--device", "cpu"],
    "alignment": ["eval", "alignment", "--n", "4", "--batch-size", "2", "--quiet",
                  "--device", "cpu"],
    "text": ["eval", "text", "--n", "2", "--method", "attention", "--option", "ig.n_steps=8",
             "--quiet", "--device", "cpu"],
}
SHARES = {"coref": [2, 2], "sanity": [1, 1], "alignment": [1, 1], "text": [1, 1]}
# faithfulness on grid-scored models (a CNN, a Swin): 2 batches of 2 images, cheap methods
COMMANDS.update({
    f"faithfulness-{model}": ["eval", "faithfulness", "--model", model, "--n", "4",
                              "--batch-size", "2", "--method", "gradcam", "--method", "random",
                              "--quiet", "--device", "cpu"]
    for model in ("cnn-shapes", "swin-shapes")
})
SHARES.update({"faithfulness-cnn-shapes": [1, 1], "faithfulness-swin-shapes": [1, 1]})
# the README's accelerate command: --multi_gpu is accelerate's multi-process launcher
# (torchrun underneath), CPU machines included; port 0: a free port
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
              "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no", "--main_process_port", "0"]


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _one_process(tmp_path: Path, task: str) -> dict:
    import torch

    from probe.cli import main

    out = tmp_path / f"one-{task}.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the launched processes (OMP_NUM_THREADS=1): float32 sums
    try:  # in another thread split differ in the last bits (text's SEs by 1.4e-6 relative)
        assert main([*COMMANDS[task], "--json", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    return json.loads(out.read_text())


def test_evals_on_two_processes_give_the_one_process_json(tmp_path: Path):
    commands = [[*argv, "--json", str(tmp_path / f"two-{task}.json")]
                for task, argv in COMMANDS.items()]
    launched = subprocess.run(
        [*ACCELERATE, str(DRIVER), json.dumps(commands)],
        env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count("wrote ") == len(COMMANDS)  # the main process alone writes
    for task in COMMANDS:
        one = _one_process(tmp_path, task)
        two = json.loads((tmp_path / f"two-{task}.json").read_text())
        items = sum(SHARES[task])
        assert one["processes"] == {
            "count": 1, "items_per_process": [items], "devices": ["cpu"],
        }, task
        assert two["processes"] == {
            "count": 2, "items_per_process": SHARES[task], "devices": ["cpu", "cpu"],
        }, task
        assert differences(one, two) == [], task


@pytest.mark.slow
def test_the_readme_accelerate_command_starts_two_cpu_processes(tmp_path: Path):
    two = tmp_path / "two.json"
    launched = subprocess.run(
        [*ACCELERATE, "-m", "probe.cli", *COMMANDS["coref"], "--json", str(two)],
        env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count("wrote ") == 1
    result = json.loads(two.read_text())
    devices = result["processes"].pop("devices")  # the default --device auto: GPUs if any
    assert result["processes"] == {"count": 2, "items_per_process": SHARES["coref"]}
    assert len(devices) == 2
    assert differences(_one_process(tmp_path, "coref"), result) == []


def test_accelerate_cpu_single_process_is_explained():
    alone = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    hint = launcher_hint(alone)
    assert hint is not None and "--multi_gpu --num_processes N" in hint
    assert launcher_hint({**alone, "WORLD_SIZE": "2"}) is None  # really launched
    assert launcher_hint({**alone, "OMPI_COMM_WORLD_SIZE": "2"}) is None  # under mpirun
    assert launcher_hint({"ACCELERATE_USE_CPU": "True"}) is None  # --num_processes 1
    assert launcher_hint({}) is None


def test_batch_size_is_refused_where_it_means_nothing(capsys):
    from probe.cli import main

    assert main(["eval", "coref", "--n", "2", "--batch-size", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--batch-size" in err[0] and "coref" in err[0]
    with pytest.raises(probe.ProbeError, match="batch_size"):
        from probe.evaluation._alignment_eval import eval_alignment

        eval_alignment(None, None, n=2, batch_size=0)  # type: ignore[arg-type]


def test_idle_processes_are_reported(capsys):
    from probe.commands._eval import _note_idle

    _note_idle([2, 2])
    assert capsys.readouterr().err == ""
    _note_idle([1, 0, 0])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "process(es) 1, 2 of 3 got no work" in err[0]
