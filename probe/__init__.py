"""probe: attention interpretability and visualization for PyTorch transformers.

Public names are imported lazily (PEP 562), so ``import probe`` and ``probe --help`` do not
import torch, transformers, timm, captum or matplotlib.
"""

from __future__ import annotations

import importlib
from types import FunctionType
from typing import TYPE_CHECKING, Any

from probe._version import __version__

# public name -> private module that defines it
_LAZY: dict[str, str] = {
    # capture
    "Trace": "probe.capture._trace",
    "AttentionStack": "probe.capture._trace",
    "ModifiedTraceError": "probe.capture._guard",
    "ProbeError": "probe._errors",
    "UnsupportedModelError": "probe._errors",
    "trace": "probe.capture._capture",
    "trace_gates": "probe.capture._gate_capture",
    "GateTrace": "probe.capture._gates",
    "Gate": "probe.capture._gates",
    "generate": "probe.capture._generate",
    "GenerationTrace": "probe.capture._generation_trace",
    "ModelAdapter": "probe.capture.adapters._base",
    "Prepared": "probe.capture.adapters._base",
    "VisionGeometry": "probe.capture.adapters._base",
    "adapter_for": "probe.capture.adapters",
    "list_adapters": "probe.capture.adapters",
    "register_adapter": "probe.capture.adapters._base",
    "unregister_adapter": "probe.capture.adapters._base",
    "load_model": "probe.models._registry",
    "list_models": "probe.models._registry",
    "register_model": "probe.models._registry",
    "LoadedModel": "probe.models._registry",
    # attention analyzers
    "rollout": "probe.analysis._rollout",
    "rollout_step": "probe.analysis._rollout",
    "attention_flow": "probe.analysis._flow",
    "head_stats": "probe.analysis._headstats",
    "HeadStats": "probe.analysis._headstats",
    "relevance": "probe.analysis._relevance",
    "relevance_from_gradients": "probe.analysis._relevance",
    "register_head_fusion": "probe.analysis._fusion",
    "unregister_head_fusion": "probe.analysis._fusion",
    "fuse_heads": "probe.analysis._fusion",
    "list_head_fusions": "probe.analysis._fusion",
    "coref": "probe.analysis._coref",
    "CorefLink": "probe.analysis._coref",
    "CorefLinks": "probe.analysis._coref",
    "Antecedents": "probe.analysis._coref",
    "word_attention": "probe.analysis._coref",
    "best_antecedents": "probe.analysis._coref",
    "group_words": "probe.analysis._word_groups",
    "alignment": "probe.analysis._alignment",
    "Alignment": "probe.analysis._alignment",
    "hard_alignment": "probe.analysis._alignment",
    "alignment_error_rate": "probe.analysis._alignment",
    "corpus_aer": "probe.analysis._alignment",
    "random_alignment": "probe.analysis._alignment",
    "gradient_alignment": "probe.attribution._alignment_grad",
    "make_translation_pairs": "probe.models._translation",
    "patch_maps": "probe.analysis._patches",
    "to_grid": "probe.analysis._patches",
    "upsample": "probe.analysis._patches",
    "rollout_map": "probe.analysis._patches",
    "token_patch_maps": "probe.analysis._image_text",
    "token_prefix_share": "probe.analysis._image_text",
    "relevance_map": "probe.analysis._patches",
    "query_point_map": "probe.analysis._gates",
    # windowed attention (Swin)
    "WindowLayout": "probe.analysis._windows",
    "WindowHeadStats": "probe.analysis._windows",
    "windows_to_image": "probe.analysis._windows",
    "window_query_map": "probe.analysis._windows",
    "window_head_stats": "probe.analysis._windows",
    "WindowBlock": "probe.capture._windows",
    # attribution registry
    "Attribution": "probe.attribution._registry",
    "MethodContext": "probe.attribution._registry",
    "attribute": "probe.attribution._registry",
    "attribute_batches": "probe.attribution._batches",
    "faithfulness_batches": "probe.evaluation._batches",
    "compare_batches": "probe.evaluation._compare_batches",
    "list_methods": "probe.attribution._registry",
    "register_method": "probe.attribution._registry",
    "unregister_method": "probe.attribution._registry",
    "method_spec": "probe.attribution._registry",
    "MethodOption": "probe.attribution._registry",
    "MethodSpec": "probe.attribution._registry",
    "gradient_relevance": "probe.attribution._attention",
    "integrated_gradients": "probe.attribution._gradient",
    "IntegratedGradientsResult": "probe.attribution._gradient",
    "completeness": "probe.attribution._gradient",
    "check_completeness": "probe.attribution._gradient",
    "resolve_target": "probe.attribution._targets",
    "class_logit": "probe.attribution._targets",
    "mean_pooled_embedding": "probe.attribution._targets",
    "similarity_target": "probe.attribution._targets",
    "SimilarityTarget": "probe.attribution._targets",
    "load_image": "probe.models._images",
    # agreement, faithfulness, sanity
    "spearman": "probe.evaluation._agreement",
    "kendall": "probe.evaluation._agreement",
    "topk_overlap": "probe.evaluation._agreement",
    "compare": "probe.evaluation._agreement",
    "AgreementTable": "probe.evaluation._agreement",
    "deletion_curve": "probe.evaluation._curves",
    "insertion_curve": "probe.evaluation._curves",
    "perturbed_input": "probe.evaluation._curves",
    "Curve": "probe.evaluation._curves",
    "curve_auc": "probe.evaluation._curves_math",
    "faithfulness": "probe.evaluation._faithfulness",
    "FaithfulnessTable": "probe.evaluation._faithfulness",
    "eraser": "probe.evaluation._eraser",
    "EraserTable": "probe.evaluation._eraser",
    "comprehensiveness": "probe.evaluation._eraser",
    "sufficiency": "probe.evaluation._eraser",
    "sanity_check": "probe.evaluation._sanity",
    "SanityResult": "probe.evaluation._sanity",
    "cascade_order": "probe.evaluation._sanity",
    # interactive views
    "show": "probe.commands._show",
    # embedded data
    "make_shapes": "probe.models._shapes",
    "make_scenes": "probe.models._scenes",
    "make_captions": "probe.models._captions",
    "CaptionsBatch": "probe.models._captions",
    "ShapesBatch": "probe.models._shapes",
    "SHAPE_CLASSES": "probe.models._shapes",
    # figures
    "plot": "probe.viewers._plot",
}

__all__ = ["__version__", *sorted(_LAZY)]


#: subpackages reachable as attributes after a plain ``import probe`` (``probe.viewers.X``)
_SUBPACKAGES = ("viewers", "recipes")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"probe.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'probe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if isinstance(value, FunctionType):  # a refused call names the keywords it takes
        from probe._errors import named_call

        value = named_call(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API: ``__all__`` and the public subpackages, not this module's own imports
    (``importlib``, ``Any``) nor the rooms loaded as submodules along the way."""
    return sorted({*__all__, *_SUBPACKAGES})


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from probe.capture._capture import trace
    from probe._errors import ProbeError, UnsupportedModelError
    from probe.models._registry import list_models, load_model, register_model
    from probe.capture._trace import AttentionStack, ModifiedTraceError, Trace
