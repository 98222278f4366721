"""Odd command-line values nobody tried before: each is one line on stderr, exit code 2, no
traceback, no file, and it comes before any work (no model loads, no eval runs).

Found by an attack on the error promise (``--out -``, ``--json -``, a huge ``--n``, ``nan``
as a method option, blank ``--model`` / ``--socket``, a file in the way of ``probe bench
--json``, a UTF-16 ``--text-file``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

import probe
from probe.cli import main


def _one_line_exit_2(argv: list[str], capsys: Any, pattern: str) -> str:
    start = time.process_time()
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), lines[0]
    assert time.process_time() - start < 20, "the error came after work, not before it"
    return lines[0]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("argv, pattern", [
    (["render", "head", "--text", "The cat sat.", "--out", "-", "--quiet"],
     r"--out - .*not standard output.*\./-"),
    (["eval", "faithfulness", "--quick", "--json", "-"],
     r"--json - .*not standard output.*\./-"),
    (["eval", "alignment", "--quick", "--json", "-"],
     r"--json - .*not standard output.*\./-"),
    (["bench", "--quick", "--part", "html", "--json", "-"],
     r"--json - .*not standard output.*\./-"),
], ids=["render-out", "eval-json", "eval-alignment-json", "bench-json"])
def test_dash_is_not_taken_for_a_file_named_dash(argv, pattern, tmp_path, capsys, monkeypatch):
    """``-`` reads as standard output to a shell user; probe writes files, so it is refused
    (``./-`` still names a file or folder called ``-``) and nothing appears in the cwd."""
    monkeypatch.chdir(tmp_path)
    _one_line_exit_2(argv, capsys, pattern)
    assert _listing(tmp_path) == []


def test_a_folder_named_dash_is_still_possible(tmp_path, monkeypatch):
    from probe._report import check_output_dir, check_output_file

    monkeypatch.chdir(tmp_path)
    check_output_dir("./-")
    check_output_file("./-")
    with pytest.raises(probe.ProbeError, match=r"--out - .*\./-"):
        check_output_dir("-")


@pytest.mark.parametrize("task", ["faithfulness", "sanity", "alignment"])
def test_eval_n_beyond_what_memory_holds_is_refused(task, capsys):
    """``--n 99999999999`` was an internal error (torch failed to allocate 800 GB); the
    alignment eval names its 500 pairs, the tighter bound."""
    bound = (r"the 500 held-out pairs of the toy language pair: use --n 1\.\.500"
             if task == "alignment" else
             r"the 100000 inputs an eval holds in memory: use --n 1\.\.100000")
    _one_line_exit_2(["eval", task, "--n", str(10**11)], capsys,
                     rf"--n 100000000000 is more than {bound}")


def test_eval_nan_method_option_is_refused_before_the_eval(capsys):
    """``rollout.discard_ratio=nan`` passed the declared range (NaN compares False) and the
    eval ran for minutes."""
    _one_line_exit_2(["eval", "faithfulness", "--quick", "--option",
                      "rollout.discard_ratio=nan"], capsys,
                     r"option 'discard_ratio' of method 'rollout' must be a number, got nan")
    from probe.attribution._registry import method_options

    with pytest.raises(probe.ProbeError, match="must be a number, got nan: pass e.g. 0.0"):
        method_options("rollout", {"discard_ratio": float("nan")})


@pytest.mark.parametrize("task", ["faithfulness", "text", "alignment"])
@pytest.mark.parametrize("model", ["", "  "])
def test_eval_blank_model_is_refused(task, model, capsys):
    """``probe eval ... --model ""`` ran the default model (``probe render`` refuses it)."""
    _one_line_exit_2(["eval", task, "--quick", "--model", model], capsys,
                     r"--model is empty: drop it for the task.s default model")


def test_serve_blank_socket_is_refused(capsys):
    """``probe serve --socket ""`` served on the default socket instead."""
    _one_line_exit_2(["serve", "--socket", ""], capsys, r"--socket is empty")


def test_bench_json_under_a_file_names_the_file(tmp_path, capsys):
    """Was 'the folder ... does not exist' for a path whose folder is a file."""
    (tmp_path / "a-file").write_text("x")
    line = _one_line_exit_2(["bench", "--quick", "--part", "html", "--json",
                             str(tmp_path / "a-file" / "x.json")], capsys, r"a file is in the way")
    assert "does not exist" not in line


def test_bench_json_in_a_missing_folder_says_what_to_do(tmp_path, capsys):
    _one_line_exit_2(["bench", "--quick", "--part", "html", "--json",
                      str(tmp_path / "no" / "x.json")], capsys, r"does not exist: create it")


@pytest.mark.parametrize("encoding, name", [
    ("utf-16", "UTF-16"), ("utf-16-le", "UTF-16"), ("utf-32", "UTF-32"),
])
def test_text_file_in_utf16_is_named(encoding, name, tmp_path, capsys):
    """A UTF-16 file (Windows Notepad's 'Unicode') was 'not UTF-8 (byte 0)'."""
    path = tmp_path / "s.txt"
    text = "The cat sat.\n"
    path.write_bytes(("\ufeff" + text).encode(encoding) if encoding == "utf-16-le"
                     else text.encode(encoding))
    _one_line_exit_2(["render", "head", "--text-file", str(path), "--out",
                      str(tmp_path / "o"), "--quiet"], capsys,
                     rf"is {name} \(it starts with a {name} byte order mark\): save it as UTF-8")
    assert not (tmp_path / "o").exists()


def test_coref_data_in_utf16_is_named_and_a_utf8_bom_is_read(tmp_path, capsys):
    line = "The trophy didn't fit in the suitcase because it was too big.|it|trophy|suitcase\n"
    pair = line + line.replace("big", "small").replace("|trophy|suitcase", "|suitcase|trophy")
    (tmp_path / "u16.txt").write_bytes(pair.encode("utf-16"))
    _one_line_exit_2(["eval", "coref", "--data", str(tmp_path / "u16.txt")], capsys,
                     r"u16\.txt is UTF-16 \(it starts with a UTF-16 byte order mark\): save it "
                     r"as UTF-8")
    (tmp_path / "bom.txt").write_bytes(pair.encode("utf-8-sig"))
    from probe.evaluation.tasks import load_coref_pairs

    items = load_coref_pairs(str(tmp_path / "bom.txt"))[0]["items"]
    assert items[0]["sentence"].startswith("The trophy")


def _probe_env(tmp_path: Path, *argv: str, **env: str) -> Any:
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "probe.cli", *argv], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **env})


@pytest.mark.parametrize("command", ["render", "serve"])
def test_bad_mplbackend_is_one_line(command, tmp_path):
    """``MPLBACKEND=nonsense`` made matplotlib's import raise ValueError: an internal error
    (exit 1) after the model had loaded."""
    argv = (["render", "head", "--text", "The cat sat.", "--out", "o", "--quiet"]
            if command == "render" else ["serve", "--socket", str(tmp_path / "s.sock")])
    proc = _probe_env(tmp_path, *argv, MPLBACKEND="nonsense",
                      PROBE_SERVE_SOCKET=str(tmp_path / "none.sock"))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert lines == ["probe: error: MPLBACKEND='nonsense' is not a matplotlib backend: unset it "
                     "or set MPLBACKEND=Agg (probe saves files and needs no display)"], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cnn_faithfulness_eval_takes_batch_size_and_reports_its_work(tmp_path, capsys):
    """On a CNN, ``probe eval faithfulness`` ignored ``--batch-size`` and, never sharding its
    batches, printed 'process(es) 0 of 1 got no work' on every run (torchrun processes would
    each have run all of it)."""
    import json

    import torch

    from probe.commands._eval import EvalArgs, run_eval
    from probe.models._cnn_shapes import build_cnn_shapes

    torch.manual_seed(0)
    out = tmp_path / "r.json"
    rc = run_eval(EvalArgs(task="faithfulness", n=4, batch_size=2, quiet=True, json=str(out),
                           methods=("random", "gradcam")), model=build_cnn_shapes().eval())
    err = capsys.readouterr().err
    assert rc == 0 and "got no work" not in err, err
    result = json.loads(out.read_text())
    assert result["processes"]["items_per_process"] == [2]  # 2 batches of 2 images
    assert result["methods"]["random"]["pointing_game_n"] == 4


@pytest.mark.parametrize("model, family", [("minilm", "an encoder"), ("vit-shapes", "a vision")])
def test_alignment_eval_on_a_model_that_does_not_translate_is_one_line(model, family, capsys):
    """Was a progress bar, then generate's error from inside the first batch."""
    _one_line_exit_2(["eval", "alignment", "--quick", "--model", model], capsys,
                     rf"the alignment eval needs a translation model \(encoder-decoder\), got "
                     rf"{family} model: use --model toy-mt")


@pytest.mark.parametrize("argv, option", [
    (["render", "head", "--text", "The cat sat.", "--quiet", "--out"], "--out"),
    (["eval", "coref", "--json"], "--json"),
    (["bench", "--quick", "--part", "html", "--json"], "--json"),
], ids=["render-out", "eval-json", "bench-json"])
def test_an_output_name_too_long_for_the_file_system(argv, option, tmp_path, capsys):
    """A 300-byte folder or file name was an internal error (OSError ENAMETOOLONG)."""
    long = tmp_path / ("a" * 300) / "x.json"
    _one_line_exit_2([*argv, str(long)], capsys,
                     rf"^probe: error: {option} is too long for the file system \(File name too "
                     r"long: 'a{20}\.\.\.' is 300 bytes\); choose a shorter name$")
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("text", ["   ", "\t\n", "\u3000"],
                         ids=["spaces", "tab-newline", "ideographic"])
def test_blank_text_is_named_before_the_model_loads(text, tmp_path, capsys):
    """Was 'empty text: pass a non-empty string' (not naming --text) after the model loaded."""
    code = ("import sys; from probe.cli import main; rc = main(sys.argv[1:]); "
            "print(rc, 'torch' in sys.modules)")
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code, "render", "head", "--text", text, "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.stdout.split() == ["2", "False"], proc.stderr
    assert proc.stderr.strip() == 'probe: error: --text is blank: pass a sentence, e.g. --text ' \
                                  '"The cat sat."'


def test_detr_query_named_twice_by_a_negative_index_is_drawn_once():
    """``--query -1 --query 7`` on 8 queries drew query 7 twice (deduplicated before -1 became
    7)."""
    from probe.commands._pages import pick_queries

    assert pick_queries([0.1] * 8, [-1, 7, 0, -8]) == ([7, 0], "chosen queries")


def test_out_as_a_dangling_link_names_the_missing_target(tmp_path, capsys):
    """Was 'cannot create --out ... (File exists)', which did not say why."""
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    _one_line_exit_2(["render", "head", "--text", "The cat sat.", "--quiet", "--out",
                      str(tmp_path / "link")], capsys,
                     r"--out '.*link' is a link to '.*gone', which does not exist: create that "
                     r"folder or pass another output folder")
    assert _listing(tmp_path) == ["link"]


@pytest.mark.parametrize("argv, pattern", [
    (["heads", "--text", "The cat sat.", "--seed", "5"],
     r"--seed picks the generated sample image of an image model; a --text has none: drop "
     r"--seed$"),
    (["saliency", "--image", "IMAGE", "--seed", "5"],
     r"--seed picks the generated sample image, and with --image there is none: drop --seed"),
    (["heads", "--text", "The cat sat.", "--pretrained"],
     r"--pretrained downloads the weights of a --model timm:<name> .*; the default model loads "
     r"its own weights: drop --pretrained$"),
    (["saliency", "--model", "vit-shapes", "--pretrained"],
     r"--pretrained .*; vit-shapes loads its own weights: drop --pretrained$"),
    (["heads", "--text", "The cat sat.", "--format", "html", "--dpi", "300"],
     r"--dpi sets the resolution of png/svg/pdf figures; the HTML page has none: add --format "
     r"png \(or svg, pdf\), or drop --dpi$"),
], ids=["seed-text", "seed-image", "pretrained-minilm", "pretrained-vit-shapes", "dpi-html"])
def test_an_option_nothing_reads_is_refused_before_the_load(argv, pattern, tmp_path, capsys,
                                                           monkeypatch):
    """Each was ignored silently, yet renamed the file (an option off its default is in the
    name's hash): the same figure under another name."""
    from probe.models import _registry

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the model loaded before the options were checked")

    monkeypatch.setattr(_registry, "load_model", refuse)
    image = tmp_path / "red.png"
    from PIL import Image

    Image.new("RGB", (8, 8), (255, 0, 0)).save(image)
    argv = [str(image) if a == "IMAGE" else a for a in argv]
    _one_line_exit_2(["render", *argv, "--out", str(tmp_path / "out"), "--quiet"], capsys,
                     r"^probe: error: " + pattern)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, hint", [
    (["heads", "--layer", "0"], "a shorter --text, or raise --max-values N"),
    (["heads"], "show one layer (--layer L), a shorter --text, or raise --max-values N"),
    (["links", "--layer", "0", "--head", "1"], "a shorter --text, or raise --max-values N"),
], ids=["heads-layer-given", "heads", "links-head-given"])
def test_an_html_budget_refusal_suggests_only_what_is_not_chosen_yet(argv, hint, tmp_path,
                                                                    capsys):
    """``--layer 0 --max-values 10`` was told to "show one layer (--layer L)"."""
    line = _one_line_exit_2(["render", *argv, "--text", "The cat sat.", "--format", "html",
                             "--max-values", "10", "--out", str(tmp_path), "--quiet"], capsys,
                            r"over the interactive view's budget of 10")
    assert line.endswith(": " + hint), line
    assert list(tmp_path.iterdir()) == []


def test_bench_threads_beyond_the_cpus_is_one_line(tmp_path, capsys, monkeypatch):
    """``probe bench --threads 100000`` started threads until memory ran out: an internal
    error (exit 1) after the bench had begun."""
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.chdir(tmp_path)
    _one_line_exit_2(["bench", "--quick", "--part", "analyzers", "--threads", str(cpus + 1),
                      "--quiet"], capsys,
                     rf"^probe: error: --threads {cpus + 1} is more than the {cpus} CPUs this "
                     rf"process may use: use 0\.\.{cpus} \(0: torch's default\)$")
    monkeypatch.setenv("PROBE_BENCH_THREADS", "100000")
    _one_line_exit_2(["bench", "--quick", "--part", "analyzers", "--quiet"], capsys,
                     r"^probe: error: PROBE_BENCH_THREADS 100000 is more than the")
    assert list(tmp_path.iterdir()) == []


def test_flow_on_a_long_text_names_the_command_line_fix(tmp_path, capsys):
    """It said "ask for fewer rows (rows=[...]) or pass max_tokens=32": options of the Python
    API, which the command line does not have."""
    text = " ".join(["word"] * 30)
    line = _one_line_exit_2(["render", "saliency", "--text", text, "--method", "flow", "--out",
                             str(tmp_path), "--quiet"], capsys,
                            r"^probe: error: --method flow \(attention flow\) is exact but slow: "
                            r"the input has 32 real tokens, above its limit of 24: use --method "
                            r"rollout, or a shorter input \(from Python, probe\.attribute\(\.\.\., "
                            r"'flow', max_tokens=32\) lifts the limit\)$")
    assert "rows=" not in line and list(tmp_path.iterdir()) == []


def test_bench_part_twice_and_huge_repeats_are_one_line(tmp_path, capsys, monkeypatch):
    """``--part html --part html`` ran html once, silently; ``--repeats 100000000`` ran as
    asked (days of timing). Both are refused before any work, as render's --format twice."""
    monkeypatch.chdir(tmp_path)
    _one_line_exit_2(["bench", "--quick", "--part", "html", "--part", "analyzers", "--part",
                      "html", "--json", "b.json", "--quiet"], capsys,
                     r"^probe: error: --part html is given twice: pass each part once$")
    _one_line_exit_2(["bench", "--quick", "--part", "html", "--repeats", "100000000",
                      "--json", "b.json", "--quiet"], capsys,
                     r"^probe: error: --repeats 100000000 is more than 100, the most probe "
                     r"bench takes .*: use 1\.\.100$")
    assert list(tmp_path.iterdir()) == []
    from probe.commands.bench._command import BenchArgs
    from probe.commands.bench._settings import make_settings

    assert make_settings(BenchArgs(device="cpu", repeats=100)).repeats == 100  # the limit: taken


def test_a_dangling_image_link_is_named_as_a_link(tmp_path, capsys):
    """It said "image file 'x.png' does not exist" of a path that ls shows (a link)."""
    (tmp_path / "x.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "y.png").symlink_to("x.png")  # a chain: its end is named too
    out = tmp_path / "out"
    _one_line_exit_2(["render", "saliency", "--image", str(tmp_path / "x.png"), "--out",
                      str(out), "--quiet"], capsys,
                     rf"^probe: error: image file '{re.escape(str(tmp_path))}/x\.png' is a "
                     rf"symbolic link to '{re.escape(str(tmp_path))}/gone\.png', which does not "
                     r"exist: fix the link or pass the image file itself$")
    _one_line_exit_2(["render", "saliency", "--image", str(tmp_path / "y.png"), "--out",
                      str(out), "--quiet"], capsys,
                     r"is a symbolic link to 'x\.png' \(and on to '.*/gone\.png'\), which does "
                     r"not exist")
    _one_line_exit_2(["render", "saliency", "--image", str(tmp_path / "none.png"), "--out",
                      str(out), "--quiet"], capsys, r"none\.png' does not exist: check the path$")
    (tmp_path / "real").mkdir()  # a link in a linked folder: no chain to name
    (tmp_path / "real" / "z.png").symlink_to("gone.png")
    (tmp_path / "d").symlink_to(tmp_path / "real")
    _one_line_exit_2(["render", "saliency", "--image", str(tmp_path / "d" / "z.png"), "--out",
                      str(out), "--quiet"], capsys,
                     r"d/z\.png' is a symbolic link to 'gone\.png', which does not exist: fix")
    (tmp_path / "t.txt").symlink_to(tmp_path / "gone.txt")  # --text-file: the same
    _one_line_exit_2(["render", "head", "--text-file", str(tmp_path / "t.txt"), "--out",
                      str(out), "--quiet"], capsys,
                     r"^probe: error: --text-file '.*/t\.txt' is a symbolic link to '.*/gone\.txt'"
                     r", which does not exist: fix the link or pass the text file itself$")
    assert not out.exists()


def test_only_special_tokens_writes_a_lone_combining_mark_as_its_code_point(tmp_path, capsys):
    """The mark was printed raw, drawn on the message's quote: ``'́'``."""
    _one_line_exit_2(["render", "head", "--text", "\u0301 \u0301", "--out", str(tmp_path),
                      "--quiet"], capsys,
                     r"^probe: error: the text '<U\+0301> <U\+0301>' holds only special tokens: "
                     r"pass some words to look at$")
    assert list(tmp_path.iterdir()) == []
