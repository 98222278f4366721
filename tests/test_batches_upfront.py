"""The ``*_batches`` functions refuse bad input before any batch runs and before their progress
bar appears: no forward pass of the model, nothing on stderr.

Each case calls with ``progress=True`` (the default) and a model whose forward passes are
counted, so a check that only happens inside the batch loop shows up as a drawn bar or a
counted forward, not just as a late error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

import probe
from probe._errors import ProbeError
from probe.attribution._batches import iter_batches
from tests._tiny import timm_model


@pytest.fixture(scope="module")
def vit():
    model, _ = timm_model("vit_tiny_patch16_224", img=32, num_classes=3)
    torch.manual_seed(0)
    return model, torch.randn(4, 3, 32, 32)


@pytest.fixture
def counted(vit) -> Iterator[tuple[Any, torch.Tensor, list[int]]]:
    model, x = vit
    calls: list[int] = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        yield model, x, calls
    finally:
        handle.remove()


@pytest.fixture(autouse=True)
def _text_only_method() -> Iterator[None]:
    """``text-only``: a method vision models refuse."""
    probe.register_method("text-only", modalities=("text",))(lambda ctx: None)
    try:
        yield
    finally:
        probe.unregister_method("text-only")


def _refused_up_front(
    call: Callable[[], object], match: str, calls: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with pytest.raises(ProbeError, match=match):
        call()
    assert calls == [], "a batch ran before the input was refused"
    assert capsys.readouterr().err == "", "the progress bar appeared before the input was refused"


def _loader(x: torch.Tensor) -> Iterator[torch.Tensor]:
    yield x[:2]
    yield x[2:]


COMPARE_CASES = [
    (["rollout", ("rollout", {})], "duplicate.*mapping"),
    (["rollout", ("rollout", {"head_fusion": "mean"})], "duplicate"),  # mean is the default
    (["rollout", "rollot"], "unknown method 'rollot'"),
    (["rollout", ("rollout", {"head_fusoin": "max"})], "does not take option 'head_fusoin'"),
    (["rollout", ("rollout", {"head_fusion": "sum"})], "head_fusion"),
    (["rollout", "flow", "text-only"], "does not apply to vision models"),
]


@pytest.mark.parametrize(("methods", "match"), COMPARE_CASES)
@pytest.mark.parametrize("lazy", [False, True], ids=["tensor", "generator"])
def test_compare_batches_checks_methods_up_front(counted, capsys, methods, match, lazy):
    model, x, calls = counted
    data = _loader(x) if lazy else x
    _refused_up_front(lambda: probe.compare_batches(model, data, methods, batch_size=2),
                      match, calls, capsys)


@pytest.mark.parametrize(("method", "options", "match"), [
    ("rollot", {}, "unknown method"),
    ("rollout", {"head_fusoin": "max"}, "does not take option"),
    ("rollout", {"discard_ratio": 2.0}, "discard_ratio"),
    ("text-only", {}, "does not apply"),
])
def test_attribute_batches_checks_the_method_up_front(counted, capsys, method, options, match):
    model, x, calls = counted
    _refused_up_front(lambda: probe.attribute_batches(model, x, method, batch_size=2, **options),
                      match, calls, capsys)


@pytest.mark.parametrize(("methods", "options", "match"), [
    (["rollot"], {}, "unknown method"),
    ({"rollout": {"head_fusoin": "max"}}, {}, "does not take option"),
    (["text-only"], {}, "does not apply"),
    (["rollout"], {"steps": 0}, "steps must be a positive int"),
    (["rollout"], {"n_random": -1}, "n_random must be a non-negative int"),
    (["rollout"], {"output": "prob"}, "output must be"),
    (["rollout"], {"stpes": 5}, "does not take 'stpes'"),
])
def test_faithfulness_batches_checks_up_front(counted, capsys, methods, options, match):
    model, x, calls = counted
    _refused_up_front(
        lambda: probe.faithfulness_batches(model, x, methods, batch_size=2, **options),
        match, calls, capsys,
    )


@pytest.mark.parametrize(("data", "batch_size", "match"), [
    ("tensor", 0, "batch_size"),
    ("tensor", 1.5, "batch_size"),
    ("empty generator", 2, "empty"),
    ("empty list", 2, "empty"),
    ("a text", 2, "not one string"),
    ("ragged mapping", 2, "one batch size"),
])
@pytest.mark.parametrize("fn", ["attribute", "compare", "faithfulness"])
def test_datasets_are_checked_before_the_bar(counted, capsys, data, batch_size, match, fn):
    model, x, calls = counted
    dataset = {
        "tensor": x,
        "empty generator": (t for t in ()),
        "empty list": [],
        "a text": "a text",
        "ragged mapping": {"a": torch.zeros(2, 3), "b": torch.zeros(3, 3)},
    }[data]
    call = {
        "attribute": lambda: probe.attribute_batches(model, dataset, "rollout",
                                                     batch_size=batch_size),
        "compare": lambda: probe.compare_batches(model, dataset, ["rollout", "attention"],
                                                 batch_size=batch_size),
        "faithfulness": lambda: probe.faithfulness_batches(model, dataset, "rollout",
                                                           batch_size=batch_size),
    }[fn]
    _refused_up_front(call, match, calls, capsys)


def test_iter_batches_checks_when_called_not_when_iterated() -> None:
    with pytest.raises(ProbeError, match="batch_size"):
        iter_batches(torch.zeros(2, 3), 0)
    with pytest.raises(ProbeError, match="empty"):
        iter_batches(iter([]), None)
    pulled: list[int] = []

    def lazy() -> Iterator[torch.Tensor]:
        for i in range(3):
            pulled.append(i)
            yield torch.full((1, 2), float(i))

    batches = iter_batches(lazy(), None)
    assert pulled == [0]  # only the first batch is read to know the dataset is not empty
    assert [float(b[0, 0]) for b in batches] == [0.0, 1.0, 2.0] and pulled == [0, 1, 2]
