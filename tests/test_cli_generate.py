"""``probe render`` wiring of generation, encoder-decoder stacks, alignment and CNN gates:
in-process ``probe.cli.main``, files written and named by ``_stem``, bad combinations one
line + exit 2 with nothing written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from PIL import Image

from probe.cli import main

SRC = "a huge tree greets a fire truck today"
HASHED = re.compile(r"_[^_]+-[0-9a-f]{8}\.png$")


def _run(argv, capsys):
    rc = main(["render", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _files(out: str) -> list[Path]:
    paths = [Path(line) for line in out.strip().splitlines() if line.strip()]
    assert paths
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000, p
        assert HASHED.search(p.name), p.name
        with Image.open(p) as img:
            assert img.size[0] > 300 and img.size[1] > 200
    return paths


@pytest.mark.parametrize(
    ("argv", "prefix"),
    [
        (["heads", "--stack", "cross"], "heads_toy-mt_cross_all_"),
        (["head", "--stack", "decoder", "--layer", "1", "--head", "2"],
         "head_toy-mt_decoder_L1H2_"),
        (["links", "--stack", "cross", "--layer", "0"], "links_toy-mt_cross_L0_"),
        (["heads", "--stack", "encoder", "--layer", "-1"], "heads_toy-mt_encoder_L1_"),
    ],
)
def test_generate_stacks_on_toy_mt(tmp_path, capsys, argv, prefix):
    out = tmp_path / "o"
    rc, stdout, stderr = _run(
        [*argv[:1], "--model", "toy-mt", "--text", SRC, "--generate", "12", *argv[1:],
         "--out", str(out), "--quiet"], capsys,
    )
    assert rc == 0, stderr
    [path] = _files(stdout)
    assert path.name.startswith(prefix)
    # stdout holds only paths; the translation is one line on stderr
    last = stderr.strip().splitlines()[-1]
    assert last == "generated: un arbo tre grana un pompo hodie ho salutas"


def test_generate_changes_the_name(tmp_path, capsys):
    names = []
    for n in ("4", "8"):
        rc, stdout, _ = _run(["head", "--model", "toy-mt", "--text", SRC, "--generate", n,
                              "--stack", "cross", "--out", str(tmp_path), "--quiet"], capsys)
        assert rc == 0
        names.append(_files(stdout)[0].name)
    assert names[0] != names[1]


def test_alignment_view(tmp_path, capsys):
    rc, stdout, stderr = _run(["alignment", "--text", SRC, "--out", str(tmp_path), "--quiet"],
                              capsys)
    assert rc == 0, stderr
    [path] = _files(stdout)
    assert path.name.startswith("alignment_toy-mt_L1_")
    assert "generated: un arbo" in stderr
    rc, stdout, stderr = _run(["alignment", "--text", SRC, "--layer", "0", "--head", "1",
                               "--generate", "5", "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, stderr
    assert _files(stdout)[0].name.startswith("alignment_toy-mt_L0H1_")


def test_gates_view(tmp_path, capsys):
    rc, stdout, stderr = _run(["gates", "--out", str(tmp_path), "--quiet", "--seed", "3"], capsys)
    assert rc == 0, stderr
    maps, channel = _files(stdout)  # CBAM's spatial gates beside GradCAM; its channel gates
    assert maps.name.startswith("gates_cnn-shapes_spatial-gradcam_shapes-seed3-")
    assert channel.name.startswith("gates_cnn-shapes_channel_shapes-seed3-")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["heads", "--text", "the cat", "--stack", "cross"],  # named no fix
         "--stack cross: minilm (encoder) has no cross attention; it has encoder: pass --stack "
         "encoder, or an encoder-decoder model for cross (e.g. --model toy-mt)"),
        (["heads", "--text", "the cat", "--stack", "decoder"], "has no decoder attention"),
        (["rollout", "--text", "the cat", "--stack", "encoder"],
         "--stack does not apply to the rollout view: it is used by the heads, head and links "
         "views only"),
        (["coref", "--text", "the cat", "--word", "cat", "--generate", "3"],
         "--generate does not apply to the coref view: it is used by the heads, head, links and "
         "alignment views only"),
        (["heads", "--model", "toy-mt", "--text", SRC, "--generate", "0"], "out of range"),
        (["heads", "--text", "the cat", "--generate", "3"], "minilm"),
        (["heads", "--model", "vit-shapes", "--generate", "3"], "needs a text model"),
        (["alignment", "--model", "minilm", "--text", "the cat"], "minilm"),
        (["rollout", "--model", "cnn-shapes"], "use the gates view"),
        (["heads", "--model", "cnn-shapes"], "use the gates view"),
        (["gates", "--model", "vit-shapes"], "needs a CNN"),
        (["gates", "--model", "timm:resnet18"], "needs a CNN"),
        (["heads", "--model", "timm:resnet18"], "probe render saliency (GradCAM)"),
        (["gates", "--method", "gradcam"], "--method does not apply"),
        (["head", "--model", "toy-mt", "--text", SRC, "--stack", "cross", "--layer", "5"],
         "out of range"),
    ],
)
def test_bad_combinations_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "o"
    rc, stdout, stderr = _run([*argv, "--out", str(out), "--quiet"], capsys)
    assert rc == 2
    assert stdout == ""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("probe: error: "), stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in stderr
    assert not out.exists() or not os.listdir(out)


@pytest.mark.parametrize(("view", "prefix"), [("heads", "heads_toy-mt_cross_all_"),
                                              ("links", "links_toy-mt_cross_L1_")])
def test_stack_views_have_an_html_form(tmp_path, capsys, view, prefix):
    import json
    import re

    rc, stdout, stderr = _run(
        [view, "--model", "toy-mt", "--text", SRC, "--generate", "12", "--stack", "cross",
         "--format", "html", "--format", "png", "--out", str(tmp_path), "--quiet"], capsys,
    )
    assert rc == 0, stderr
    paths = [Path(line) for line in stdout.split()]
    assert sorted(p.suffix for p in paths) == [".html", ".png"]
    page = next(p for p in paths if p.suffix == ".html")
    assert page.name.startswith(prefix)
    block = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', page.read_text(),
                      re.S)
    data = json.loads(block.group(1))
    assert data["qtokens"] != data["ktokens"]  # target tokens left, source tokens right


@pytest.mark.parametrize(
    ("argv", "stems"),
    [
        (["saliency"], ["saliency_cnn-shapes_gradcam_"]),
        (["saliency", "--method", "cbam-spatial"], ["saliency_cnn-shapes_cbam-spatial_"]),
        (["compare"], ["compare_cnn-shapes_default_"]),
        (["curves", "--method", "gradcam", "--method", "random"],
         ["curves_cnn-shapes_deletion_gradcam-random_",
          "curves_cnn-shapes_insertion_gradcam-random_"]),
    ],
)
def test_attribution_views_on_a_cnn(tmp_path, capsys, argv, stems):
    rc, stdout, stderr = _run([*argv, "--model", "cnn-shapes", "--out", str(tmp_path), "--quiet"],
                              capsys)
    assert rc == 0, stderr
    names = sorted(p.name for p in _files(stdout))
    assert len(names) == len(stems)
    for name, stem in zip(names, sorted(stems)):
        assert name.startswith(stem), (name, stem)


def test_cnn_saliency_layer_is_one_line(tmp_path, capsys):
    rc, stdout, stderr = _run(["saliency", "--model", "cnn-shapes", "--layer", "0", "--out",
                               str(tmp_path), "--quiet"], capsys)
    assert rc == 2 and stdout == ""
    assert stderr.strip().count("\n") == 0 and "CNN without attention heads" in stderr
    assert not any(tmp_path.iterdir())
