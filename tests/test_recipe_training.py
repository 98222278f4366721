"""The shared scaffolding of the training recipes (``probe.recipes._training``), without
training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from probe.recipes._training import (
    LossLog,
    adamw,
    below_floor,
    deterministic,
    lr_at,
    save_weights,
    training_parser,
    valid_args,
)


def _parser(**kw):
    return training_parser(
        prog="p", description="d", steps=10, n_eval=20, batch_size=4, lr=1e-3,
        weight_decay=0.1, out=Path("w.safetensors"), **kw,
    )


def test_parser_defaults_and_floor_option() -> None:
    args = _parser().parse_args([])
    assert (args.seed, args.steps, args.n_eval, args.batch_size, args.threads) == (0, 10, 20, 4, 1)
    assert (args.lr, args.weight_decay, args.min_accuracy, args.quiet) == (1e-3, 0.1, 0.97, False)
    detr = _parser(floor="recall", floor_default=0.4, batch_unit="scenes")
    assert detr.parse_args([]).min_recall == 0.4
    text = " ".join(detr.format_help().split())  # argparse wraps the help lines
    assert "--min-recall" in text and "--min-accuracy" not in text
    assert "fresh scenes per step" in text
    assert "optimiser steps (default 10)" in text
    assert "below this held-out recall (default 0.4)" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "0"], "error: --steps must be >= 1"),
        (["--n-eval", "0"], "error: --n-eval must be >= 1"),
        (["--batch-size", "-1"], "error: --batch-size must be >= 1"),
        (["--threads", "0"], "error: --threads must be >= 1"),
        (["--seed", "-1"], "error: --seed must be >= 0"),
    ],
)
def test_invalid_arguments_print_one_line(argv: list[str], message: str, capsys) -> None:
    assert not valid_args(_parser().parse_args(argv))
    assert capsys.readouterr().err.splitlines() == [message]


def test_valid_arguments_print_nothing(capsys) -> None:
    assert valid_args(_parser().parse_args(["--seed", "3", "--steps", "1"]))
    assert capsys.readouterr().err == ""


def test_below_floor(capsys) -> None:
    assert not below_floor("recall", 0.4, 0.4)
    assert capsys.readouterr().err == ""
    assert below_floor("accuracy", 0.25, 0.97)
    assert capsys.readouterr().err.splitlines() == [
        "error: accuracy 0.2500 is below --min-accuracy 0.97; weights not written "
        "(train longer with --steps)"
    ]


def test_deterministic_restores_threads_and_rng_also_on_error() -> None:
    threads, rng = torch.get_num_threads(), torch.random.get_rng_state()
    other = 1 if threads != 1 else 2
    with deterministic(other):
        assert torch.get_num_threads() == other
        torch.rand(3)
    assert torch.get_num_threads() == threads and torch.equal(rng, torch.random.get_rng_state())
    with pytest.raises(RuntimeError, match="boom"):
        with deterministic(other):
            torch.rand(3)
            raise RuntimeError("boom")
    assert torch.get_num_threads() == threads and torch.equal(rng, torch.random.get_rng_state())


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    assert lr_at(0, 10, 1.0, 4) == 0.25 and lr_at(3, 10, 1.0, 4) == 1.0
    assert lr_at(4, 10, 1.0, 4) == 1.0 and lr_at(10, 10, 1.0, 4) == pytest.approx(0.0)
    assert lr_at(7, 10, 1.0, 4) == pytest.approx(0.5)


def test_adamw_groups() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.LayerNorm(3))
    opt = adamw(model, lr=0.1, weight_decay=0.05)
    decayed, rest = opt.param_groups
    assert [p.shape for p in decayed["params"]] == [(3, 2)] and decayed["weight_decay"] == 0.05
    assert len(rest["params"]) == 3 and rest["weight_decay"] == 0.0
    assert decayed["betas"] == (0.9, 0.999) and decayed["lr"] == 0.1
    none = adamw(model, lr=0.1, weight_decay=0.05, decays=lambda n, p: False, betas=(0.9, 0.98))
    assert len(none.param_groups[0]["params"]) == 0 and none.param_groups[1]["betas"] == (0.9, 0.98)


def test_loss_log_windows(capsys) -> None:
    log = LossLog(steps=5, every=2, quiet=False)
    due = []
    for step in range(5):
        due.append(log.add(step, float(step + 1)))  # losses 1..5
        if due[-1]:
            log.print(step, middle="lr x  " if step == 1 else "",
                      suffix="  extra" if step == 4 else "")
    assert due == [False, True, False, True, True]
    lines = [line.split("  ") for line in capsys.readouterr().out.splitlines()]
    assert [line[:2] for line in lines] == [
        ["step 2/5", "loss 1.5000"], ["step 4/5", "loss 3.5000"], ["step 5/5", "loss 5.0000"]
    ]
    assert lines[0][2] == "lr x" and lines[2][-1] == "extra"
    quiet = LossLog(steps=1, every=1, quiet=True)
    assert not quiet.add(0, 1.0)


def test_save_weights_is_atomic(tmp_path: Path) -> None:
    from safetensors import safe_open

    out = tmp_path / "sub" / "w.safetensors"
    state = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}
    save_weights(state, out, {"model": "m"})
    with safe_open(str(out), "pt") as fh:
        assert fh.metadata() == {"model": "m"}
        assert torch.equal(fh.get_tensor("a"), state["a"]) and torch.equal(
            fh.get_tensor("b"), state["b"])
    before = out.read_bytes()
    with pytest.raises(Exception):
        save_weights({"a": "not a tensor"}, out, {"model": "m"})  # type: ignore[dict-item]
    assert out.read_bytes() == before
    assert [p.name for p in out.parent.iterdir()] == ["w.safetensors"]
