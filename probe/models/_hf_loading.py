"""Loading a HuggingFace model folder or hub id safely, with one clear line for every problem.

* No remote code ever runs: every ``from_pretrained`` gets ``trust_remote_code=False``, and a
  model whose config (or tokenizer / processor config) has an ``auto_map`` is refused up
  front with a message saying how to use it from Python instead.
* Weights: safetensors are preferred (transformers' default); ``.bin`` pickles are only read
  through ``torch.load(weights_only=True)``, which refuses anything but tensors.
* A folder needs ``config.json``, weights and, for text models, a usable tokenizer (else every
  token would render as ``[UNK]``); the config's architecture must be a model class.
"""

from __future__ import annotations

import glob
import json
import os
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["load_bert", "load_hf"]

_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json", "*.bin.index.json")
_SIDE_CONFIGS = ("tokenizer_config.json", "preprocessor_config.json", "processor_config.json")
_REMOTE = (
    "{what} asks to run its own Python code (auto_map in {file}), which probe never does: the "
    "CLI does not support such models; load it yourself with transformers (trust_remote_code="
    "True if you trust its author) and pass the model to the Python API (probe.trace)"
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise ProbeError(
            f"cannot read {path} ({_first_line(exc)}): fix or re-save the file"
        ) from None
    if not isinstance(data, dict):
        raise ProbeError(f"{path} is not a JSON object: re-save the model with save_pretrained()")
    return data


def check_folder(path: str) -> None:
    """Refuse a local folder without config, weights, or that asks to run its own code."""
    config = os.path.join(path, "config.json")
    if not os.path.isfile(config):
        what = "is empty" if not os.listdir(path) else "has no config.json"
        raise ProbeError(
            f"{path} {what}: pass a folder saved with model.save_pretrained() (config.json, "
            "weights, tokenizer files)"
        )
    for name in ("config.json", *_SIDE_CONFIGS):
        file = os.path.join(path, name)
        if os.path.isfile(file) and "auto_map" in _read_json(file):
            raise ProbeError(_REMOTE.format(what=path, file=name))
    if not any(glob.glob(os.path.join(path, pattern)) for pattern in _WEIGHTS):
        raise ProbeError(
            f"{path} has config.json but no weights (model.safetensors or pytorch_model.bin): "
            "save the model there with model.save_pretrained()"
        )


def _model_class(config: Any, path: str) -> Any:
    import transformers
    from transformers import AutoModel, PreTrainedModel

    for arch in getattr(config, "architectures", None) or []:
        candidate = getattr(transformers, str(arch), None)
        if candidate is None:
            continue
        if not (isinstance(candidate, type) and issubclass(candidate, PreTrainedModel)):
            raise ProbeError(
                f"config.json of {path} names {arch!r} as its architecture, which is not a "
                "transformers model class: set architectures to the model class (e.g. "
                "BertModel) or re-save the model with save_pretrained()"
            )
        return candidate
    return AutoModel


def _tokenizer_or_processor(path: str, local_only: bool, text: bool) -> Any:
    from transformers import AutoImageProcessor, AutoTokenizer

    opts = {"local_files_only": local_only, "trust_remote_code": False}
    if text:
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, **opts)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            tokenizer = None
        if tokenizer is None or not _usable(tokenizer):
            raise ProbeError(
                f"{path} has model weights but no usable tokenizer (tokenizer.json, vocab.txt, "
                "vocab.json + merges.txt, or a SentencePiece model): save it there with "
                "tokenizer.save_pretrained()"
            )
        return tokenizer
    try:
        return AutoImageProcessor.from_pretrained(path, **opts)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _usable(tokenizer: Any) -> bool:
    """A tokenizer with at least a few ordinary tokens besides its special ones."""
    try:
        size = len(tokenizer)
        special = len(set(tokenizer.all_special_ids))
    except (TypeError, AttributeError, ValueError):
        return True
    return size - special >= 2


def load_hf(path: str, local_only: bool) -> tuple[nn.Module, Any]:
    """``(model in eval mode, tokenizer or image processor)`` from a folder or hub id."""
    from transformers import AutoConfig

    if os.path.isdir(path):
        check_folder(path)
    try:
        config = AutoConfig.from_pretrained(
            path, local_files_only=local_only, trust_remote_code=False
        )
    except (OSError, ValueError, KeyError) as exc:
        if not os.path.isdir(path):
            raise  # hub ids: the caller names the network or the id
        raise ProbeError(
            f"no usable HuggingFace config at {path!r} ({_first_line(exc)}): pass a folder "
            "saved with save_pretrained() or a hub id"
        ) from None
    if getattr(config, "auto_map", None):
        raise ProbeError(_REMOTE.format(what=path, file="config.json"))
    cls = _model_class(config, path)
    try:
        model = cls.from_pretrained(path, local_files_only=local_only, trust_remote_code=False)
    except ProbeError:
        raise
    except Exception as exc:  # weight files fail in many ways (shapes, pickles, truncation)
        raise ProbeError(
            f"cannot load the model weights of {path!r} ({type(exc).__name__}: "
            f"{_first_line(exc)}): re-save the model with save_pretrained() (safetensors)"
        ) from None
    text = getattr(model, "main_input_name", "input_ids") != "pixel_values"
    processor = _tokenizer_or_processor(path, local_only, text)
    return model.eval(), processor


def load_bert(path: str) -> tuple[nn.Module, Any]:
    """``(BertModel in eval mode, BertTokenizer)`` from a packaged folder whose classes are
    known (the embedded MiniLM): what :func:`load_hf` returns for it, without the auto
    classes' lookups and the folder checks (``tests/test_startup.py`` compares the two)."""
    from transformers.models.bert.modeling_bert import BertModel
    from transformers.models.bert.tokenization_bert import BertTokenizer

    model = BertModel.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    tokenizer = BertTokenizer.from_pretrained(path, local_files_only=True)
    return model.eval(), tokenizer
