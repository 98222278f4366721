"""Progress bars: on by default for anything slow, silenced by ``--quiet``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["library_bars_off", "silence_library_bars", "silence_progress"]


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


@contextlib.contextmanager
def library_bars_off(quiet: bool = True) -> Iterator[None]:
    """transformers' and huggingface_hub's progress bars off for the block (transformers'
    "Loading weights" bar of every ``from_pretrained``), both process-wide switches put back
    as they were on exit, also when the block raises; ``quiet=False`` or
    ``HF_HUB_DISABLE_PROGRESS_BARS=0`` in the environment (the user asked for bars) leave
    them alone.

    transformers is not imported here: when it is not imported yet, only the hub's switch is
    turned off (transformers reads it when it is imported), and should the block import it,
    its switch is set on exit to what that import would have read.
    """
    import importlib
    import sys
    import warnings

    if not quiet:
        yield
        return
    hub = importlib.import_module("huggingface_hub.utils.tqdm")
    if hub.HF_HUB_DISABLE_PROGRESS_BARS is False:  # =0 in the environment: bars asked for
        yield
        return
    hub_states = dict(hub.progress_bar_states)
    hub_bars = not hub.are_progress_bars_disabled()
    hf = sys.modules.get("transformers.utils.logging")
    bars = hf.is_progress_bar_enabled() if hf is not None else hub_bars
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hf is not None:
            hf.disable_progress_bar()  # the hub's switch too
        else:
            hub.disable_progress_bars()
    try:
        yield
    finally:
        hf = sys.modules.get("transformers.utils.logging")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if hf is not None:
                (hf.enable_progress_bar if bars else hf.disable_progress_bar)()
        hub.progress_bar_states.clear()
        hub.progress_bar_states.update(hub_states)
