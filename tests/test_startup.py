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
