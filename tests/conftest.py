"""Shared fixtures. Every test runs offline: nothing may reach a model hub.

Test helpers are imported under one name each: ``from tests._tiny import ...`` (tiny random-
init models, model side-effect snapshots) and ``from tests._factories import ...`` (hand-built
traces).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per xdist worker: `-n 2` on 2 cores must not oversubscribe them
    import torch

    torch.set_num_threads(1)


# ----------------------------------------------------------------------------- registries
def _registries() -> list[dict]:
    """The dicts where methods, head fusions and embedded models are registered."""
    from probe.analysis import _fusion
    from probe.attribution import _registry as methods
    from probe.models import _registry as models

    methods.list_methods()  # imports the built-in methods, so the snapshot holds them
    return [methods._METHODS, _fusion._REGISTRY, models._EMBEDDED]


@contextlib.contextmanager
def registries_restored() -> Iterator[None]:
    """Put the method, head-fusion and model registries back as they were on exit."""
    registries = _registries()
    saved = [dict(registry) for registry in registries]
    try:
        yield
    finally:
        for registry, before in zip(registries, saved):
            registry.clear()
            registry.update(before)


@pytest.fixture(autouse=True)
def _isolated_registries() -> Iterator[None]:
    """Whatever a test registers (or breaks) in a registry is gone for the next test."""
    with registries_restored():
        yield


# ----------------------------------------------------------------------------- models
@pytest.fixture(scope="session")
def minilm():
    """The real packaged all-MiniLM-L6-v2: ``(model, tokenizer)``, loaded once per session."""
    import probe

    model, tokenizer = probe.load_model("minilm")
    return model, tokenizer


@pytest.fixture(scope="module")
def vit():
    """Tiny timm ViT on 32x48 images: a 4x6 patch grid, one CLS token;
    ``(model, [2, 3, 32, 48])``."""
    from tests._tiny import timm_model

    return timm_model("vit_small_patch16_224", img=(32, 48))


@pytest.fixture(scope="module")
def vit_square():
    """Tiny timm ViT on 32x32 images: depth 2, a 4x4 patch grid; ``(model, [2, 3, 32, 32])``."""
    from tests._tiny import timm_model

    return timm_model("vit_small_patch16_224")


@pytest.fixture(scope="module")
def vit_reg():
    """Tiny timm ViT with 4 register tokens and no class embedding (5 prefix tokens)."""
    from tests._tiny import timm_model

    return timm_model("vit_small_patch16_224", reg_tokens=4, no_embed_class=True)


@pytest.fixture(scope="module")
def bert_cls():
    """Tiny 3-class BERT classifier and a padded batch of ids ``[2, 9]`` (item 1: 6 real)."""
    from tests._tiny import bert_classifier

    return bert_classifier()
