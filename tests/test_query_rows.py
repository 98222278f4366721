"""``probe.trace(..., query_rows=...)`` and row-selected generation.

Reference: HF eager attention with ``output_attentions=True`` (the same rows, padded query rows
zeroed as in full captures); the model's output with capture must equal its output without
(bitwise where the original implementation computes it: SDPA-loaded decoders and encoders,
eager-loaded models); only the kept query rows may reach the eager function.
"""

from __future__ import annotations

import copy
import sys

import pytest
import torch

import probe
from tests import _tiny

pytestmark = pytest.mark.filterwarnings("ignore")

TEXT = {"bert": _tiny.bert, "gpt2": _tiny.gpt2, "llama": _tiny.llama, "t5": _tiny.t5,
        "bart": _tiny.bart}
SEQ2SEQ = ("t5", "bart")
ROWS = ([-1], [0, 3, -1], slice(2, 5), 4)


def _build(name: str, impl: str = "sdpa") -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    model, inputs = TEXT[name]()
    if impl != model.config._attn_implementation:
        model.set_attn_implementation(impl)
    return model, inputs


def _eager_reference(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
    """``[layer, batch, head, query, key]`` eager attention of the main stack."""
    ref = copy.deepcopy(model)
    ref.set_attn_implementation("eager")
    with torch.no_grad():
        out = ref(**inputs, output_attentions=True)
    att = getattr(out, "encoder_attentions", None) or out.attentions
    return torch.stack(att)


def _main_output(out: object) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def _expected_rows(reference: torch.Tensor, inputs: dict, rows: list[int]) -> torch.Tensor:
    real = inputs["attention_mask"].bool()[:, rows]  # padded query rows are zero in probe
    return reference[:, :, :, rows] * real[None, :, None, :, None]


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("name", list(TEXT))
def test_rows_equal_eager_output_attentions_and_outputs_are_unchanged(name: str, impl: str) -> None:
    model, inputs = _build(name, impl)
    reference = _eager_reference(model, inputs)
    with torch.no_grad():
        plain = _main_output(model(**inputs))
    seq = inputs["input_ids"].shape[1]
    for spec in ROWS:
        tr = probe.trace(model, inputs, query_rows=spec)
        rows = list(range(seq)[spec]) if isinstance(spec, slice) else (
            [spec % seq] if isinstance(spec, int) else [r % seq for r in spec])
        assert tr.query_indices == tuple(rows)
        assert tr.attentions.shape == (*reference.shape[:3], len(rows), seq)
        torch.testing.assert_close(tr.attentions, _expected_rows(reference, inputs, rows),
                                   atol=1e-5, rtol=0)
        got = _main_output(tr.output)
        if name in SEQ2SEQ and impl == "sdpa":
            # the decoder stacks keep every row, so they run through eager attention
            torch.testing.assert_close(got, plain, atol=1e-5, rtol=0)
        else:
            assert torch.equal(got, plain), f"{name}/{impl}: output changed by capture"
    assert model.config._attn_implementation == impl


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_left_padded_causal_batch(impl: str) -> None:
    model, inputs = _build("llama", impl)
    ids, mask = inputs["input_ids"].clone(), torch.ones_like(inputs["input_ids"])
    mask[1, :3] = 0
    ids[1, :3] = 0
    positions = (mask.cumsum(-1) - 1).clamp_min(0)  # as probe passes them for left padding
    batch = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
    reference = _eager_reference(model, batch)
    with torch.no_grad():
        plain = model(**batch).logits
    tr = probe.trace(model, batch, query_rows=[-1, 1, 5])
    torch.testing.assert_close(tr.attentions, _expected_rows(reference, batch, [8, 1, 5]),
                               atol=1e-5, rtol=0)
    assert torch.equal(tr.output.logits, plain)
    assert float(tr.attentions[:, 1, :, :, :3].abs().max()) == 0.0


def test_options_combine_with_query_rows() -> None:
    model, inputs = _build("llama")
    full = probe.trace(model, inputs)
    tr = probe.trace(model, inputs, query_rows=[-1, 0], layers=[-1], heads=[3, 1],
                     dtype=torch.float16)
    assert tr.layer_indices == (1,) and tr.head_indices == (3, 1)
    assert tr.attentions.dtype == torch.float16
    expected = full.attentions[1:, :, [3, 1]][:, :, :, [8, 0]].to(torch.float16)
    torch.testing.assert_close(tr.attentions, expected, atol=1e-3, rtol=0)
    avg = probe.trace(model, inputs, query_rows=2, average_heads=True)
    torch.testing.assert_close(avg.attentions, full.attentions[:, :, :, [2]].mean(2, keepdim=True),
                               atol=1e-6, rtol=0)
    # chunk_size is accepted: the kept rows are computed at once, results identical
    chunked = probe.trace(model, inputs, query_rows=[0, -1], chunk_size=1)
    torch.testing.assert_close(chunked.attentions, full.attentions[:, :, :, [0, 8]], atol=1e-6,
                               rtol=0)


class _Rows:
    """Counts the query rows the model's own eager function is called with."""

    def __init__(self, module_name: str) -> None:
        self.module = sys.modules[module_name]
        self.original = self.module.eager_attention_forward
        self.rows: list[int] = []

    def __enter__(self) -> _Rows:
        def counting(module, query, *args, **kwargs):
            self.rows.append(int(query.shape[-2]))
            return self.original(module, query, *args, **kwargs)

        self.module.eager_attention_forward = counting
        return self

    def __exit__(self, *exc: object) -> None:
        self.module.eager_attention_forward = self.original


def test_unwanted_rows_never_reach_the_eager_function() -> None:
    model, inputs = _build("llama")
    with _Rows("transformers.models.llama.modeling_llama") as seen:
        probe.trace(model, inputs)
    assert seen.rows == [9, 9]  # the counter sees full captures: every row, both layers
    with _Rows("transformers.models.llama.modeling_llama") as seen:
        probe.trace(model, inputs, query_rows=[0, -1])
    assert seen.rows == [2, 2]
    with _Rows("transformers.models.llama.modeling_llama") as seen:
        probe.trace(model, inputs, query_rows=-1, layers=[1])
    assert seen.rows == [1]  # the unkept layer runs on SDPA alone
    with _Rows("transformers.models.llama.modeling_llama") as seen:
        gen = probe.generate(model, inputs["input_ids"][:1], max_new_tokens=3, keep_prompt=False,
                             eos_token_id=None, min_new_tokens=3)
    assert seen.rows == [1] * 6  # prompt step: the last row only; then one row per step
    assert gen.attentions.shape[3] == 3


def test_generation_without_prompt_rows_is_bitwise_sdpa_and_exact() -> None:
    model, inputs = _build("llama")
    ids = inputs["input_ids"][:1]
    kwargs = dict(max_new_tokens=4, min_new_tokens=4, eos_token_id=None, do_sample=False)
    with torch.no_grad():
        plain = model.generate(ids, output_scores=True, return_dict_in_generate=True, **kwargs)
    lean = probe.generate(model, ids, keep_prompt=False, **kwargs)
    full = probe.generate(model, ids, **kwargs)
    assert torch.equal(lean.sequences, plain.sequences)
    assert torch.equal(lean.scores, torch.stack(plain.scores, dim=1))  # SDPA output, bitwise
    torch.testing.assert_close(lean.attentions, full.attentions, atol=1e-6, rtol=0)


def test_fallback_for_other_implementations() -> None:
    """An implementation probe cannot call row by row goes through chunked eager attention."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    from transformers.modeling_utils import AttentionInterface

    model, inputs = _build("llama")
    full = probe.trace(model, inputs)
    AttentionInterface._global_mapping["probe_test_kernel"] = sdpa_attention_forward
    AttentionMaskInterface._global_mapping["probe_test_kernel"] = sdpa_mask
    model.config._attn_implementation_internal = "probe_test_kernel"
    try:
        with torch.no_grad():
            plain = model(**inputs).logits
        with _Rows("transformers.models.llama.modeling_llama") as seen:
            tr = probe.trace(model, inputs, query_rows=[1, -1], chunk_size=4)
        assert seen.rows == [4, 4, 1] * 2  # every row, in chunks
        torch.testing.assert_close(tr.attentions, full.attentions[:, :, :, [1, 8]], atol=1e-6,
                                   rtol=0)
        torch.testing.assert_close(tr.output.logits, plain, atol=1e-5, rtol=0)
        assert model.config._attn_implementation == "probe_test_kernel"
    finally:
        model.config._attn_implementation_internal = "sdpa"
        AttentionInterface._global_mapping.pop("probe_test_kernel")
        AttentionMaskInterface._global_mapping.pop("probe_test_kernel")


def test_vision_models_keep_the_cls_row() -> None:
    model, pixels = _tiny.hf_vit()
    full = probe.trace(model, pixels)
    tr = probe.trace(model, pixels, query_rows=0)
    assert tr.query_indices == (0,) and tr.attentions.shape[3] == 1
    torch.testing.assert_close(tr.attentions, full.attentions[:, :, :, :1], atol=1e-6, rtol=0)
    torch.testing.assert_close(tr.output.logits, full.output.logits, atol=1e-5, rtol=0)
    timm_model, timm_pixels = _tiny.TIMM["vit"]()
    full = probe.trace(timm_model, timm_pixels)
    tr = probe.trace(timm_model, timm_pixels, query_rows=[0, -1])
    torch.testing.assert_close(tr.attentions, full.attentions[:, :, :, [0, -1]], atol=0, rtol=0)
    with pytest.raises(probe.ProbeError, match="out of range.*17 query rows"):
        probe.trace(timm_model, timm_pixels, query_rows=17)
    assert all(m.fused_attn for m in timm_model.modules() if hasattr(m, "fused_attn"))


def test_whole_matrix_analyses_refuse_a_row_selected_trace() -> None:
    model, inputs = _build("bert")
    tr = probe.trace(model, inputs, query_rows=[0])
    for analysis in (probe.rollout, probe.attention_flow, probe.head_stats):
        with pytest.raises(probe.ProbeError, match=r"only query rows \[0\].*without query_rows"):
            analysis(tr)
    from probe.viewers.html import heads_html

    with pytest.raises(probe.ProbeError, match="query_rows"):
        heads_html(tr)
    assert tr.encoder.query_indices == (0,)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(query_rows="last"), "int, a list of ints or a slice"),
        (dict(query_rows=True), "must select query rows"),
        (dict(query_rows=[]), "empty: pass None"),
        (dict(query_rows=[1.5]), "must be integers"),
        (dict(query_rows=[1, 1]), "name row 1 twice"),
        (dict(query_rows=[0, -9]), r"name row 0 twice \(0 and -9\)"),
        (dict(query_rows=9), "query row 9 is out of range: the input has 9 query rows"),
        (dict(query_rows=[-10]), "out of range"),
        (dict(query_rows=slice(20, 30)), "selects no row"),
        (dict(query_rows=slice(0, 5, 0)), "step 0"),
        (dict(query_rows=0, stream=True), "stream=True folds every query row"),
        (dict(query_rows=0, requires_grad=True), "drop query_rows to capture with requires_grad"),
    ],
)
def test_bad_query_rows_raise(options: dict, match: str) -> None:
    model, inputs = _build("bert")
    with pytest.raises(probe.ProbeError, match=match):
        probe.trace(model, inputs, **options)


def test_integral_scalars_of_any_kind_select_a_row() -> None:
    import numpy as np

    model, inputs = _build("bert")
    one = probe.trace(model, inputs, query_rows=1)
    for rows in (np.int64(1), torch.tensor(1), [np.int32(1)], torch.tensor([1])):
        tr = probe.trace(model, inputs, query_rows=rows)
        torch.testing.assert_close(tr.attentions, one.attentions, atol=0, rtol=0)
    for bad in (torch.tensor(True), np.bool_(True), np.float64(1.0), torch.tensor(1.0)):
        with pytest.raises(probe.ProbeError, match="query_rows"):
            probe.trace(model, inputs, query_rows=bad)


def test_exception_in_forward_restores_everything() -> None:
    from transformers.masking_utils import AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    model, inputs = _build("llama")
    before = _tiny.snapshot(model)
    registries = (set(AttentionInterface._global_mapping),
                  set(AttentionMaskInterface._global_mapping))

    def boom(*_: object) -> None:
        raise RuntimeError("boom")

    handle = model.model.layers[1].register_forward_pre_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            probe.trace(model, inputs, query_rows=-1)
    finally:
        handle.remove()
    _tiny.assert_unchanged(model, before)
    assert model.config._attn_implementation == "sdpa"
    assert (set(AttentionInterface._global_mapping),
            set(AttentionMaskInterface._global_mapping)) == registries
    for _ in range(20):  # no leak across repeated captures
        tr = probe.trace(model, inputs, query_rows=-1)
    assert tr.attentions.shape[3] == 1
    assert len(AttentionInterface._global_mapping) == len(registries[0])
