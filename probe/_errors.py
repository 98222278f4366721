"""Exceptions raised by probe.

Every error a user can trigger with bad input is a :class:`ProbeError` (a ``ValueError``)
whose message is one line naming the problem and the fix. The CLI turns it into that line on
stderr and exit code 2.
"""

from __future__ import annotations

__all__ = ["ProbeError", "UnsupportedModelError"]


class ProbeError(ValueError):
    """Bad input to probe: the message names the problem and the fix."""


class UnsupportedModelError(ProbeError):
    """The model has no attention modules probe knows how to capture."""
