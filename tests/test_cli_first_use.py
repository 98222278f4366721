"""What a first-time user hit on the CLI: repeated options and ``~`` in ``--out``.

- a repeated ``--format``, ``--method`` or ``--candidate`` is refused up front like a repeated
  ``--query`` (``--format png --format png`` used to fail after the model ran with "cannot
  write .../.probe-render-.../x.png (No such file or directory)": the second rename of the same
  staged file; ``compare --method rollout --method rollout`` said "compare needs at least two
  attributions, got 1" after computing);
- ``--out '~/figs'`` (a literal ``~``, as ``--out=~/figs`` reaches probe from bash) is one
  folder: the staging folder was made in ``./~/figs`` but matplotlib's writer expanded the
  same path to ``$HOME/figs``, so the render failed after the work and left an empty ``./~``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from probe.cli import main


def _run(argv: list[str], capsys: Any) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["render", "heads", "--text", "hi", "--layer", "0", "--format", "png", "--format",
          "png"], "--format png"),
        (["render", "compare", "--method", "rollout", "--method", "rollout"], "--method rollout"),
        (["render", "coref", "--text", "The cat saw it.", "--word", "it", "--candidate", "cat",
          "--candidate", "cat"], "--candidate 'cat'"),
    ],
    ids=["format", "method", "candidate"],
)
def test_repeated_option_is_refused_before_the_model_loads(argv, flag, tmp_path, capsys,
                                                           monkeypatch) -> None:
    from probe.models import _registry

    def no_load(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(_registry, "load_model", no_load)
    out = tmp_path / "out"
    rc, stdout, err = _run([*argv, "--out", str(out), "--quiet"], capsys)
    assert rc == 2, err
    assert stdout == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"probe: error: {flag} is given twice"), err
    assert not out.exists()


def test_out_with_a_literal_tilde_is_one_folder(tmp_path, capsys, monkeypatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    rc, stdout, err = _run(["render", "heads", "--text", "hi", "--layer", "0", "--out",
                            "~/figs", "--dpi", "20", "--quiet"], capsys)
    assert rc == 0, err
    written = stdout.split()
    assert len(written) == 1 and written[0].startswith("~/figs/heads_minilm_L0_hi-")
    assert (work / written[0]).is_file()  # the path printed is the file written
    assert os.listdir(work / "~" / "figs") == [Path(written[0]).name]  # no staging left
    assert not (home / "figs").exists()


def test_readme_example_file_name_is_what_the_cli_writes(tmp_path, capsys) -> None:
    """The README's example name (``coref_minilm_it_the-animal-didn-HASH.png``) went stale
    each time an option was added, since every option, also at its default, was hashed."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    named = re.search(r"`(coref_minilm_it_the-animal-didn-[0-9a-f]{8}\.png)`", readme)
    assert named is not None
    rc, stdout, err = _run(["render", "coref", "--text", "The animal didn't cross the street "
                            "because it was too tired.", "--word", "it", "--out",
                            str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    assert [Path(p).name for p in stdout.split("\n") if p] == [named.group(1)]


def test_an_option_at_its_default_does_not_change_the_file_name(monkeypatch) -> None:
    import dataclasses

    from probe.commands.render import _args, _session

    def digest(args_type) -> str:
        session = _session.Session(args=args_type(view="head", text="hi"), model=None,
                                   processor=None, model_name="minilm", modality="text")
        return _session._input_digest(session)

    before = digest(_args.RenderArgs)
    extended = dataclasses.make_dataclass(
        "RenderArgs", [("new_option", int, dataclasses.field(default=7))],
        bases=(_args.RenderArgs,), frozen=True)
    assert digest(extended) == before
    changed = digest(lambda **kw: extended(**kw, new_option=8))
    assert changed != before


def test_every_option_of_every_command_has_help() -> None:
    """``probe bench --help`` listed ``--repeats REPEATS`` with no word on what it does, and
    ``--threads`` without its documented 0 (torch's default)."""
    import argparse

    from probe.cli import _build_parser

    parser = _build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    bare = [f"{name} {'/'.join(action.option_strings)}"
            for name, sub in commands.choices.items() for action in sub._actions
            if action.option_strings and not action.help]
    assert bare == []
    bench = commands.choices["bench"].format_help()
    assert "0: torch's default" in " ".join(bench.split())


def test_words_the_model_reads_as_unknown_are_noted_after_success(tmp_path, capsys) -> None:
    """toy-mt's vocabulary has no capitals or punctuation: "A ... today." reached the model as
    ``<unk>`` while the alignment figure labels the words as typed, without a word about it."""
    rc, stdout, err = _run(["render", "alignment", "--text",
                            "A huge tree greets a fire truck today.", "--out", str(tmp_path),
                            "--dpi", "20", "--quiet"], capsys)
    assert rc == 0, err
    assert len(stdout.split()) == 1
    notes = [line for line in err.splitlines() if line.startswith("probe: note:")]
    assert notes == ["probe: note: 2 words of --text are not in toy-mt's vocabulary and reach "
                     "the model as <unk>: 'A', 'today.'"]
    # an error stays the only line: no note before it
    rc, stdout, err = _run(["render", "heads", "--model", "toy-mt", "--text", "A tree",
                            "--layer", "7", "--out", str(tmp_path / "x"), "--quiet"], capsys)
    assert rc == 2 and stdout == ""
    assert err.count("\n") == 1 and err.startswith("probe: error: layer 7"), err
    # words the vocabulary has: no note
    rc, _, err = _run(["render", "heads", "--model", "toy-mt", "--text", "a huge tree",
                       "--layer", "0", "--out", str(tmp_path), "--dpi", "20", "--quiet"], capsys)
    assert rc == 0 and "note" not in err, err


def test_unknown_words_follow_the_tokenizer() -> None:
    from probe.commands.render._notes import unknown_words
    from tests._tokenizers import wordpiece

    tok = wordpiece()
    text = "the zzqqxx cat \u2603 sat"
    expected = [w for w in text.split() if all(
        t == tok.unk_token_id for t in tok(w, add_special_tokens=False)["input_ids"])]
    assert expected  # the case tests something
    assert unknown_words(tok, text) == expected
    assert unknown_words(tok, "") == []


def test_models_methods_lists_every_method_render_accepts(capsys) -> None:
    """``probe render --help`` points at ``probe models --methods`` for --method names, but
    the list left out ``cbam-spatial`` (a method that needs CBAM gates), which the README's
    CNN section uses."""
    from probe.attribution._registry import list_methods

    rc, stdout, _ = _run(["models", "--methods"], capsys)
    assert rc == 0
    listed = [line.split()[0] for line in stdout.split("attribution methods")[1].splitlines()
              if line.startswith("  ") and not line.startswith("   ")]
    expected = set(list_methods("text")) | set(list_methods("vision", needs="gates"))
    assert "cbam-spatial" in expected
    assert set(listed) == expected
    assert "needs: a model with gates" in stdout


def test_heads_html_follows_layer_like_the_figure(tmp_path, capsys) -> None:
    """``probe render heads --layer 2 --format html --format png``: the figure showed layer 2,
    the page every layer (and was named ``heads_minilm_all_...``)."""
    rc, stdout, err = _run(["render", "heads", "--text", "The cat sat.", "--layer", "2",
                            "--format", "html", "--format", "png", "--out", str(tmp_path),
                            "--dpi", "20", "--quiet"], capsys)
    assert rc == 0, err
    names = sorted(Path(p).name for p in stdout.split())
    assert [n.rsplit(".", 1)[1] for n in names] == ["html", "png"]
    assert names[0].rsplit(".", 1)[0] == names[1].rsplit(".", 1)[0]  # one stem: heads_..._L2_
    assert "_L2_" in names[0]
    page = (tmp_path / names[0]).read_text(encoding="utf-8")
    assert "1 layer x 12 heads, 6 query x 6 key tokens" in page


def test_stack_heads_html_follows_layer_like_the_figure(tmp_path, capsys) -> None:
    """The same for ``--stack cross --layer 1``: the page showed both cross layers."""
    rc, stdout, err = _run(["render", "heads", "--model", "toy-mt", "--text", "a huge tree",
                            "--stack", "cross", "--layer", "1", "--format", "html", "--format",
                            "png", "--out", str(tmp_path), "--dpi", "20", "--quiet"], capsys)
    assert rc == 0, err
    names = sorted(Path(p).name for p in stdout.split())
    assert all("_cross_L1_" in n for n in names) and len(names) == 2, names
    page = (tmp_path / names[0]).read_text(encoding="utf-8")
    assert "1 layer x 4 heads" in page


@pytest.mark.parametrize(("view", "extra", "stem"), [
    ("head", ["--head", "3"], "_L5H3_"),
    ("head", [], "_L5H0_"),  # the figure's default head
    ("links", ["--layer", "2", "--head", "3"], "_L2H3_"),
], ids=["head-3", "head-default", "links-head-3"])
def test_one_head_html_follows_head_like_the_figure(view, extra, stem, tmp_path, capsys):
    """``probe render head --head 3 --format html``: the figure drew head 3, the page every
    head (``--head`` was dropped and the page named ``..._L5_...``)."""
    import json
    import re

    rc, stdout, err = _run(["render", view, "--text", "The cat sat.", *extra, "--format",
                            "html", "--format", "png", "--out", str(tmp_path), "--dpi", "20",
                            "--quiet"], capsys)
    assert rc == 0, err
    names = sorted(Path(p).name for p in stdout.split())
    assert [n.rsplit(".", 1)[1] for n in names] == ["html", "png"]
    assert names[0].rsplit(".", 1)[0] == names[1].rsplit(".", 1)[0] and stem in names[0], names
    page = (tmp_path / names[0]).read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', page,
                                re.S).group(1))
    assert data["heads"] == [stem.split("H")[1].rstrip("_")]
    assert data["subtitle"].endswith("6 layers x 1 head")
