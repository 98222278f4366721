"""The viewers' ``width=`` refusals worded for ``probe render --width``.

A viewer that cannot draw its figure legibly at ``width=`` says so in the Python API's terms
(``width=2 in``, ``use width >= 6.4``, ``the link_view figure``, ``probe.trace(...,
layers=[...])``); the command line names its flags and views instead.
"""

from __future__ import annotations

import re

__all__ = ["cli_width_wording"]

# a viewer's own range check (coref and compare views: at least 3 in)
_RANGE = re.compile(r"^width must be (?:a figure width in inches )?in \[([\d.]+), ([\d.]+)\]"
                    r"(?: inches)?, got (\S+)$")
# the model view's fix: capture fewer layers/heads from Python, or plot one layer
_FEWER = re.compile(r", or show fewer of the .*$")


def cli_width_wording(message: str, view: str, width: str) -> str:
    """``message`` (a viewer's refusal) in the command line's words; ``view`` is the render
    view, ``width`` the ``--width`` value as typed. A message about no width comes back as it
    was."""
    found = _RANGE.match(message)
    if found is not None:
        lo, hi, got = found.groups()
        try:
            wide = float(got) > float(hi)
        except ValueError:  # not a number: no side to name
            return f"--width {width} is not a figure width: use --width {lo}..{hi}"
        side = "too wide" if wide else "too narrow"
        return f"--width {width} is {side} for the {view} view: use --width {lo}..{hi}"
    if "width=" not in message:
        return message
    message = re.sub(r"\bat width=[\d.e+-]+ in\b", f"at --width {width}", message)
    message = re.sub(r"\buse width >= ([\d.]+)", r"use --width \1 or more", message)
    message = re.sub(r"\bthe [a-z]+(?:_[a-z]+)+ figure\b", f"the {view} figure", message)
    message = message.replace("use a wider figure", "use a larger --width")
    if view == "heads":
        message = _FEWER.sub(", or show one layer with --layer L (its heads wrap into rows)",
                             message)
    return message
