"""Import matplotlib for a command, turning a bad ``MPLBACKEND`` into one line.

matplotlib validates ``$MPLBACKEND`` when it is imported and raises a ``ValueError`` for a name
it does not know, which reached the user as an internal error after the model had loaded.
probe's commands draw on ``Figure`` objects and save files, so any valid backend works; the
variable is the user's to fix, not probe's to override.
"""

from __future__ import annotations

import os

from probe._errors import ProbeError

__all__ = ["import_matplotlib"]


def import_matplotlib() -> None:
    """Import matplotlib (a no-op once imported).

    Raises:
        ProbeError: ``$MPLBACKEND`` names no matplotlib backend (the fix: unset it, or Agg).
    """
    try:
        import matplotlib  # noqa: F401
    except ValueError as exc:
        backend = os.environ.get("MPLBACKEND")
        if backend is None or "backend" not in str(exc):
            raise
        raise ProbeError(
            f"MPLBACKEND={backend!r} is not a matplotlib backend: unset it or set MPLBACKEND=Agg "
            "(probe saves files and needs no display)"
        ) from None
