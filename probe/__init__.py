"""probe: attention interpretability and visualization for PyTorch transformers.

Public names are imported lazily (PEP 562), so ``import probe`` and ``probe --help`` do not
import torch, transformers, timm, captum or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from probe._version import __version__

# public name -> private module that defines it
_LAZY: dict[str, str] = {
    # capture
    "Trace": "probe._trace",
    "AttentionStack": "probe._trace",
    "ProbeError": "probe._errors",
    "UnsupportedModelError": "probe._errors",
    "trace": "probe._capture",
    "load_model": "probe._models",
    "list_models": "probe._models",
    "register_model": "probe._models",
    "LoadedModel": "probe._models",
    # attention analyzers
    "rollout": "probe._rollout",
    "rollout_step": "probe._rollout",
    "attention_flow": "probe._flow",
    "head_stats": "probe._headstats",
    "HeadStats": "probe._headstats",
    "relevance": "probe._relevance",
    "relevance_from_gradients": "probe._relevance",
    "register_head_fusion": "probe._fusion",
    "fuse_heads": "probe._fusion",
    "list_head_fusions": "probe._fusion",
    "coref": "probe._coref",
    "CorefLink": "probe._coref",
    "Antecedents": "probe._coref",
    "word_attention": "probe._coref",
    "best_antecedents": "probe._coref",
    "patch_maps": "probe._patches",
    "to_grid": "probe._patches",
    "upsample": "probe._patches",
    "rollout_map": "probe._patches",
    "relevance_map": "probe._patches",
    # attribution registry
    "Attribution": "probe._attribution",
    "MethodContext": "probe._attribution",
    "attribute": "probe._attribution",
    "list_methods": "probe._attribution",
    "register_method": "probe._attribution",
    "gradient_relevance": "probe._attn_methods",
    "integrated_gradients": "probe._grad_methods",
    "IntegratedGradientsResult": "probe._grad_methods",
    "completeness": "probe._grad_methods",
    "check_completeness": "probe._grad_methods",
    "resolve_target": "probe._targets",
    "class_logit": "probe._targets",
    "mean_pooled_embedding": "probe._targets",
    "similarity_target": "probe._targets",
    "SimilarityTarget": "probe._targets",
    "load_image": "probe._images",
    # agreement, faithfulness, sanity
    "spearman": "probe._agreement",
    "kendall": "probe._agreement",
    "topk_overlap": "probe._agreement",
    "compare": "probe._agreement",
    "AgreementTable": "probe._agreement",
    "deletion_curve": "probe._faithfulness",
    "insertion_curve": "probe._faithfulness",
    "Curve": "probe._faithfulness",
    "curve_auc": "probe._faithfulness",
    "faithfulness": "probe._faithfulness",
    "FaithfulnessTable": "probe._faithfulness",
    "eraser": "probe._faithfulness",
    "EraserTable": "probe._faithfulness",
    "comprehensiveness": "probe._faithfulness",
    "sufficiency": "probe._faithfulness",
    "sanity_check": "probe._sanity",
    "SanityResult": "probe._sanity",
    "cascade_order": "probe._sanity",
    # embedded data
    "make_shapes": "probe._shapes",
    "ShapesBatch": "probe._shapes",
    "SHAPE_CLASSES": "probe._shapes",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'probe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from probe._capture import trace
    from probe._errors import ProbeError, UnsupportedModelError
    from probe._models import list_models, load_model, register_model
    from probe._trace import AttentionStack, Trace
