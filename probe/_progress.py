"""Progress bars: on by default for anything slow, silenced by ``--quiet``."""

from __future__ import annotations

import os

__all__ = ["silence_library_bars", "silence_progress"]


def silence_library_bars() -> None:
    """Turn off transformers' own weight-loading bars (sub-second for probe's models).

    Called by the ``probe`` command only, never by the library: it is process-wide state.
    """
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def silence_progress() -> None:
    """Silence tqdm bars (probe's and transformers' weight loading) for this process."""
    os.environ["TQDM_DISABLE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
