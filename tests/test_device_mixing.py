"""No eval task mixes devices: every ``probe eval`` task runs under :class:`ShadowDevice`.

A CPU machine cannot show a GPU's "Expected all tensors to be on the same device": the shadow
device of ``tests/_shadow_device.py`` tracks, through every torch call, which tensors would
sit on the model's device and which on the CPU, and records where CUDA would refuse. The
controls first show that it catches the mistakes it is meant to catch (a CPU batch fed to the
model, a prediction compared with CPU labels, a CPU generator drawing onto the device,
``.numpy()`` of a device tensor, the pre-``--device`` CNN accuracy line); then each task of
``probe eval`` (faithfulness on ViT and CNN, sanity, text, coref, alignment) runs with no
violation. Tensors made outside its view (before it starts, or by autograd in C++) are not
tracked, so a clean run is evidence, not proof: ``benchmarks/gpu.sh`` runs the real thing.
"""

from __future__ import annotations

import pytest
import torch

import probe
from probe.capture import adapter_for
from tests._shadow_device import SHADOW, ShadowDevice


@pytest.fixture(scope="module")
def vit():
    return probe.load_model("vit-shapes")[0]


def test_controls_catch_what_cuda_would_refuse(vit):
    with ShadowDevice(vit) as shadow:
        images = probe.make_shapes(2, seed=1).images  # made on the CPU
        vit(images)  # the model on the device, its input on the CPU
    assert len(shadow.violations) == 1 and "conv2d mixes" in shadow.violations[0]
    assert "test_device_mixing.py" in shadow.violations[0]

    with ShadowDevice(vit) as shadow:
        data = probe.make_shapes(2, seed=1)
        device = adapter_for(vit).device
        assert device == SHADOW
        out = vit(data.images.to(device))
        hits = out.argmax(-1).cpu() == data.labels  # brought to the CPU first: fine
        generator = torch.Generator().manual_seed(0)
        noise = torch.rand(hits.shape, generator=generator).to(device)  # drawn, then moved
        (noise * out[:, 0]).sum().tolist()
        assert shadow.violations == []
        _ = out.argmax(-1) == data.labels  # a prediction on the device against CPU labels
        generator = torch.Generator().manual_seed(0)
        torch.rand(3, generator=generator, device=device)  # a CPU generator onto the device
        out.detach().numpy()
    assert [v.split(" ")[0] for v in shadow.violations] == ["__eq__", "rand", ".numpy()"]


def test_control_the_cnn_accuracy_line_before_device_placement():
    """The CNN faithfulness eval used to run ``model(images)`` on CPU images."""
    cnn, _ = probe.load_model("cnn-shapes")
    with ShadowDevice(cnn) as shadow:
        data = probe.make_shapes(2, seed=0, image_size=32)
        with torch.no_grad():
            int((cnn(data.images).argmax(-1) == data.labels).sum())
    assert len(shadow.violations) == 2  # the forward, then the comparison
    with ShadowDevice(cnn) as shadow:
        from probe.evaluation._cnn_eval import eval_cnn_faithfulness

        result = eval_cnn_faithfulness(cnn, n=2, batch_size=1)
    assert shadow.violations == [] and shadow.device_ops > 100 and result["accuracy"] >= 0.5


def test_the_shadow_changes_no_number(vit):
    from probe.commands.bench._parallel import json_differences
    from probe.evaluation.tasks import eval_faithfulness

    def run():
        return eval_faithfulness(vit, n=2, batch_size=1, methods=["rollout", "gradcam", "random"])

    plain = run()
    with ShadowDevice(vit) as shadow:
        shadowed = run()
    assert shadow.violations == []
    assert json_differences(plain, shadowed) == []


def test_vision_evals_keep_devices_apart(vit):
    from probe.evaluation.tasks import eval_faithfulness, eval_sanity

    fast = {"ig": {"n_steps": 4}}
    some = ["attention", "relevance", "ig", "gradcam", "random"]  # one of each kind
    with ShadowDevice(vit) as shadow:
        faith = eval_faithfulness(vit, n=1, batch_size=1, options=fast)
        sanity = eval_sanity(vit, n=1, batch_size=1, methods=some, options=fast)
    assert shadow.violations == [] and shadow.device_ops > 1000
    assert len(faith["methods"]) >= 10 and sorted(sanity["methods"]) == sorted(some)


@pytest.mark.slow
def test_the_sanity_eval_of_every_method_keeps_devices_apart(vit):
    from probe.evaluation.tasks import eval_sanity

    with ShadowDevice(vit) as shadow:
        sanity = eval_sanity(vit, n=2, batch_size=1, options={"ig": {"n_steps": 8}})
    assert shadow.violations == [] and shadow.device_ops > 1000 and len(sanity["methods"]) >= 10


def test_text_coref_and_alignment_evals_keep_devices_apart():
    from probe.evaluation._alignment_eval import eval_alignment
    from probe.evaluation.tasks import eval_coref, eval_text

    model, tokenizer = probe.load_model("minilm")
    with ShadowDevice(model) as shadow:
        text = eval_text(model, tokenizer, n=1, options={"ig": {"n_steps": 4}})
        eval_coref(model, tokenizer, n=2)
    assert shadow.violations == [] and shadow.device_ops > 1000 and len(text["methods"]) >= 8
    toy, toy_tokenizer = probe.load_model("toy-mt")
    with ShadowDevice(toy) as shadow:
        result = eval_alignment(toy, toy_tokenizer, n=2, batch_size=2)
    assert shadow.violations == [] and shadow.device_ops > 100 and result["n_exact"] >= 1
