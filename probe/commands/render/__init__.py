"""``probe render``: one view of one input, saved as figure files or interactive HTML.

``_args.py`` the options, ``_session.py`` the loaded model and input (checks, naming),
``_methods.py`` the attributions a view shows, ``_figures.py`` the matplotlib views,
``_html.py`` their HTML forms, ``_command.py`` :func:`render` and the command line.
"""

from __future__ import annotations

from probe.commands.render._args import RenderArgs
from probe.commands.render._command import add_parser, render, run
from probe.commands.render._figures import VIEWS
from probe.commands.render._session import Session

__all__ = ["RenderArgs", "Session", "VIEWS", "add_parser", "render", "run"]
