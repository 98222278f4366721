"""The README's synopsis of the ``probe`` command (the ``text`` block of "The `probe`
command") names every option each subcommand's ``--help`` lists, and no other; the numbers
that ``probe eval --help`` states are the tasks' own."""

from __future__ import annotations

import re
from pathlib import Path

from probe.cli import _build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _parsers() -> dict:
    parser = _build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return dict(sub.choices)


def _synopsis() -> dict[str, set[str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The `probe` command"):]
    start = section.index("```text") + len("```text")
    block = section[start:section.index("```", start)]
    found: dict[str, set[str]] = {}
    command = None
    for line in block.splitlines():
        head = re.match(r"probe (\w+)", line)
        if head:
            command = head.group(1)
            found[command] = set()
        if command is not None:
            found[command] |= set(re.findall(r"--[a-z][a-z-]*", line))
    return found


def test_the_readme_synopsis_lists_every_option_of_every_command():
    synopsis = _synopsis()
    parsers = _parsers()
    assert set(synopsis) == set(parsers)
    for name, sub in parsers.items():
        options = {o for a in sub._actions for o in a.option_strings if o.startswith("--")}
        options.discard("--help")
        assert synopsis[name] == options, (
            name, "only in --help:", sorted(options - synopsis[name]),
            "only in the README:", sorted(synopsis[name] - options))


def test_eval_help_states_the_tasks_numbers():
    from probe.commands._eval import MAX_N, MAX_SEED
    from probe.evaluation import _alignment_eval as alignment
    from probe.evaluation.tasks import DEFAULT_N, MAX_IMAGE_SEED, QUICK_N

    helps = {a.dest: " ".join(a.help.split()) for a in _parsers()["eval"]._actions if a.help}
    quick = (f"--n {QUICK_N['faithfulness']} faithfulness, {QUICK_N['sanity']} sanity, "
             f"{QUICK_N['text']} text, {QUICK_N['coref']} coref, {alignment.QUICK_N} "
             "alignment (an explicit --n wins)")
    assert quick in helps["quick"], helps["quick"]
    n = (f"1..{MAX_N} (default: {DEFAULT_N['faithfulness']} images for faithfulness, "
         f"{DEFAULT_N['sanity']} for sanity, {alignment.DEFAULT_N} alignment pairs, every "
         "shipped pair for text and coref)")
    assert DEFAULT_N["text"] is None and DEFAULT_N["coref"] is None
    assert n in helps["n"], helps["n"]
    assert f"0..{MAX_SEED} (faithfulness, sanity: 0..{MAX_IMAGE_SEED})" in helps["seed"]


def test_the_readme_errors_list_names_the_views_of_the_word_options():
    """"Errors" said ``--word`` and ``--occurrence`` are refused outside ``coref``, but
    ``links`` takes both (to highlight a word): the sentence names the views that read them."""
    from probe.commands.render._args import OPTION_VIEWS

    text = " ".join(README.read_text(encoding="utf-8").split())
    assert OPTION_VIEWS["--word"] == OPTION_VIEWS["--occurrence"] == ("coref", "links")
    assert OPTION_VIEWS["--candidate"] == ("coref",)
    assert ("(`--word` and `--occurrence` outside `coref` and `links`, `--candidate` outside "
            "`coref`," in text)
