"""``probe render --device``: refused devices exit 2 before loading; no view mixes devices.

The views run under the shadow device of ``tests/_shadow_device.py`` (the model is put on it
right after ``--device`` moved it), which records every place where CUDA would refuse a CPU
tensor next to a model-device tensor, or a ``.numpy()``/``np.asarray`` of a device tensor.
"""

from __future__ import annotations

import pytest
import torch

from probe.commands.render._args import RenderArgs
from probe.commands.render._command import render
from tests._shadow_device import ShadowDevice


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer without CUDA")
@pytest.mark.parametrize("device,message", [
    ("cuda", "no CUDA device here"), ("gpu0", "not a device torch understands"),
])
def test_render_refuses_a_device_with_one_line_and_exit_2(capsys, tmp_path, device, message):
    from probe.cli import main

    out = tmp_path / "figs"
    assert main(["render", "rollout", "--device", device, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


VIEWS = [
    dict(view="saliency", methods=("relevance",)),
    dict(view="compare", methods=("attention", "rollout", "saliency", "gradcam", "random")),
    dict(view="curves", methods=("rollout", "gradcam")),
    dict(view="rollout", formats=("png", "html")),
    dict(view="heads", text="The cat sat on the mat because it was warm."),
    dict(view="coref", text="The cat sat on the mat because it was warm.", word="it"),
    dict(view="compare", text="A man is playing a guitar.", pair="Someone plays music.",
         methods=("attention", "relevance", "saliency")),
]


@pytest.mark.parametrize(
    "options", VIEWS, ids=[v["view"] + ("-text" if "text" in v else "") for v in VIEWS]
)
def test_render_views_keep_devices_apart(monkeypatch, tmp_path, options):
    from probe.evaluation import _device
    from probe.models import _registry

    shadow = ShadowDevice()
    moved = []
    original, load = _device.move_model, _registry.load_model

    def load_unshadowed(*args, **kwargs):
        with shadow.paused():  # see ShadowDevice.paused
            return load(*args, **kwargs)

    def move_then_shadow(model, device):
        where = original(model, device)
        shadow.track(model)  # from here on the model lives on the shadow device
        moved.append(where)
        return where

    monkeypatch.setattr(_device, "move_model", move_then_shadow)
    monkeypatch.setattr(_registry, "load_model", load_unshadowed)
    with shadow:
        paths = render(RenderArgs(**{"out": str(tmp_path), "quiet": True, **options}))
    assert moved == ["cpu"] and paths
    assert shadow.violations == [] and shadow.device_ops > 100


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto is cpu only without CUDA")
def test_render_device_auto_without_cuda_writes_what_the_default_writes(tmp_path):
    default = render(RenderArgs(view="rollout", out=str(tmp_path / "a"), formats=("html",)))
    auto = render(RenderArgs(view="rollout", out=str(tmp_path / "b"), formats=("html",),
                             device="auto"))
    assert len(default) == len(auto) == 1
    assert open(default[0], "rb").read() == open(auto[0], "rb").read()
