"""Shared fixtures. Every test runs offline: nothing may reach a model hub."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per xdist worker: `-n 2` on 2 cores must not oversubscribe them
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def minilm():
    """The real packaged all-MiniLM-L6-v2: ``(model, tokenizer)``, loaded once per session."""
    import probe

    model, tokenizer = probe.load_model("minilm")
    return model, tokenizer
