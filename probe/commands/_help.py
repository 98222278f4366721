"""How ``probe ... --help`` lays out its descriptions and epilogs: :class:`HelpFormatter`.

argparse's default formatter joins every line of a description into one paragraph (a list
of views becomes a wall of text); its ``RawDescriptionHelpFormatter`` keeps the lines but
never wraps them (a one-line description runs to 235 columns). This formatter does both:

* a paragraph (lines not indented, blocks separated by a blank line) is wrapped to the
  terminal width;
* an indented block (a list ``  name  summary``, examples) keeps its lines; a line too long
  for the terminal wraps with its continuation under the summary column;
* a line ending in ``:`` (``views:``, ``examples:``) is a heading and stays as it is.
"""

from __future__ import annotations

import argparse
import re
import textwrap

__all__ = ["HelpFormatter"]

#: a list line: indent, a name, two or more spaces, the summary
_LIST_LINE = re.compile(r"^(\s+\S+\s{2,})\S")


def _block(lines: list[str], width: int, indent: str) -> list[str]:
    """One block of a description or epilog, laid out (see the module docstring)."""
    if not lines[0][:1].isspace():  # a paragraph (or a heading: one short line)
        return textwrap.wrap(" ".join(line.strip() for line in lines), width,
                             initial_indent=indent, subsequent_indent=indent,
                             break_on_hyphens=False) or [indent]
    out: list[str] = []
    for line in lines:
        lead = _LIST_LINE.match(line)
        hang = " " * (len(lead.group(1)) if lead else len(line) - len(line.lstrip()) + 4)
        out += textwrap.wrap(line.rstrip(), width, initial_indent=indent,
                             subsequent_indent=indent + hang, break_on_hyphens=False,
                             drop_whitespace=True) or [indent]
    return out


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Paragraphs wrapped to the terminal, indented lists and examples kept line by line
    (long lines wrapped under their summary column), headings kept."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        for part in re.split(r"\n[ \t]*\n", text.strip("\n")):
            if lines:
                lines.append("")
            body = part.split("\n")
            if len(body) > 1 and body[0].rstrip().endswith(":") and body[1][:1].isspace():
                lines.append(indent + body[0].rstrip())  # "views:" heading its list
                body = body[1:]
            lines += _block(body, width, indent)
        return "\n".join(lines)
