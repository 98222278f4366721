"""Swin (windowed attention): exact capture for timm and HuggingFace Swin against the models'
own unfused/eager attention, the window -> image mapping against hand-computed tables, the
clear refusal of analyses across stages, and the window view."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from torch.testing import assert_close

import probe
from probe import ProbeError, WindowLayout, window_head_stats, window_query_map, windows_to_image
from tests._tiny import assert_unchanged, snapshot


# ----------------------------------------------------------------------------- tiny models
def _pixels(h: int, w: int, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(3))


def timm_swin(img: tuple[int, int] = (32, 48), depths: tuple[int, ...] = (2, 2),
              heads: tuple[int, ...] = (2, 4), window: int = 4) -> Any:
    """Tiny random-init timm Swin with fused attention on (timm's default is off for Swin)."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model(
        "swin_tiny_patch4_window7_224", pretrained=False, img_size=img, patch_size=4,
        embed_dim=16, depths=depths, num_heads=heads, window_size=window, num_classes=5,
    ).eval()
    for m in model.modules():
        if type(m).__name__ == "WindowAttention":
            m.fused_attn = True
    return model


def hf_swin(attn: str = "sdpa", classifier: bool = True) -> Any:
    from transformers import SwinConfig, SwinForImageClassification, SwinModel

    torch.manual_seed(0)
    config = SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[2, 2],
                        num_heads=[2, 4], window_size=4, num_labels=5)
    config._attn_implementation = attn
    cls = SwinForImageClassification if classifier else SwinModel
    return cls(config).eval()


def _timm_reference(model: Any, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """timm's own unfused path on a copy: each block's softmax output, and the logits."""
    ref = copy.deepcopy(model)
    got: list[torch.Tensor] = []
    for m in ref.modules():
        if type(m).__name__ == "WindowAttention":
            m.fused_attn = False
            m.softmax.register_forward_hook(lambda _m, _i, out: got.append(out.detach()))
    with torch.no_grad():
        out = ref(x)
    return got, out


def _hf_reference(model: Any, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
    """HF's eager attention on a copy: every block's weights (forward hooks on SwinAttention,
    which returns them) and the output with ``output_attentions=True``."""
    ref = copy.deepcopy(model)
    ref.set_attn_implementation("eager")
    got: list[torch.Tensor] = []
    for m in ref.modules():
        if type(m).__name__ == "SwinAttention":
            m.register_forward_hook(lambda _m, _i, out: got.append(out[1].detach()))
    with torch.no_grad():
        out = ref(pixel_values=x, output_attentions=True)
    return got, out


# ----------------------------------------------------------------------------- the mapping
def test_token_index_unshifted_padded_by_hand():
    # 3x3 tokens, 2x2 windows: padded to 4x4, windows row-major, -1 for padding
    layout = WindowLayout((3, 3), (2, 2), (0, 0), True)
    assert layout.padded == (4, 4) and layout.num_windows == 4
    assert layout.token_index().tolist() == [
        [0, 1, 3, 4], [2, -1, 5, -1], [6, 7, -1, -1], [8, -1, -1, -1],
    ]


def test_token_index_shifted_by_hand():
    # 4x4 tokens rolled by -1 on both axes: rolled[i, j] = token[(i+1)%4, (j+1)%4]
    # rows of the rolled grid: 5 6 7 4 / 9 10 11 8 / 13 14 15 12 / 1 2 3 0
    layout = WindowLayout((4, 4), (2, 2), (1, 1), True)
    assert layout.token_index().tolist() == [
        [5, 6, 9, 10], [7, 4, 11, 8], [13, 14, 1, 2], [15, 12, 3, 0],
    ]


def test_token_index_pad_then_shift_by_hand():
    # HF order: 3x3 tokens padded to 4x4 (p), then rolled: rolled[i, j] = p[(i+1)%4, (j+1)%4]
    # rows: 4 5 - 3 / 7 8 - 6 / - - - - / 1 2 - 0
    layout = WindowLayout((3, 3), (2, 2), (1, 1), False)
    assert layout.token_index().tolist() == [
        [4, 5, 7, 8], [-1, 3, -1, 6], [-1, -1, 1, 2], [-1, -1, -1, 0],
    ]


def test_windows_to_image_places_every_weight_by_hand():
    layout = WindowLayout((4, 4), (2, 2), (1, 1), True)
    index = [[5, 6, 9, 10], [7, 4, 11, 8], [13, 14, 1, 2], [15, 12, 3, 0]]
    batch, heads = 2, 3
    weights = torch.arange(batch * 4 * heads * 16, dtype=torch.float64).view(8, heads, 4, 4)
    mask = torch.zeros(4, 4, 4)
    mask[1, 0, 1] = -100.0  # window 1: slot 0 (token 7) may not see slot 1 (token 4)
    dense = windows_to_image(weights, layout, mask)
    assert dense.shape == (batch, heads, 16, 16)
    expected = torch.zeros(batch, heads, 16, 16, dtype=torch.float64)
    for b in range(batch):
        for w in range(4):
            for p in range(4):
                for q in range(4):
                    if (w, p, q) != (1, 0, 1):
                        expected[b, :, index[w][p], index[w][q]] = weights[b * 4 + w, :, p, q]
    assert torch.equal(dense, expected)
    assert dense[:, :, 7, 4].eq(0).all()
    # one query's map is its row of the dense matrix, on the grid
    qmap = window_query_map(weights, layout, (1, 3), mask)  # token 7
    assert torch.equal(qmap, dense[:, :, 7].view(batch, heads, 4, 4))


def test_windows_to_image_drops_padding_by_hand():
    layout = WindowLayout((3, 3), (2, 2))
    weights = torch.full((4, 1, 4, 4), 0.25)
    dense = windows_to_image(weights, layout)
    # token 8 sits alone in window 3 with three padding slots: its row keeps 0.25
    assert dense[0, 0, 8].tolist() == [0.0] * 8 + [0.25]
    assert dense[0, 0, 0].sum().item() == pytest.approx(1.0)  # window 0 has no padding
    assert dense[0, 0, 2].sum().item() == pytest.approx(0.5)  # window 1: two real tokens


def test_head_stats_by_hand():
    # one 1x2 window, uniform weights: entropy log 2; distance half the token width
    layout = WindowLayout((1, 2), (1, 2))
    stats = window_head_stats(torch.full((1, 1, 2, 2), 0.5), layout, token_size=(4.0, 8.0))
    assert stats.entropy.item() == pytest.approx(math.log(2))
    assert stats.distance.item() == pytest.approx(4.0)  # 0.5 * 0 + 0.5 * 8 pixels
    assert stats.window_entropy == pytest.approx(math.log(2))


def test_non_finite_windows_are_refused():
    weights = torch.full((4, 2, 4, 4), 0.25)
    weights[2, 1, 0, 3] = float("nan")
    layout = WindowLayout((4, 4), (2, 2))
    for fn in (windows_to_image, window_head_stats):
        with pytest.raises(probe.ProbeError, match=r"not finite: NaN at layer 0, head 1"):
            fn(weights, layout)
    with pytest.raises(probe.ProbeError, match="window_query_map: the captured attention"):
        window_query_map(weights, layout, (0, 0))


def test_layout_and_shapes_are_checked():
    with pytest.raises(probe.ProbeError, match="two integers"):
        WindowLayout((4, 4), 2, (0, 0))  # type: ignore[arg-type]
    with pytest.raises(probe.ProbeError, match="positive grid"):
        WindowLayout((0, 4), (2, 2))
    layout = WindowLayout((4, 4), (2, 2))
    with pytest.raises(probe.ProbeError, match=r"window attention must be \[batch \* 4"):
        windows_to_image(torch.ones(3, 1, 4, 4), layout)
    with pytest.raises(probe.ProbeError, match="outside the block's 4x4"):
        window_query_map(torch.ones(4, 1, 4, 4), layout, (4, 0))


# ----------------------------------------------------------------------------- timm capture
TIMM_CASES = {
    "nonsquare": dict(img=(32, 48)),  # 8x12 then 4x6: shift (0, 2) in stage 1
    "padded": dict(img=(36, 36), depths=(2,), heads=(2,)),  # 9x9 grid, 4x4 windows
}


@pytest.mark.parametrize("case", sorted(TIMM_CASES))
def test_timm_windows_equal_the_unfused_softmax(case):
    model = timm_swin(**TIMM_CASES[case])
    x = _pixels(*TIMM_CASES[case]["img"])
    with torch.no_grad():
        fused_out = model(x)
    ref, unfused_out = _timm_reference(model, x)
    before = snapshot(model)
    tr = probe.trace(model, x)
    assert_unchanged(model, before)
    assert all(m.fused_attn for m in model.modules() if type(m).__name__ == "WindowAttention")
    assert len(tr.windows) == len(ref)
    assert any(b.shifted for b in tr.windows) and any(not b.shifted for b in tr.windows)
    for block, expected in zip(tr.windows, ref):
        assert block.batch == 2
        assert_close(block.weights, expected, atol=1e-5, rtol=0)
    assert_close(tr.output, fused_out, atol=1e-5, rtol=1e-5)
    assert_close(tr.output, unfused_out, atol=1e-6, rtol=0)
    assert tr.grid == tr.windows[0].grid and tr.num_prefix_tokens == 0


def test_timm_geometry_of_each_block():
    tr = probe.trace(timm_swin(), _pixels(32, 48))
    got = [(b.stage, b.grid, b.layout.window, b.layout.shift, b.token_size) for b in tr.windows]
    assert got == [
        (0, (8, 12), (4, 4), (0, 0), (4, 4)),
        (0, (8, 12), (4, 4), (2, 2), (4, 4)),
        (1, (4, 6), (4, 4), (0, 0), (8, 8)),
        (1, (4, 6), (4, 4), (0, 2), (8, 8)),  # 4 rows fit one window: no shift along them
    ]
    assert [b.num_heads for b in tr.windows] == [2, 2, 4, 4]
    assert tr.windows[1].mask is not None and tr.windows[0].mask is None


def test_image_maps_keep_every_row_and_no_wrapped_pair():
    tr = probe.trace(timm_swin(), _pixels(32, 48))
    for block in tr.windows:
        dense = block.to_image()
        rows, cols = block.grid
        assert dense.shape == (2, block.num_heads, rows * cols, rows * cols)
        sums = dense.sum(-1)
        if block.layout.padded == block.grid or block.shifted:
            # stage 0 (8x12: no padding), and the shifted stage-1 block, whose shift mask
            # keeps every query off the padding: every row is the model's whole softmax row
            assert_close(sums, torch.ones(sums.shape), atol=1e-5, rtol=0)
        else:  # unshifted stage 1, 4x6 padded to 4x8: rows lose what went to the padding
            assert (sums <= 1 + 1e-5).all() and sums.min() < 0.99
            real = block.layout.token_index()[:, :, None] >= 0
            kept = block.windows()[0, :, 0] * real.transpose(1, 2)  # weights on real keys
            by_token = torch.zeros(rows * cols)
            index = block.layout.token_index()
            by_token[index[index >= 0]] = kept.sum(-1)[index >= 0]
            assert_close(sums[0, 0], by_token, atol=1e-6, rtol=0)
        wh, ww = block.layout.window
        q, k = (dense[0, 0] > 0).nonzero(as_tuple=True)
        # the shift mask is honoured: a query only sees tokens of its own window on the image
        assert ((q // cols - k // cols).abs() < wh).all()
        assert ((q % cols - k % cols).abs() < ww).all()
        assert_close(block.query_map(1, 2), dense[:, :, 1 * cols + 2].view(2, -1, rows, cols))


def test_timm_padded_shift_keeps_the_pairs_its_mask_leaves_open():
    # timm rolls the 9x9 grid, then pads it to 12x12, and builds its shift mask on the padded
    # grid: some pairs brought together by the roll stay unmasked. The map shows them where
    # they are (far apart on the image), with the model's weights; rows lose the padding.
    tr = probe.trace(timm_swin(img=(36, 36), depths=(2,), heads=(2,)), _pixels(36, 36))
    block = tr.windows[1]
    assert block.layout.shift == (2, 2) and block.layout.padded == (12, 12)
    dense = block.to_image()
    assert dense[0, 0, 0, 6] > 0.01  # token (0, 0) attends to (0, 6): wrapped, left open
    assert (dense.sum(-1) <= 1 + 1e-5).all() and dense.sum(-1).min() < 0.9


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_timm_forward_that_raises_leaves_no_trace(version):
    from tests.test_swin_v2 import timm_swinv2

    model = (timm_swin if version == "v1" else timm_swinv2)()

    def explode(*_: Any) -> None:
        raise RuntimeError("forward failed")

    # the second stage raises: the first stage's blocks were already recorded
    handle = model.layers[1].blocks[0].mlp.register_forward_hook(explode)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="forward failed"):
        probe.trace(model, _pixels(32, 48))
    assert_unchanged(model, before)  # the hooks are the test's own one only
    # V1 has fused_attn on every WindowAttention (switched back on); V2 has no such flag
    assert all(getattr(m, "fused_attn", True) for m in model.modules()
               if type(m).__name__ == "WindowAttention")
    handle.remove()
    assert len(probe.trace(model, _pixels(32, 48)).windows) == 4  # the next capture works


def test_timm_repeated_captures_leave_nothing():
    model = timm_swin(depths=(2,), heads=(2,))
    before = snapshot(model)
    x = _pixels(32, 48)
    for _ in range(30):
        probe.trace(model, x)
    assert_unchanged(model, before)


def test_timm_layers_dtype_and_device():
    tr = probe.trace(timm_swin(), _pixels(32, 48), layers=[-1, 1], dtype="float16",
                     device="cpu")
    assert tr.layer_indices == (1, 3) and [b.layer for b in tr.windows] == [1, 3]
    assert all(b.weights.dtype == torch.float16 for b in tr.windows)


# ----------------------------------------------------------------------------- HF capture
@pytest.mark.parametrize("size", [(32, 32), (36, 44)])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_hf_windows_equal_eager_attention(attn, size):
    model = hf_swin(attn)
    x = _pixels(*size)
    ref, ref_out = _hf_reference(model, x)
    with torch.no_grad():
        plain = model(pixel_values=x)
    before = snapshot(model)
    tr = probe.trace(model, x)
    assert_unchanged(model, before)
    assert model.config._attn_implementation == attn
    assert len(tr.windows) == len(ref) == 4
    for block, expected in zip(tr.windows, ref):
        assert_close(block.weights, expected, atol=1e-5, rtol=0)
    # output_attentions=True returns the last block of each stage
    assert_close(tr.windows[1].weights, ref_out.attentions[0], atol=1e-5, rtol=0)
    assert_close(tr.windows[3].weights, ref_out.attentions[1], atol=1e-5, rtol=0)
    assert_close(tr.output.logits, plain.logits, atol=1e-5, rtol=1e-5)
    grids = [b.grid for b in tr.windows]
    rows, cols = -(-size[0] // 4), -(-size[1] // 4)
    assert grids == [(rows, cols)] * 2 + [(-(-rows // 2), -(-cols // 2))] * 2
    assert tr.windows[1].shifted and not tr.windows[0].shifted


def test_hf_swin_model_and_the_shift_mask():
    tr = probe.trace(hf_swin(classifier=False), _pixels(32, 32))
    block = tr.windows[1]
    assert block.layout.shift == (2, 2) and not block.layout.shift_first
    dense = block.to_image()
    rows, cols = block.grid
    q, k = (dense[0, 0] > 0).nonzero(as_tuple=True)
    assert ((q // cols - k // cols).abs() < 4).all() and ((q % cols - k % cols).abs() < 4).all()
    assert_close(dense.sum(-1), torch.ones(dense.shape[:-1]), atol=1e-5, rtol=0)


def test_hf_forward_that_raises_restores_config_and_registries():
    from transformers.modeling_utils import AttentionInterface

    model = hf_swin()
    registry = dict(AttentionInterface._global_mapping)

    def explode(*_: Any) -> None:
        raise RuntimeError("forward failed")

    handle = model.swin.encoder.layers[1].blocks[0].mlp.register_forward_hook(explode)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="forward failed"):
        probe.trace(model, _pixels(32, 32))
    assert_unchanged(model, before)
    handle.remove()
    assert model.config._attn_implementation == "sdpa"
    assert dict(AttentionInterface._global_mapping) == registry


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    "analysis",
    [
        lambda t: t.attentions,
        lambda t: t.layer_attentions(0),
        probe.rollout,
        probe.head_stats,
        probe.patch_maps,
        probe.attention_flow,
        lambda t: probe.plot(t, "heads"),
        lambda t: probe.plot(t, "rollout"),
    ],
    ids=["attentions", "layer_attentions", "rollout", "head_stats", "patch_maps", "flow",
         "plot-heads", "plot-rollout"],
)
def test_analyses_across_stages_refuse_in_one_line(analysis):
    tr = probe.trace(timm_swin(), _pixels(32, 48))
    with pytest.raises(probe.ProbeError, match="windowed attention") as err:
        analysis(tr)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "option", [{"heads": [0]}, {"average_heads": True}, {"stream": True}, {"chunk_size": 4},
               {"query_rows": [0]}],
)
def test_unsupported_options_are_refused(option):
    with pytest.raises(probe.ProbeError, match="windowed-attention model"):
        probe.trace(timm_swin(), _pixels(32, 48), **option)


@pytest.mark.parametrize("method", ["attention", "rollout", "relevance"])
def test_attention_methods_refuse_clearly(method):
    with pytest.raises(probe.ProbeError, match="windowed attention") as err:
        probe.attribute(timm_swin(), _pixels(32, 48, batch=1), method)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- views
def test_window_view_draws_the_query_map():
    tr = probe.trace(timm_swin(), _pixels(32, 48))
    fig = probe.plot(tr, "window", layer=1, query=(0, 0))
    assert len(fig.axes) == 4  # input, two heads, colorbar
    drawn = fig.axes[1].images[-1].get_array()
    assert_close(torch.as_tensor(drawn.data), tr.windows[1].query_map(0, 0)[0, 0].double())
    # token (0, 0) of a shifted block sees its 2x2 corner only (the rest of its window
    # wrapped round from the other sides and is masked)
    assert (drawn[:2, :2] > 0).all() and drawn.sum() == pytest.approx(1.0, abs=1e-5)
    assert (drawn[2:] == 0).all() and (drawn[:, 2:] == 0).all()
    with pytest.raises(probe.ProbeError, match="query must be"):
        probe.plot(tr, "window", query=3)


def test_window_view_needs_a_windowed_trace():
    from tests._tiny import TIMM

    tr = probe.trace(*TIMM["vit"]())
    with pytest.raises(probe.ProbeError, match="windowed-attention trace"):
        probe.plot(tr, "window")


def test_head_stats_of_a_block_are_per_head_and_bounded():
    tr = probe.trace(timm_swin(), _pixels(32, 48))
    for block in tr.windows:
        stats = block.head_stats()
        assert stats.entropy.shape == stats.distance.shape == (2, block.num_heads)
        assert (stats.entropy <= stats.window_entropy + 1e-5).all()
        # a window spans at most (window - 1) tokens each way
        wh, ww = block.layout.window
        th, tw = block.token_size
        assert (stats.distance < math.hypot((wh - 1) * th, (ww - 1) * tw)).all()


# ----------------------------------------------------------------------------- the CLI
def _run(argv: list[str], capsys: Any) -> tuple[int, str, str]:
    from probe.cli import main

    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def swin_folder(tmp_path_factory: Any) -> str:
    """A tiny random-init HF Swin classifier saved as a model folder (with its processor)."""
    from transformers import ViTImageProcessor

    folder = tmp_path_factory.mktemp("swin")
    hf_swin().save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


def test_render_window_timm_writes_one_figure_per_query(tmp_path, capsys):
    from PIL import Image

    argv = ["render", "window", "--model", "timm:swin_tiny_patch4_window7_224", "--quiet",
            "--layer", "1", "--query", "0", "--query", "57", "--out", str(tmp_path),
            "--dpi", "50"]
    rc, out, err = _run(argv, capsys)
    assert rc == 0, err
    paths = out.split()
    assert len(paths) == 2 and "_L1_q0_" in paths[0] and "_L1_q57_" in paths[1]
    with Image.open(paths[0]) as img:
        assert img.size[0] > 100


def test_render_window_hf_folder(swin_folder, tmp_path, capsys):
    rc, out, err = _run(["render", "window", "--model", swin_folder, "--quiet", "--format",
                         "svg", "--out", str(tmp_path)], capsys)
    assert rc == 0, err
    [path] = out.split()
    assert "_L3_q10_" in path and path.endswith(".svg")  # last block, 4x4 grid: (2, 2) = 10


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "minilm"], r"needs a Swin model \(e.g. --model swin-shapes"),
        (["--model", "vit-shapes"], "vit-shapes is not one"),
        (["--query", "16"],
         r"--query 16 is out of range: block 3 has 4x4 tokens, row-major \(use -16\.\.15"),
        (["--layer", "4"], "--layer: layer 4 is out of range"),
        (["--head", "0"], "--head does not apply to the window view"),
        (["--pair", "a"], "--pair"),
    ],
)
def test_render_window_errors_are_one_line(extra, message, swin_folder, tmp_path, capsys):
    import re

    argv = ["render", "window", *(extra if extra is not None else [])]
    if extra is not None and "--model" not in extra:
        argv += ["--model", swin_folder]
    rc, out, err = _run([*argv, "--out", str(tmp_path)], capsys)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []


def test_render_attention_views_refuse_swin(swin_folder, tmp_path, capsys):
    rc, out, err = _run(["render", "rollout", "--model", swin_folder, "--out", str(tmp_path)],
                        capsys)
    assert rc == 2 and "windowed attention (Swin)" in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- more inputs
def test_timm_any_size_swin_reads_the_grid_from_the_pixels():
    import timm

    torch.manual_seed(0)
    model = timm.create_model(
        "swin_tiny_patch4_window7_224", pretrained=False, img_size=32, patch_size=4,
        embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=5,
        strict_img_size=False,
    ).eval()
    x = _pixels(40, 56)
    ref, _ = _timm_reference(model, x)
    tr = probe.trace(model, x)
    assert tr.grid == (10, 14) == tr.windows[0].grid and tr.windows[2].grid == (5, 7)
    for block, expected in zip(tr.windows, ref):
        assert_close(block.weights, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_training_mode_with_attention_dropout_warns(version):
    from tests.test_swin_v2 import timm_swinv2

    model = (timm_swin if version == "v1" else timm_swinv2)(depths=(2,), heads=(2,))
    for m in model.modules():
        if type(m).__name__ == "WindowAttention":
            m.attn_drop.p = 0.2
    model.train()
    with pytest.warns(UserWarning, match="training mode with attention dropout"):
        probe.trace(model, _pixels(32, 48))


def test_hf_output_attentions_do_not_share_the_trace():
    model = hf_swin("eager")
    tr = probe.trace(model, _pixels(32, 32), output_attentions=True)
    returned = tr.output.attentions[0]
    assert_close(tr.windows[1].weights, returned, atol=0, rtol=0)
    returned.zero_()
    assert tr.windows[1].weights.sum() > 0


def test_hf_swin_layers_keep_their_window_and_shift_after_a_trace():
    """HF's SwinLayer shrinks its own ``window_size`` / ``shift_size`` on small grids and keeps
    them (a later larger input would run unshifted); a grid smaller than the window fails on
    the relative-position bias and used to leave the model broken for every later input."""
    model = hf_swin()
    reference = copy.deepcopy(model)
    layers = [m for m in model.modules() if type(m).__name__ == "SwinLayer"]
    before = [(m.window_size, m.shift_size) for m in layers]
    assert (4, 2) in before  # a shifted block whose stage-1 grid (4x4 at 32 px) equals the window
    probe.trace(model, _pixels(32, 32))
    assert [(m.window_size, m.shift_size) for m in layers] == before
    with pytest.raises(ProbeError, match=r"block \d+ a 2x2 token grid, smaller than its 4x4 "
                                         r"window .*use a larger image"):
        probe.trace(model, _pixels(16, 16))
    assert [(m.window_size, m.shift_size) for m in layers] == before
    big = _pixels(64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(big).logits, reference(big).logits, atol=0, rtol=0)
