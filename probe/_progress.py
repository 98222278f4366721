"""Progress bars: on by default for anything slow, silenced by ``--quiet``."""

from __future__ import annotations

import os

__all__ = ["silence_library_bars", "silence_progress"]


def silence_library_bars() -> None:
    """Turn off transformers' own weight-loading bars (sub-second for probe's models) and
    huggingface_hub's, without importing transformers (a second of start-up that image
    models never need).

    transformers reads huggingface_hub's switch when it is imported, so switching that off
    is enough until then; once transformers is imported (or when the environment keeps the
    hub's bars on: ``HF_HUB_DISABLE_PROGRESS_BARS=0``), transformers' own switch is flipped.
    Called by the ``probe`` command only, never by the library: it is process-wide state.
    """
    import sys

    if "transformers.utils.logging" not in sys.modules:
        try:
            from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars
        except ImportError:  # pragma: no cover - a dependency of transformers and timm
            return
        disable_progress_bars()
        if are_progress_bars_disabled():
            return
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def silence_progress() -> None:
    """Silence tqdm bars (probe's, huggingface_hub's and transformers' weight loading) and
    transformers' warnings below errors for this process, without importing transformers
    (its verbosity is then read from ``TRANSFORMERS_VERBOSITY`` when it is imported)."""
    import sys

    os.environ["TQDM_DISABLE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    silence_library_bars()
    hf_logging = sys.modules.get("transformers.utils.logging")
    if hf_logging is None:
        os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    else:
        hf_logging.set_verbosity_error()
