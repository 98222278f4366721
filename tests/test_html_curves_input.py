"""The curves view shows what the model saw at each step: the page's image at step ``k`` (its
embedded input and all-removed input, composed by the page's own rule) equals the perturbed
input the faithfulness code builds at step ``k`` (``probe.evaluation``'s ranks, rounding and
baseline), in Python from the embedded data and in a real Chromium from the canvas the page
composes; and :func:`probe.perturbed_input` is the input each curve point was scored on."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
import torch

import probe
from _browser import open_clean, start_browser
from probe import ProbeError
from probe.evaluation._curves import _curve_keep, _ranks
from probe.evaluation._perturb import _vision_problem

STEPS = 20


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _png(url: str) -> np.ndarray:
    from PIL import Image

    raw = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=np.uint8)


def _page_input(data: dict, method: int, kind: int, step: int) -> np.ndarray:
    """The page's rule, in Python: the input with the replaced units' pixel blocks taken from
    the embedded all-removed input."""
    img, base = _png(data["image"]), _png(data["baseline"])
    ph, pw = data["patch"]
    cols = data["grid"][1]
    count = data["kinds"][kind]["counts"][step]
    deletion = data["kinds"][kind]["name"] == "deletion"
    out = img.copy()
    for u, r in enumerate(data["ranks"][method]):
        if (r < count) if deletion else (r >= count):
            y, x = (u // cols) * ph, (u % cols) * pw
            out[y:y + ph, x:x + pw] = base[y:y + ph, x:x + pw]
    return out


def _built(model, pixels, scores, kind: str, step: int, item: int,
           baseline=None) -> np.ndarray:
    """The faithfulness code's perturbed input of ``item`` at ``step``, scaled per channel by
    the input's own min-max (as the page shows an input), in ``0..1``."""
    p = _vision_problem(model, pixels, baseline, tuple(scores.grid), 1)
    keep = _curve_keep(_ranks(scores.scores.double(), p.valid), p.valid, STEPS, kind)[:, step]
    x = p.build(keep, torch.arange(keep.shape[0]))[item].double().numpy().transpose(1, 2, 0)
    ref = pixels[item].double().numpy().transpose(1, 2, 0)
    lo, hi = ref.min(axis=(0, 1)), ref.max(axis=(0, 1))
    return np.clip((x - lo) / (hi - lo), 0, 1)


@pytest.fixture(scope="module")
def vit():
    model, _ = probe.load_model("vit-shapes")
    return model.eval(), probe.make_shapes(2, seed=5).images


def test_page_image_at_every_step_is_the_perturbed_input(vit):
    model, pixels = vit
    view = probe.show(model, "curves", pixels, methods=["rollout", "gradcam"],
                      batch_index=1)
    data = _data_block(view.html)
    assert data["baseline"] and data["patch"] == [pixels.shape[2] // data["grid"][0],
                                                  pixels.shape[3] // data["grid"][1]]
    for mi, method in enumerate(("rollout", "gradcam")):
        attr = probe.attribute(model, pixels, method)
        for ki, kind in enumerate(("deletion", "insertion")):
            for step in range(STEPS + 1):
                page = _page_input(data, mi, ki, step) / 255.0
                built = _built(model, pixels, attr, kind, step, 1)
                np.testing.assert_allclose(page, built, atol=0.5 / 255 + 1e-9,
                                           err_msg=f"{method} {kind} step {step}")
    # the steps differ: the page does not show one picture for all
    assert not np.array_equal(_page_input(data, 0, 0, 0), _page_input(data, 0, 0, 10))


def test_perturbed_input_is_what_each_curve_point_scored(vit):
    """The model's probability of the target class on ``perturbed_input(step k)`` is the
    curve's value at ``k`` (same default baseline, grid and rounding)."""
    model, pixels = vit
    attr = probe.attribute(model, pixels, "rollout")
    target = model(pixels).argmax(-1)
    for kind, curve_fn in (("deletion", probe.deletion_curve),
                           ("insertion", probe.insertion_curve)):
        curve = curve_fn(model, pixels, attr)
        for step in (0, 3, 10, 20):
            x = probe.perturbed_input(model, pixels, attr, step, kind=kind)
            with torch.no_grad():
                prob = model(x).softmax(-1).gather(1, target[:, None])[:, 0].double()
            torch.testing.assert_close(prob, curve.values[:, step], rtol=1e-5, atol=1e-6)


def test_perturbed_input_by_hand_and_its_refusals():
    """A 2x2 grid on a 4x6 image (a 2x3 block per patch): at deletion step 1 of 2 the two
    top-ranked patches hold the per-channel mean; insertion step 0 is all mean; the model
    and the input are left as they were."""
    model, _ = probe.load_model("vit-shapes")
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    before = x.clone()
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.2], [0.0, 0.0, 1.0, 1.0]])
    got = probe.perturbed_input(model, x, scores, 1, steps=2, grid=(2, 2))
    mean = x.mean(dim=(2, 3), keepdim=True)
    want = x.clone()
    want[0, :, 0:2, 3:6] = mean[0]  # patch 1 (0.9), then patch 2 (0.5)
    want[0, :, 2:4, 0:3] = mean[0]
    want[1, :, 2:4, 0:3] = mean[1]  # the tie 1.0, 1.0: by position
    want[1, :, 2:4, 3:6] = mean[1]
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(
        probe.perturbed_input(model, x, scores, 0, kind="insertion", steps=2, grid=(2, 2)),
        mean.expand_as(x))
    torch.testing.assert_close(x, before)
    for kwargs, match in ((dict(step=3), "step must be an int in 0..2"),
                          (dict(step=1, kind="both"), "kind must be 'deletion' or 'insertion'")):
        step = kwargs.pop("step")
        with pytest.raises(ProbeError, match=match):
            probe.perturbed_input(model, x, scores, step, steps=2, grid=(2, 2), **kwargs)


def test_browser_composes_the_perturbed_input(vit, tmp_path):
    """In Chromium the page's composed input (the canvas the scene is drawn from) at the
    opening step and after a hover is pixel for pixel the Python rule above."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    model, pixels = vit
    view = probe.show(model, "curves", pixels[:1], methods=["rollout"])
    data = _data_block(view.html)
    drv = start_browser()
    try:
        open_clean(drv, view, tmp_path, "curves")

        def composed() -> np.ndarray:
            flat = drv.execute_script(
                "var c = document.querySelector('canvas.p-input');"
                "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height)"
                ".data);")
            h, w = _png(data["image"]).shape[:2]
            return np.asarray(flat, dtype=np.uint8).reshape(h, w, 4)[..., :3]

        def state() -> tuple[int, int]:
            ds = drv.execute_script("return Object.assign({}, document.getElementById("
                                    "'probe-root').dataset)")
            return ["deletion", "insertion"].index(ds["kind"]), int(ds["step"])

        kind, step = state()
        np.testing.assert_array_equal(composed(), _page_input(data, 0, kind, step))
        chart = drv.find_elements(By.CSS_SELECTOR, "canvas.p-chart")[1]  # insertion
        ActionChains(drv).move_to_element_with_offset(chart, -40, 0).perform()
        kind2, step2 = state()
        assert (kind2, step2) != (kind, step)
        np.testing.assert_array_equal(composed(), _page_input(data, 0, kind2, step2))
        np.testing.assert_allclose(
            composed() / 255.0, _built(model, pixels[:1], probe.attribute(
                model, pixels[:1], "rollout"), ("deletion", "insertion")[kind2], step2, 0),
            atol=0.5 / 255 + 1e-9)
    finally:
        drv.quit()
