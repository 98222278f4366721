"""Tiny random-init models of every supported family, built from configs (no downloads).

Each builder returns ``(model, example_inputs)`` with the model in eval mode and loaded with
the library's default attention implementation (SDPA for HF, fused attention for timm).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import torch

VOCAB = 99


def _ids(batch: int = 2, seq: int = 9, pad_from: int | None = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, VOCAB, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    if pad_from is not None and batch > 1:
        mask[1, pad_from:] = 0
        ids[1, pad_from:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def bert() -> tuple[Any, dict]:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64)
    return BertModel(cfg).eval(), _ids()


def roberta() -> tuple[Any, dict]:
    from transformers import RobertaConfig, RobertaModel

    cfg = RobertaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=66, pad_token_id=1)
    inputs = _ids()
    inputs["input_ids"][1, 6:] = 1
    return RobertaModel(cfg).eval(), inputs


def distilbert() -> tuple[Any, dict]:
    from transformers import DistilBertConfig, DistilBertModel

    cfg = DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                           max_position_embeddings=64)
    return DistilBertModel(cfg).eval(), _ids()


def gpt2() -> tuple[Any, dict]:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    return GPT2LMHeadModel(cfg).eval(), _ids(pad_from=None)


def llama() -> tuple[Any, dict]:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval(), _ids(pad_from=None)


def t5() -> tuple[Any, dict]:
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                   num_decoder_layers=2,
                   num_heads=4, decoder_start_token_id=0, pad_token_id=0)
    inputs = _ids()
    inputs["decoder_input_ids"] = torch.tensor([[0, 7, 8, 9], [0, 10, 11, 12]])
    return T5ForConditionalGeneration(cfg).eval(), inputs


def bart() -> tuple[Any, dict]:
    from transformers import BartConfig, BartForConditionalGeneration

    cfg = BartConfig(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2,
                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                     decoder_ffn_dim=64, max_position_embeddings=64)
    inputs = _ids()
    inputs["decoder_input_ids"] = torch.tensor([[2, 7, 8, 9, 10], [2, 10, 11, 12, 13]])
    return BartForConditionalGeneration(cfg).eval(), inputs


def hf_vit() -> tuple[Any, torch.Tensor]:
    from transformers import ViTConfig, ViTForImageClassification

    cfg = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32,
                    num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=64, num_labels=3)
    return ViTForImageClassification(cfg).eval(), _pixels(32, 32)


def _pixels(h: int, w: int, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 3, h, w, generator=g)


def timm_model(name: str, img: int | tuple[int, int] = 32,
               **kwargs: Any) -> tuple[Any, torch.Tensor]:
    import timm

    size = (img, img) if isinstance(img, int) else img
    small = dict(img_size=size, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=5)
    small.update(kwargs)
    model = timm.create_model(name, pretrained=False, **small).eval()
    return model, _pixels(*size)


def albert(layers: int = 4, groups: int = 2, inner: int = 1) -> tuple[Any, dict]:
    """ALBERT: ``groups`` groups of ``inner`` layers shared across ``layers`` layers of depth
    (one forward calls each attention module ``layers / groups`` times)."""
    from transformers import AlbertConfig, AlbertModel

    cfg = AlbertConfig(vocab_size=VOCAB, embedding_size=16, hidden_size=32,
                       num_hidden_layers=layers, num_hidden_groups=groups, inner_group_num=inner,
                       num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    return AlbertModel(cfg).eval(), _ids()


HF_TEXT: dict[str, Callable[[], tuple[Any, Any]]] = {
    "bert": bert, "roberta": roberta, "distilbert": distilbert, "gpt2": gpt2, "llama": llama,
    "t5": t5, "bart": bart, "albert": albert,
}

TIMM: dict[str, Callable[[], tuple[Any, torch.Tensor]]] = {
    "vit": lambda: timm_model("vit_small_patch16_224"),
    "vit_nonsquare": lambda: timm_model("vit_small_patch16_224", img=(32, 48)),
    "deit_distilled": lambda: timm_model("deit_small_distilled_patch16_224"),
    "vit_registers": lambda: timm_model("vit_small_patch16_224", reg_tokens=4, no_embed_class=True),
    "eva": lambda: timm_model("eva02_tiny_patch14_224", mlp_ratio=2.0),
    "beit": lambda: timm_model("beit_base_patch16_224"),
}


# ----------------------------------------------------------------------------- side effects
HOOK_DICTS = (
    "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
    "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs",
)


def snapshot(model: torch.nn.Module) -> dict:
    """Everything a method could leave changed on a model: params, flags, grads, modes, hooks."""
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "flags": {n: p.requires_grad for n, p in model.named_parameters()},
        "grads": {n: (p.grad, None if p.grad is None else p.grad.clone())
                  for n, p in model.named_parameters()},
        "modes": {n: m.training for n, m in model.named_modules()},
        "hooks": {
            n: [len(getattr(m, h, {})) for h in HOOK_DICTS] for n, m in model.named_modules()
        },
    }


def assert_unchanged(model: torch.nn.Module, before: dict) -> None:
    """Fail if ``model`` differs from its :func:`snapshot` ``before`` in any way."""
    after = snapshot(model)
    assert after["flags"] == before["flags"]
    assert after["modes"] == before["modes"]
    assert after["hooks"] == before["hooks"]
    for n, (grad, value) in before["grads"].items():
        assert after["grads"][n][0] is grad
        assert value is None or torch.equal(grad, value)
    assert all(torch.equal(after["params"][n], p) for n, p in before["params"].items())


def bert_classifier() -> tuple[Any, dict]:
    """Tiny 3-class BERT sequence classifier with a padded batch."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, num_labels=3, max_position_embeddings=64)
    return BertForSequenceClassification(cfg).eval(), _ids()


class Boom(RuntimeError):
    """The failure :func:`fails_late` raises: no library code raises it, so a test catching it
    knows the forward failed where the test made it fail."""


@contextmanager
def fails_late(module: torch.nn.Module) -> Iterator[type[Boom]]:
    """Make every forward of ``module`` raise :class:`Boom` (after the attention ran), for the
    exception-path checks; the test's own hook comes off however the block ends."""

    def boom(*_: Any) -> None:
        raise Boom("late failure")

    handle = module.register_forward_hook(boom)
    try:
        yield Boom
    finally:
        handle.remove()


def assert_generation_matches_hf(gen: Any, hf: Any) -> None:
    """A :class:`probe.GenerationTrace` of an encoder-decoder against ``model.generate(...,
    output_attentions=True, return_dict_in_generate=True)``: same tokens, and each step's
    decoder and cross attention equal to the last query row HF returned at that step."""
    assert torch.equal(gen.sequences, hf.sequences)
    for step, (dec, cross) in enumerate(zip(hf.decoder_attentions, hf.cross_attentions)):
        keys = dec[0].shape[-1]
        torch.testing.assert_close(gen.attentions[:, :, :, step, :keys],
                                   torch.stack(dec)[:, :, :, -1], atol=1e-5, rtol=0)
        torch.testing.assert_close(gen.cross.attentions[:, :, :, step],
                                   torch.stack(cross)[:, :, :, -1], atol=1e-5, rtol=0)


def resnet_detr(stage: int = 2, **kw: Any) -> Any:
    """A tiny DETR on a random ResNet backbone of ``stage`` stages (no timm, no download):
    1 encoder and 2 decoder layers of 2 heads, 4 queries, classes "cat" and "dog"; ``kw``
    overrides the config."""
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

    bb = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16][:stage], depths=[1] * stage,
                      layer_type="basic", out_features=[f"stage{stage}"])
    base = dict(
        use_timm_backbone=False, backbone_config=bb, use_pretrained_backbone=False, d_model=16,
        encoder_layers=1, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=16, decoder_ffn_dim=16, num_queries=4, num_labels=2,
        id2label={0: "cat", 1: "dog"}, label2id={"cat": 0, "dog": 1},
    )
    torch.manual_seed(0)
    return DetrForObjectDetection(DetrConfig(**{**base, **kw})).eval()


def toy_marian(decoder_layers: int = 2, decoder_heads: int = 4) -> tuple[Any, Any]:
    """A random-init Marian (2 encoder layers of 4 heads) with probe's toy word-level tokenizer
    (``probe.models._toy_mt``), so generations have words: ``(model, tokenizer)``."""
    from transformers import MarianConfig, MarianMTModel

    from probe.models._toy_mt import build_toy_tokenizer

    tok = build_toy_tokenizer()
    torch.manual_seed(0)
    cfg = MarianConfig(vocab_size=len(tok), decoder_vocab_size=len(tok), d_model=32,
                       encoder_layers=2, decoder_layers=decoder_layers, encoder_attention_heads=4,
                       decoder_attention_heads=decoder_heads, encoder_ffn_dim=64,
                       decoder_ffn_dim=64, max_position_embeddings=32, pad_token_id=0,
                       eos_token_id=1, decoder_start_token_id=0, forced_eos_token_id=None)
    return MarianMTModel(cfg).eval(), tok
