"""probe.generate: attention captured while a model generates with its KV cache on.

Reference: one teacher-forced forward over prompt + generated tokens with eager attention and
``output_attentions=True``; captured rows must equal it to 1e-5, and the generated tokens must
be identical with and without capture.
"""

from __future__ import annotations

import copy

import pytest
import torch

import probe
from tests import _tiny
from tests._tokenizers import byte_level

pytestmark = pytest.mark.filterwarnings("ignore")


def marian() -> tuple[object, dict]:
    from transformers import MarianConfig, MarianMTModel

    cfg = MarianConfig(vocab_size=_tiny.VOCAB, d_model=32, encoder_layers=2, decoder_layers=2,
                       encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                       decoder_ffn_dim=64, max_position_embeddings=64, pad_token_id=0,
                       decoder_start_token_id=0, eos_token_id=1, forced_eos_token_id=None)
    return MarianMTModel(cfg).eval(), _tiny._ids()


BUILDERS = {"gpt2": _tiny.gpt2, "llama": _tiny.llama, "t5": _tiny.t5, "bart": _tiny.bart,
            "marian": marian}
DECODERS = ("gpt2", "llama")
SEQ2SEQ = ("t5", "bart", "marian")
NEW = 6
# no EOS, so every model generates NEW tokens and every row is compared
NO_STOP = {"eos_token_id": None, "forced_eos_token_id": None, "min_new_tokens": NEW}


def _build(name: str) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    return BUILDERS[name]()


def _eager_copy(model: torch.nn.Module) -> torch.nn.Module:
    ref = copy.deepcopy(model)
    ref.set_attn_implementation("eager")
    return ref


def _reference(model, name, prompt, mask, sequences):
    """Teacher-forced eager attentions over what the model read while generating."""
    ref = _eager_copy(model)
    with torch.no_grad():
        if name in DECODERS:
            full = torch.cat([mask, torch.ones(mask.shape[0], sequences.shape[1] - mask.shape[1],
                                               dtype=mask.dtype)], dim=1)[:, :-1]
            positions = (full.long().cumsum(-1) - 1).clamp_min(0)
            out = ref(sequences[:, :-1], attention_mask=full, position_ids=positions,
                      output_attentions=True)
            return torch.stack(out.attentions), None, None
        out = ref(input_ids=prompt, attention_mask=mask, decoder_input_ids=sequences[:, :-1],
                  output_attentions=True)
        return (torch.stack(out.decoder_attentions), torch.stack(out.cross_attentions),
                torch.stack(out.encoder_attentions))


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("sample", [False, True])
def test_generation_equals_teacher_forced_eager(name: str, sample: bool) -> None:
    model, inputs = _build(name)
    prompt, mask = inputs["input_ids"][:1], inputs["attention_mask"][:1]
    kwargs = dict(max_new_tokens=NEW, do_sample=sample, **NO_STOP)
    torch.manual_seed(3)
    plain = model.generate(input_ids=prompt, attention_mask=mask, **kwargs)
    torch.manual_seed(3)
    gen = probe.generate(model, {"input_ids": prompt, "attention_mask": mask}, **kwargs)
    assert torch.equal(gen.sequences, plain)  # capture changes no token
    assert gen.num_generated == NEW and gen.scores.shape[:2] == (1, NEW)
    self_ref, cross_ref, enc_ref = _reference(model, name, prompt, mask, gen.sequences)
    total = gen.sequences.shape[1]
    assert gen.attentions.shape[3:] == (NEW, total)
    trace = gen.to_trace()
    if name in DECODERS:
        torch.testing.assert_close(trace.attentions, self_ref, atol=1e-5, rtol=0)
        # the generated rows alone, padded with the not-yet-existing last key
        torch.testing.assert_close(gen.attentions[..., :-1], self_ref[:, :, :, -NEW:], atol=1e-5,
                                   rtol=0)
    else:
        torch.testing.assert_close(trace.decoder.attentions, self_ref, atol=1e-5, rtol=0)
        torch.testing.assert_close(gen.cross.attentions, cross_ref, atol=1e-5, rtol=0)
        torch.testing.assert_close(trace.attentions, enc_ref, atol=1e-5, rtol=0)
        assert gen.cross.attentions.shape[3:] == (NEW, prompt.shape[1])
    assert float(gen.attentions[..., -1].abs().max()) == 0.0  # the last token is never a key
    rows = gen.attentions.sum(-1)
    torch.testing.assert_close(rows, torch.ones_like(rows), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_generation_without_a_kv_cache_keeps_the_new_tokens_rows(name: str) -> None:
    """``use_cache=False`` runs the whole sequence again at every step: the rows kept are the
    new token's, equal to those of the cached generation; the tokens are the model's own."""
    model, inputs = _build(name)
    ids, mask = inputs["input_ids"].clone(), inputs["attention_mask"].clone()
    if name in DECODERS:  # left padding
        mask[1, :3] = 0
        ids[1, :3] = 0
    batch = {"input_ids": ids, "attention_mask": mask}
    kwargs = dict(max_new_tokens=4, **NO_STOP)
    plain = model.generate(**batch, use_cache=False, **kwargs)
    cached = probe.generate(model, batch, **kwargs)
    for extra in ({}, dict(keep_prompt=False, chunk_size=2)):
        gen = probe.generate(model, batch, use_cache=False, **kwargs, **extra)
        assert torch.equal(gen.sequences, plain)
        torch.testing.assert_close(gen.attentions, cached.attentions, atol=1e-5, rtol=0)
        if name in SEQ2SEQ:
            torch.testing.assert_close(gen.cross.attentions, cached.cross.attentions, atol=1e-5,
                                       rtol=0)
    assert model.config.use_cache is True  # the model's own setting is left alone


@pytest.mark.parametrize("name", DECODERS)
def test_left_padded_batch_equals_reference(name: str) -> None:
    model, inputs = _build(name)
    ids = inputs["input_ids"].clone()
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding
    ids[1, :3] = 0
    gen = probe.generate(model, {"input_ids": ids, "attention_mask": mask}, max_new_tokens=NEW,
                         **NO_STOP)
    plain = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW, **NO_STOP)
    assert torch.equal(gen.sequences, plain)
    ref, _, _ = _reference(model, name, ids, mask, gen.sequences)
    got = gen.to_trace().attentions
    real = mask.bool()
    for b in range(2):  # padded query rows are zero in probe (as probe.trace does)
        rows = torch.cat([real[b], torch.ones(NEW - 1, dtype=torch.bool)])
        torch.testing.assert_close(got[:, b][:, :, rows], ref[:, b][:, :, rows], atol=1e-5, rtol=0)
    assert float(got[:, 1, :, :, :3].abs().max()) == 0.0  # padded keys get no weight
    assert gen.attention_mask[1, :3].sum() == 0 and bool(gen.attention_mask[1, 3:].all())


@pytest.mark.parametrize("name", ["llama", "bart"])
def test_keep_prompt_false_and_chunks_keep_the_same_rows(name: str) -> None:
    model, inputs = _build(name)
    ids = inputs["input_ids"][:1]
    full = probe.generate(model, ids, max_new_tokens=4, **NO_STOP)
    lean = probe.generate(model, ids, max_new_tokens=4, keep_prompt=False, chunk_size=2, **NO_STOP)
    torch.testing.assert_close(lean.attentions, full.attentions, atol=1e-6, rtol=0)
    assert lean.prompt_attentions is None
    if name == "llama":
        assert full.prompt_attentions.shape[3] == ids.shape[1] - 1
        with pytest.raises(probe.ProbeError, match="keep_prompt=True"):
            lean.to_trace()
    else:
        torch.testing.assert_close(lean.cross.attentions, full.cross.attentions, atol=1e-6, rtol=0)


def test_layer_and_head_selection() -> None:
    model, inputs = _build("t5")
    gen = probe.generate(model, inputs["input_ids"][:1], max_new_tokens=3, layers=[-1],
                         heads=[0, 2], **NO_STOP)
    full = probe.generate(model, inputs["input_ids"][:1], max_new_tokens=3, **NO_STOP)
    assert gen.layer_indices == (1,) and gen.head_indices == (0, 2)
    torch.testing.assert_close(gen.cross.attentions, full.cross.attentions[1:, :, [0, 2]])
    torch.testing.assert_close(gen.attentions, full.attentions[1:, :, [0, 2]])


def test_words_of_generated_text_and_eos_mask() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = byte_level()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4,
                                       n_positions=64)).eval()
    gen = probe.generate(model, "The cat sat on", tokenizer=tok, max_new_tokens=5,
                         eos_token_id=None, min_new_tokens=5)
    assert gen.prompt_words == (("The", "cat", "sat", "on"),)
    assert gen.text[0] == tok.decode(gen.generated_ids[0].tolist(), skip_special_tokens=True)
    if gen.words_missing[0] is None:  # the tokens re-encode to themselves: words are trusted
        joined = "".join(t for t in gen.text[0].split())
        assert "".join(gen.words[0]) == joined
    trace = gen.to_trace()
    assert trace.words[0][:4] == ("The", "cat", "sat", "on")
    assert len(trace.word_ids[0]) == trace.attentions.shape[-1]
    # EOS: the mask ends after the first EOS of each item
    eos = int(gen.generated_ids[0, 1])
    again = probe.generate(model, "The cat sat on", tokenizer=tok, max_new_tokens=5,
                           eos_token_id=eos, min_new_tokens=0)
    first = int((again.generated_ids[0] == eos).nonzero()[0, 0])
    assert again.generated_mask[0, : first + 1].all()
    assert not again.generated_mask[0, first + 1 :].any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_beams": 2}, "beam search"),
        ({"num_return_sequences": 2, "do_sample": True}, "num_return_sequences"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"keep_prompt": "yes"}, "keep_prompt"),
        ({"layers": [5]}, "out of range"),
        ({"max_length": 3}, "max_new_tokens=N instead of max_length=3"),  # was overridden by 20
        ({"max_new_tokens": 60}, "9 tokens and max_new_tokens=60.*at most 64.*<= 55"),  # IndexError
    ],
)
def test_bad_options_raise(kwargs: dict, match: str) -> None:
    model, inputs = _build("gpt2")
    with pytest.raises(probe.ProbeError, match=match):
        probe.generate(model, inputs["input_ids"][:1], **kwargs)


def test_generation_config_sets_the_length_unless_max_new_tokens_is_given() -> None:
    """A ``generation_config=`` with ``max_new_tokens`` is obeyed as ``model.generate`` obeys it
    (probe's default of 20 overrode it); an explicit ``max_new_tokens=`` still wins."""
    from transformers import GenerationConfig

    model, inputs = _build("gpt2")
    config = GenerationConfig(max_new_tokens=3, min_new_tokens=3, do_sample=False)
    gen = probe.generate(model, inputs["input_ids"][:1], generation_config=config)
    assert gen.generated_ids.shape[1] == 3
    plain = model.generate(inputs["input_ids"][:1], generation_config=config)
    assert torch.equal(gen.sequences, plain)
    gen = probe.generate(model, inputs["input_ids"][:1], generation_config=config, max_new_tokens=5,
                         min_new_tokens=5)
    assert gen.generated_ids.shape[1] == 5


def test_right_padding_and_encoders_are_refused() -> None:
    model, inputs = _build("gpt2")
    mask = torch.ones_like(inputs["input_ids"])
    mask[1, -2:] = 0
    with pytest.raises(probe.ProbeError, match="left padding"):
        probe.generate(model, {"input_ids": inputs["input_ids"], "attention_mask": mask})
    bert, inputs = _tiny.bert()
    with pytest.raises(probe.UnsupportedModelError,
                       match="is an encoder model: probe.generate.*--model toy-mt"):
        probe.generate(bert, inputs)


class _Boom:
    """A logits processor that raises at the third step."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, input_ids, scores):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("boom")
        return scores


@pytest.mark.parametrize("name", ["llama", "t5"])
def test_model_and_registries_restored_also_when_generation_raises(name: str) -> None:
    from transformers import LogitsProcessorList
    from transformers.masking_utils import AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    model, inputs = _build(name)
    before = _tiny.snapshot(model)
    impl = model.config._attn_implementation
    registries = (set(AttentionInterface._global_mapping),
                  set(AttentionMaskInterface._global_mapping))
    with pytest.raises(RuntimeError, match="boom"):
        probe.generate(model, inputs["input_ids"][:1], max_new_tokens=5, **NO_STOP,
                       logits_processor=LogitsProcessorList([_Boom()]))
    for _ in range(3):
        probe.generate(model, inputs["input_ids"][:1], max_new_tokens=2)
    _tiny.assert_unchanged(model, before)
    assert model.config._attn_implementation == impl
    now = (set(AttentionInterface._global_mapping), set(AttentionMaskInterface._global_mapping))
    assert now == registries


def test_hundred_generations_leave_nothing_behind() -> None:
    from transformers.masking_utils import AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    model, inputs = _build("gpt2")
    before = _tiny.snapshot(model)
    sizes = (len(AttentionInterface._global_mapping), len(AttentionMaskInterface._global_mapping))
    for _ in range(100):
        probe.generate(model, inputs["input_ids"][:1, :4], max_new_tokens=2)
    _tiny.assert_unchanged(model, before)
    now = (len(AttentionInterface._global_mapping), len(AttentionMaskInterface._global_mapping))
    assert now == sizes


def test_bench_memory_measure_keeps_rows_only() -> None:
    from probe.commands.bench._generation import _measure, to_markdown

    full = _measure("full", 96, "cpu")
    rows = _measure("rows", 96, "cpu")
    # 6 layers x 4 heads: full keeps (prompt - 1 + 4) x total rows, rows keeps 4 x total
    total = 96 + 4
    assert rows["kept_attention_values"] == 6 * 4 * 4 * total
    assert full["kept_attention_values"] == 6 * 4 * (95 + 4) * total
    text = to_markdown({"memory": {"rows": [dict(full, status="ok"), dict(rows, status="ok")],
                                   "full_vs_rows": {"96": 2.0}}})
    assert "| 96 | rows |" in text and "2.0x" in text
