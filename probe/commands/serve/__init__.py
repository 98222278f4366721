"""``probe serve``: a warm fork-server for ``probe render`` (Linux).

``_protocol.py`` what client and server share (socket path, fingerprint, framing),
``_client.py`` the client the ``probe`` console script calls before importing anything heavy,
``_server.py`` the server, its supervisors and workers, ``_command.py`` the command line.
"""

from __future__ import annotations

from probe.commands.serve._client import served
from probe.commands.serve._command import add_parser, run

__all__ = ["add_parser", "run", "served"]
