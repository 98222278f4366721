"""``probe eval --device``: resolution per process, errors, model placement, the CPU JSON.

No test needs a GPU: the resolution is a pure function of the ``--device`` string, the
launcher's environment and a device count, tested with fake counts and with
``torch.cuda.is_available``/``device_count`` monkeypatched. The GPU run itself is
``benchmarks/gpu.sh`` (CPU and GPU JSONs compared there).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import probe
from probe.commands.bench._parallel import json_differences
from probe.evaluation._device import DeviceChoice, place_model, resolve_device

ONE = {}  # one process: no launcher variables
RANK0 = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
RANK1 = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}
RANK3 = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "3"}


@pytest.mark.parametrize(
    "spec,env,available,count,device,noted",
    [
        # auto
        ("auto", ONE, False, 0, "cpu", False),
        ("auto", RANK1, False, 0, "cpu", False),
        ("auto", ONE, True, 2, "cuda", False),
        ("auto", RANK0, True, 2, "cuda:0", False),
        ("auto", RANK1, True, 2, "cuda:1", False),
        ("auto", RANK1, True, 1, "cuda:0", True),  # more ranks than GPUs: wrap around
        ("auto", RANK3, True, 2, "cuda:1", True),
        ("auto", ONE, True, 0, "cpu", False),  # CUDA built in but no device
        # cpu
        ("cpu", RANK1, True, 2, "cpu", False),
        ("CPU", ONE, True, 2, "cpu", False),
        ("cpu:0", ONE, False, 0, "cpu", False),
        # cuda
        ("cuda", ONE, True, 1, "cuda", False),
        ("cuda", RANK1, True, 2, "cuda:1", False),
        ("cuda", RANK1, True, 1, "cuda:0", True),
        # cuda:N: the user's choice, on every rank
        ("cuda:1", ONE, True, 2, "cuda:1", False),
        ("cuda:1", RANK0, True, 2, "cuda:1", False),
        ("cuda:0", RANK1, True, 1, "cuda:0", False),
        # a launcher of one process is one process
        ("cuda", {"WORLD_SIZE": "1", "LOCAL_RANK": "0"}, True, 2, "cuda", False),
    ],
)
def test_device_resolution_table(spec, env, available, count, device, noted):
    choice = resolve_device(spec, environ=env, cuda_available=available, device_count=count)
    assert choice.device == device
    assert (choice.note is not None) == noted
    if noted:
        assert f"shares {device}" in choice.note and "gloo" in choice.note


@pytest.mark.parametrize(
    "spec,env,available,count,match",
    [
        ("cuda", ONE, False, 0, "no CUDA device"),
        ("cuda:0", RANK1, False, 0, "no CUDA device"),
        ("cuda", ONE, True, 0, "no CUDA device"),
        ("cuda:2", ONE, True, 2, r"2 CUDA device\(s\): use cuda:0 to cuda:1"),
        ("gpu", ONE, True, 1, "not a device torch understands"),
        ("cuda:x", ONE, True, 1, "not a device torch understands"),
        ("cuda:-1", ONE, True, 1, "not a device torch understands|cuda:N"),
        ("mps", ONE, True, 1, "models on cpu or cuda"),
        ("meta", ONE, True, 1, "models on cpu or cuda"),
        ("", ONE, True, 1, "auto, cpu, cuda or cuda:N"),
        ("auto", {"WORLD_SIZE": "two"}, True, 1, "WORLD_SIZE='two' must be an integer"),
        ("cuda", {"WORLD_SIZE": "2", "LOCAL_RANK": "-1"}, True, 1, "LOCAL_RANK=-1"),
    ],
)
def test_device_errors_name_the_problem_and_the_fix(spec, env, available, count, match):
    with pytest.raises(probe.ProbeError, match=match) as info:
        resolve_device(spec, environ=env, cuda_available=available, device_count=count)
    assert "\n" not in str(info.value)


def test_resolution_reads_torch_and_the_environment_by_default(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for name, value in RANK1.items():
        monkeypatch.setenv(name, value)
    assert resolve_device("auto") == DeviceChoice("cuda:1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda").device == "cuda:0"
    for name in RANK1:
        monkeypatch.delenv(name)
    assert resolve_device("auto") == DeviceChoice("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)  # ignored without CUDA
    assert resolve_device("auto") == DeviceChoice("cpu")
    with pytest.raises(probe.ProbeError, match="no CUDA device"):
        resolve_device("cuda:0")


# ----------------------------------------------------------------------------- the CLI
FAITH = ["eval", "faithfulness", "--quick", "--n", "2", "--batch-size", "1", "--quiet",
         "--method", "rollout", "--method", "random"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer on a machine without CUDA")
@pytest.mark.parametrize("device,message", [
    ("cuda", "no CUDA device here: use --device cpu"),
    ("cuda:1", "no CUDA device here"),
    ("tpu!", "is not a device torch understands"),
    ("mps", "models on cpu or cuda"),
])
def test_cli_refuses_a_device_with_one_line_and_exit_2(capsys, tmp_path, device, message):
    from probe.cli import main

    out = tmp_path / "r.json"
    for task in (FAITH, ["eval", "alignment", "--n", "1", "--quiet"]):
        assert main([*task, "--device", device, "--json", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err
        assert not out.exists()


def test_device_cpu_gives_the_json_of_the_default(tmp_path: Path):
    from probe.cli import main

    default, cpu = tmp_path / "default.json", tmp_path / "cpu.json"
    assert main([*FAITH, "--json", str(default)]) == 0
    assert main([*FAITH, "--device", "cpu", "--json", str(cpu)]) == 0
    a, b = json.loads(default.read_text()), json.loads(cpu.read_text())
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert a["processes"]["devices"] == [expected] and b["processes"]["devices"] == ["cpu"]
    assert json_differences(a, b) == []
    assert set(a["methods"]) == {"rollout", "random"}


def test_place_model_moves_and_restores_and_leaves_dispatched_models_alone():
    accelerate = pytest.importorskip("accelerate")
    from tests._tiny import TIMM

    model, pixels = TIMM["vit"]()
    moves = []
    original_to = model.to

    def spy(*args, **kwargs):
        moves.append(args)
        return original_to(*args, **kwargs)

    model.to = spy  # instance attribute: nn.Module.to is looked up on the instance
    with place_model(model, "cpu") as where:
        assert where == "cpu"
    assert moves == [(torch.device("cpu"),)]
    del model.to

    # a model dispatched by accelerate (weights offloaded to meta) is never moved
    dispatched = accelerate.cpu_offload(TIMM["vit"]()[0], execution_device="cpu")
    hooks = [m.__dict__.get("_hf_hook") for m in dispatched.modules()]
    with place_model(dispatched, "cpu", restore=True) as where:
        assert where == "cpu"
    assert [m.__dict__.get("_hf_hook") for m in dispatched.modules()] == hooks
    assert any(p.device.type == "meta" for p in dispatched.parameters())  # still offloaded


def test_place_model_makes_the_rank_gpu_current_and_restores_it(monkeypatch):
    """cuda:N is CUDA's current device while the body runs, undone also when it raises (a
    recording stand-in for torch.cuda.device: this machine has no GPU)."""
    from tests._tiny import TIMM

    events = []

    class Current:
        def __init__(self, device):
            self.device = device

        def __enter__(self):
            events.append(("enter", str(self.device)))

        def __exit__(self, *exc):
            events.append(("exit", str(self.device)))
            return False

    monkeypatch.setattr(torch.cuda, "device", Current)
    model, _ = TIMM["vit"]()
    model.to = lambda *a, **k: model  # no GPU to move to: only the device switch is checked
    monkeypatch.setattr("probe.capture.adapter_for", lambda m: type("A", (), {"device": "x"}))
    with pytest.raises(RuntimeError, match="boom"):
        with place_model(model, "cuda:1"):
            assert events == [("enter", "cuda:1")]
            raise RuntimeError("boom")
    assert events == [("enter", "cuda:1"), ("exit", "cuda:1")]
    events.clear()
    with place_model(model, "cpu"):
        pass
    assert events == []  # the CPU switches nothing
