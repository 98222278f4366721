"""Plain text from docstrings, for what the command line prints; words with their article."""

from __future__ import annotations

import re

__all__ = ["plain_text", "with_article"]

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_INTERPRETED = re.compile(r"`([^`]+)`")


def plain_text(text: str) -> str:
    """``text`` without reStructuredText markup, on one line.

    ``:func:`probe.coref``` becomes ``probe.coref`` (``~a.b`` becomes ``b``), ````x````
    and ```x``` become ``x``; runs of whitespace become one space.
    """

    def role(match: re.Match[str]) -> str:
        target = match.group(1)
        return target.rsplit(".", 1)[-1] if match.group(0).split("`")[1].startswith("~") else target

    out = _ROLE.sub(role, str(text))
    out = _LITERAL.sub(r"\1", out)
    out = _INTERPRETED.sub(r"\1", out)
    return " ".join(out.split())


def with_article(word: str) -> str:
    """``word`` after ``"a"`` or ``"an"`` by its first letter: ``"an encoder"``, ``"a vision"``."""
    return f"{'an' if word[:1].lower() in 'aeiou' and word[:1] else 'a'} {word}"
