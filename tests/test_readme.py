"""The README runs verbatim: every ```python block in a fresh interpreter, every ``probe``
command of a ```bash block, outputs redirected into a temporary folder.

Conventions (documented in the README's Development section):

* a ```python block containing the line ``# not run by tests: REASON`` is only compiled (for
  code that needs something the test machine lacks: a GPU, downloaded weights, your data);
* a ``probe ...`` line of a ```bash block ending in ``# not run by tests: REASON`` is only
  parsed by the ``probe`` argument parser (long benchmarks and full evaluations);
* ``--out DIR`` and ``--json FILE`` are rewritten into the temporary folder, which is also
  the working directory, so no command writes into the repository.

The default run compiles every block, parses every command and runs the blocks and commands
that load no model or only MiniLM and take a few seconds (:data:`FAST_BLOCKS`); the whole
README runs under ``-m slow``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP_MARK = "# not run by tests:"
BLOCK_TIMEOUT_S = 300


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    code: str

    @property
    def name(self) -> str:
        return f"README.md:{self.line}"

    @property
    def skipped(self) -> bool:
        return any(line.strip().startswith(SKIP_MARK) for line in self.code.splitlines())


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of the README, with its language and line."""
    text = README.read_text(encoding="utf-8") if text is None else text
    blocks, lang, start, body = [], None, 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        fence = re.match(r"^\s*```(\S*)\s*$", line)
        if fence and lang is None:
            lang, start, body = fence.group(1) or "text", number, []
        elif fence and lang is not None and not fence.group(1):
            blocks.append(Block(lang, start, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
    return blocks


@dataclass(frozen=True)
class Command:
    line: int
    text: str  # as written (continuations joined)
    argv: tuple[str, ...]  # without the leading "probe"
    skip_reason: str | None


def readme_commands(blocks: list[Block] | None = None) -> list[Command]:
    """The ``probe ...`` lines of the ```bash blocks."""
    out = []
    for block in blocks if blocks is not None else readme_blocks():
        if block.lang not in ("bash", "sh", "shell", "console"):
            continue
        lines = block.code.splitlines()
        i = 0
        while i < len(lines):
            number, line = block.line + 1 + i, lines[i]
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            i += 1
            stripped = line.strip()
            if not stripped.startswith("probe "):
                continue
            reason = None
            if SKIP_MARK in stripped:
                reason = stripped.split(SKIP_MARK, 1)[1].strip()
            words = shlex.split(stripped, comments=True)
            out.append(Command(number, stripped, tuple(words[1:]), reason))
    return out


def redirect(argv: tuple[str, ...], tmp: Path) -> list[str]:
    """``--out``/``--json`` values moved into ``tmp`` (file names kept)."""
    out = list(argv)
    for i, word in enumerate(out[:-1]):
        if word == "--out":
            out[i + 1] = str(tmp / "out")
        elif word == "--json":
            out[i + 1] = str(tmp / Path(out[i + 1]).name)
    return out


def _env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_python(block: Block, tmp: Path) -> subprocess.CompletedProcess:
    script = tmp / f"block_{block.line}.py"
    script.write_text(block.code, encoding="utf-8")
    return subprocess.run([sys.executable, str(script)], cwd=tmp, env=_env(), text=True,
                          capture_output=True, timeout=BLOCK_TIMEOUT_S)


def run_command(command: Command, tmp: Path) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "probe.cli", *redirect(command.argv, tmp)]
    return subprocess.run(argv, cwd=tmp, env=_env(), text=True, capture_output=True,
                          timeout=BLOCK_TIMEOUT_S)


PY_BLOCKS = [b for b in readme_blocks() if b.lang == "python"]
COMMANDS = readme_commands()

#: Blocks and commands the default run executes: each a few seconds (MiniLM or nothing).
FAST_BLOCKS = ("Capture", "probe render coref ")


def heading_of(line: int, text: str | None = None) -> str:
    """The Markdown heading a README line sits under (fenced blocks skipped)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    heading, fenced = "", False
    for line_text in text.splitlines()[: line - 1]:
        if re.match(r"^\s*```(\S*)\s*$", line_text):  # a fence line, as in blocks()
            fenced = not fenced
        elif not fenced and line_text.startswith("#"):
            heading = line_text.lstrip("#").strip()
    return heading


def _is_fast(item: Block | Command) -> bool:
    if isinstance(item, Command):
        return any(item.text.startswith(f) for f in FAST_BLOCKS if f.startswith("probe"))
    return heading_of(item.line) in FAST_BLOCKS


# --------------------------------------------------------------------------- the harness
def test_extraction_and_markers():
    text = (
        "# T\n```python\nx = 1\n```\n\n```python\n# not run by tests: needs a GPU\ncuda()\n```\n"
        "```bash\nprobe eval coref --json benchmarks/x.json   # 10 s\n"
        "probe bench --json a.json  # not run by tests: ~9 min\n"
        "probe render heads \\\n  --out docs/figures\npip install -e .\n```\n"
    )
    blocks = readme_blocks(text)
    assert [(b.lang, b.line, b.skipped) for b in blocks] == [
        ("python", 2, False), ("python", 6, True), ("bash", 10, False)]
    cmds = readme_commands(blocks)
    assert [c.argv[:2] for c in cmds] == [("eval", "coref"), ("bench", "--json"),
                                           ("render", "heads")]
    assert [c.skip_reason for c in cmds] == [None, "~9 min", None]
    tmp = Path("/tmp/x")
    assert redirect(cmds[0].argv, tmp)[-1] == "/tmp/x/x.json"
    assert redirect(cmds[2].argv, tmp) == ["render", "heads", "--out", "/tmp/x/out"]


def test_readme_has_blocks_and_commands():
    assert len(PY_BLOCKS) >= 10 and len(COMMANDS) >= 5
    # the fast subset exists (a renamed heading or command must be renamed here too)
    assert [heading_of(b.line) for b in PY_BLOCKS if _is_fast(b)] == ["Capture"]
    assert any(_is_fast(c) for c in COMMANDS)
    assert heading_of(5, "# A\n```python\n# not a heading\n```\nx\n") == "A"


def test_every_python_block_compiles():
    for block in PY_BLOCKS:
        compile(block.code, block.name, "exec")  # a SyntaxError names the block


def test_every_command_parses_and_skips_are_explained():
    from probe.cli import _build_parser as build_parser

    parser = build_parser()
    for command in COMMANDS:
        try:
            parser.parse_args(list(command.argv))
        except SystemExit as exc:  # argparse exits on a bad flag or value
            pytest.fail(f"README.md:{command.line}: {command.text!r} does not parse ({exc})")
        if command.skip_reason is not None:
            assert command.skip_reason, f"README.md:{command.line}: say why it is not run"


def test_no_command_writes_into_the_repository_by_default():
    """The examples write into probe-out/ (or another untracked folder), never over the
    committed benchmarks or figures."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    files = set(tracked.stdout.split())
    for command in COMMANDS:
        argv = list(command.argv)
        for flag in ("--out", "--json"):
            if flag in argv:
                target = argv[argv.index(flag) + 1]
                assert not any(f == target or f.startswith(target.rstrip("/") + "/")
                               for f in files), f"README.md:{command.line} writes into {target}"


def _check(result: subprocess.CompletedProcess, name: str) -> None:
    assert result.returncode == 0, f"{name} failed:\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("block", [b for b in PY_BLOCKS if _is_fast(b) and not b.skipped],
                         ids=lambda b: b.name)
def test_fast_python_blocks_run(block, tmp_path):
    _check(run_python(block, tmp_path), block.name)


@pytest.mark.parametrize("command", [c for c in COMMANDS if _is_fast(c) and not c.skip_reason],
                         ids=lambda c: f"README.md:{c.line}")
def test_fast_commands_run(command, tmp_path):
    _check(run_command(command, tmp_path), f"README.md:{command.line}")
    written = list(tmp_path.glob("out/*")) + list(tmp_path.glob("probe-out/*"))
    assert written, "the command wrote nothing into the temporary folder"


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in PY_BLOCKS if not b.skipped], ids=lambda b: b.name)
def test_every_python_block_runs(block, tmp_path):
    _check(run_python(block, tmp_path), block.name)


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in COMMANDS if not c.skip_reason],
                         ids=lambda c: f"README.md:{c.line}")
def test_every_command_runs(command, tmp_path):
    _check(run_command(command, tmp_path), f"README.md:{command.line}")
