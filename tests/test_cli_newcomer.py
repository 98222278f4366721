"""What a newcomer met on a fresh clone: hub ids without an owner, the offline hub message,
a repeated coref word, ``probe models --methods``, the help summary of render, option typos,
the faithfulness footer, transformers' loading bar, the compare default set and GradCAM on a
model without a spatial feature map. Nothing here reaches the network: hub ids load from a
temporary cache or the loader is replaced at its boundary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import probe
from probe.cli import main
from probe.models import _registry

ROOT = Path(__file__).resolve().parent.parent


def _run(argv: list[str], capsys: Any) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


# ----------------------------------------------------------------------------- hub ids
@pytest.mark.parametrize("name", ["gpt2", "bert-base-uncased", "distilgpt2", "t5-small"])
def test_a_hub_id_without_an_owner_goes_to_the_hub_loader(name, monkeypatch):
    """``--model gpt2`` was 'unknown model ... an owner/name hub id': the hub still serves
    ids without an owner."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []
    monkeypatch.setattr(_registry, "_load_hf",
                        lambda path, local_only: calls.append((path, local_only)) or ("m", "t"))
    assert tuple(probe.load_model(name)) == ("m", "t")
    assert calls == [(name, True)]


@pytest.mark.parametrize("typo, embedded", [("minlm", "minilm"), ("vit-shape", "vit-shapes"),
                                            ("toy_mt", "toy-mt")])
def test_a_name_close_to_an_embedded_one_is_a_typo_not_a_hub_id(typo, embedded, monkeypatch):
    monkeypatch.setattr(_registry, "_load_hf", lambda *a, **k: pytest.fail("went to the hub"))
    with pytest.raises(probe.ProbeError,
                       match=rf"^unknown model '{typo}' \(did you mean '{embedded}'\?\)"):
        probe.load_model(typo)


def _cached_tiny_gpt2(cache: Path, repo: str) -> None:
    """A tiny random GPT-2 and its tokenizer where huggingface_hub's cache keeps ``repo``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests._tokenizers import TOKENIZERS

    tok = TOKENIZERS["byte_level"]()
    commit = "0" * 39 + "1"
    folder = cache / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / commit
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4,
                               n_positions=64)).eval().save_pretrained(snapshot)
    tok.save_pretrained(snapshot)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)


def test_probe_render_loads_a_bare_hub_id_from_the_local_cache(tmp_path):
    """End to end, offline: ``probe render head --model gpt2`` finds ``gpt2`` in the cache."""
    cache = tmp_path / "hub"
    _cached_tiny_gpt2(cache, "gpt2")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache),
           "MPLBACKEND": "Agg", "PROBE_SERVE_SOCKET": str(tmp_path / "no-server")}
    proc = subprocess.run(
        [sys.executable, "-m", "probe.cli", "render", "head", "--model", "gpt2", "--text",
         "The cat sat.", "--out", str(tmp_path / "out"), "--dpi", "20", "--quiet"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = [Path(p) for p in proc.stdout.split()]
    assert len(written) == 1 and written[0].name.startswith("head_gpt2_"), proc.stdout
    assert written[0].stat().st_size > 0


# ----------------------------------------------------------------------------- offline
def _missing_from_cache(path: str, local_only: bool) -> Any:
    raise OSError(f"{path} is not in the cached files (local_files_only={local_only})")


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_mode_is_named_when_a_hub_model_is_not_cached(variable, monkeypatch):
    """With HF_HUB_OFFLINE=1 the message said 'check the id and your network'."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv(variable, "1")
    monkeypatch.setattr(_registry, "_load_hf", _missing_from_cache)
    with pytest.raises(probe.ProbeError) as info:
        probe.load_model("openai-community/gpt2")
    message = str(info.value)
    assert re.match(rf"could not load 'openai-community/gpt2': it is not in the local "
                    rf"HuggingFace cache and offline mode is on \({variable}=1\): download it "
                    rf"once with network access \(without {variable}\), pass a local model "
                    r"folder", message), message
    assert "network, or" not in message


def test_without_offline_mode_the_hub_message_names_the_id_and_the_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "false")
    monkeypatch.setattr(_registry, "_load_hf", _missing_from_cache)
    with pytest.raises(probe.ProbeError, match=r"from the HuggingFace hub \(OSError\): check the "
                       r"id and your network"):
        probe.load_model("openai-community/gpt2")


def test_cli_offline_message_from_a_real_cache_miss(tmp_path, capsys, monkeypatch):
    """Through transformers itself (offline, an empty cache): the one line names offline mode."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["render", "head", "--model", "openai-community/no-such-tiny-model",
                           "--text", "hi", "--out", str(tmp_path)], capsys)
    line = _one_line(err)
    assert code == 2 and out == ""
    assert "not in the local HuggingFace cache and offline mode is on (HF_HUB_OFFLINE=1)" in line


# ----------------------------------------------------------------------------- probe models
def test_models_methods_prints_the_methods_alone(capsys):
    """``probe models --methods`` printed the whole model list again before the methods."""
    code, out, _ = _run(["models", "--methods"], capsys)
    assert code == 0
    assert out.startswith("attribution methods (options: name=default):\n"), out[:200]
    assert "embedded models" not in out and "vit-shapes" not in out
    code, out, _ = _run(["models"], capsys)
    assert code == 0 and out.startswith("embedded models (offline):\n")
    assert "attribution methods (options" not in out


def test_top_level_help_says_render_writes_html_too(capsys):
    code, out, _ = _run(["--help"], capsys)
    line = next(x for x in out.splitlines() if x.strip().startswith("render "))
    assert code == 0 and "HTML" in line and "PNG" in line, line


# ----------------------------------------------------------------------------- option typos
@pytest.mark.parametrize("argv, typed, meant", [
    (["render", "head", "--layr", "2"], "--layr 2", "--layer"),
    (["render", "coref", "--text", "hi", "--word", "hi", "--ocurrence", "1"], "--ocurrence 1",
     "--occurrence"),
    (["eval", "sanity", "--qiuck"], "--qiuck", "--quick"),
    (["bench", "--repeets=3"], "--repeets=3", "--repeats"),
    (["models", "--methds"], "--methds", "--methods"),
    (["serve", "--idle-timout", "5"], "--idle-timout 5", "--idle-timeout"),
])
def test_an_unknown_option_names_the_closest_one_and_the_subcommand_help(argv, typed, meant,
                                                                         capsys):
    """``probe render head --layr 2`` said 'unrecognized arguments: --layr 2 (see probe
    --help)': the closest option of that subcommand, and that subcommand's help."""
    code, out, err = _run(argv, capsys)
    line = _one_line(err)
    assert code == 2 and out == ""
    assert line == (f"probe {argv[0]}: error: unrecognized arguments: {typed} (did you mean "
                    f"{meant}?) (see probe {argv[0]} --help)"), line


def test_unknown_options_far_from_every_option_get_no_guess(capsys):
    code, _, err = _run(["render", "head", "--zzzz"], capsys)
    assert code == 2 and _one_line(err) == ("probe render: error: unrecognized arguments: --zzzz "
                                            "(see probe render --help)")
    code, _, err = _run(["render", "head", "--layr", "2", "--haed", "1"], capsys)
    assert code == 2 and _one_line(err).endswith(
        "(did you mean --layer for --layr, --head for --haed?) (see probe render --help)")
    code, _, err = _run(["--nosuch"], capsys)
    assert code == 2 and _one_line(err) == ("probe: error: unrecognized arguments: --nosuch "
                                            "(see probe --help)")


# ----------------------------------------------------------------------------- eval footer
def test_faithfulness_without_chefer_methods_says_so_in_one_sentence(capsys):
    """It printed "Chefer et al.'s ordering: undefined. cannot compare: no deletion/insertion
    AUC for ['relevance', 'gradcam']"."""
    code, out, err = _run(["eval", "faithfulness", "--quick", "--n", "2", "--method", "rollout",
                           "--method", "attention", "--method", "random", "--quiet"], capsys)
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("Chefer et al.'s ordering"))
    assert line == ("Chefer et al.'s ordering is not compared, because this run has no deletion "
                    "and insertion AUC for relevance and gradcam, and the comparison needs all "
                    "four of relevance, rollout, attention and gradcam."), line


# ----------------------------------------------------------------------------- coref repeats
REPEATED = "It was the dog that bit it."


def test_coref_on_a_repeated_word_names_the_later_occurrence_in_the_api(minilm):
    """The first 'It' has no candidates before it: the message named only candidates=[...]."""
    model, tokenizer = minilm
    trace = probe.trace(model, REPEATED, tokenizer=tokenizer)
    with pytest.raises(probe.ProbeError) as info:
        probe.coref(trace, "it")
    assert str(info.value) == (
        "no candidate antecedents for 'It': the default candidates are the content words before "
        "'It', and there are none; 'it' occurs 2 times, the later one: occurrence=1 (or -1); "
        "pass candidates=[...] to choose them")
    assert probe.coref(trace, "it", occurrence=1)[0].antecedent_index < 6  # the fix works
    assert probe.coref(trace, "it", occurrence=-1)


def test_coref_on_a_repeated_word_names_the_occurrence_flag_on_the_command_line(tmp_path,
                                                                               capsys):
    code, out, err = _run(["render", "coref", "--text", REPEATED, "--word", "it", "--out",
                           str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert _one_line(err) == (
        "probe: error: no candidate antecedents for 'It': the default candidates are the content "
        "words before 'It', and there are none; 'it' occurs 2 times, the later one: --occurrence "
        "1 (or -1); pass --candidate WORD (repeatable) to choose them")
    code, out, err = _run(["render", "coref", "--text", REPEATED, "--word", "it",
                           "--occurrence", "-1", "--out", str(tmp_path), "--dpi", "20",
                           "--quiet"], capsys)
    assert code == 0, err


def test_coref_lists_only_later_occurrences_that_have_candidates(minilm):
    model, tokenizer = minilm
    trace = probe.trace(model, "It was the dog that bit it and it ran.", tokenizer=tokenizer)
    with pytest.raises(probe.ProbeError, match=r"'it' occurs 3 times, the later ones: "
                       r"occurrence=1 or 2 \(-1 is the last\); pass candidates"):
        probe.coref(trace, "it")
    with pytest.raises(probe.ProbeError, match=r"before 'It'; pass candidates=\[\.\.\.\]"):
        probe.coref(trace, 0)  # a word index: no occurrence to name


# ----------------------------------------------------------------------------- loading bars
def _switches() -> tuple[bool, dict]:
    from huggingface_hub.utils import tqdm as _unused  # noqa: F401
    from transformers.utils import logging as hf_logging

    hub = sys.modules["huggingface_hub.utils.tqdm"]
    return hf_logging.is_progress_bar_enabled(), dict(hub.progress_bar_states)


@pytest.fixture()
def bars_on() -> Any:
    """transformers' and the hub's bars on (their defaults) for the test, as they were after."""
    from transformers.utils import logging as hf_logging

    before = _switches()
    hf_logging.enable_progress_bar()
    yield
    hub = sys.modules["huggingface_hub.utils.tqdm"]
    (hf_logging.enable_progress_bar if before[0] else hf_logging.disable_progress_bar)()
    hub.progress_bar_states.clear()
    hub.progress_bar_states.update(before[1])


def test_load_model_shows_no_loading_bar_and_restores_the_switches(bars_on, capfd):
    """``probe.load_model`` showed transformers' "Loading weights: 100%|..." every time."""
    before = _switches()
    probe.load_model("minilm")
    assert "Loading weights" not in capfd.readouterr().err
    assert _switches() == before == (True, {"_global": True})
    probe.load_model("minilm", quiet=False)  # the user asked for progress
    assert "Loading weights" in capfd.readouterr().err
    assert _switches() == before


def test_load_model_restores_the_switches_when_loading_raises(bars_on):
    from transformers.utils import logging as hf_logging

    seen = []

    @probe.register_model("broken-on-load", modality="text", description="raises")
    def _broken() -> Any:
        seen.append(hf_logging.is_progress_bar_enabled())
        raise RuntimeError("weights are gone")

    before = _switches()
    with pytest.raises(RuntimeError, match="weights are gone"):
        probe.load_model("broken-on-load")
    assert seen == [False]  # off while probe loaded
    assert _switches() == before
    hf_logging.disable_progress_bar()  # a user who turned them off keeps them off
    probe.load_model("minilm")
    assert _switches() == (False, {"_global": False})


_FRESH = r"""
import json, sys, probe
from huggingface_hub.utils import are_progress_bars_disabled
probe.load_model("vit-shapes")
out = {"vision_imports_transformers": "transformers" in sys.modules,
       "hub_after_vision": are_progress_bars_disabled()}
probe.load_model("minilm")  # transformers imported inside probe's load
from transformers.utils import logging as hf_logging
out["bars_after_text"] = hf_logging.is_progress_bar_enabled()
out["hub_after_text"] = are_progress_bars_disabled()
print(json.dumps(out))
"""


def test_switches_come_back_when_the_load_imports_transformers(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS",
                                                             "TQDM_DISABLE")}
    proc = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True,
                          env={**env, "HF_HUB_OFFLINE": "1"}, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Loading weights" not in proc.stderr
    import json

    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "vision_imports_transformers": False, "hub_after_vision": False,
        "bars_after_text": True, "hub_after_text": False}


# ----------------------------------------------------------------------------- compare default
def test_compare_default_set_is_named_as_such_in_help_and_file_name(tmp_path, capsys):
    """The help said 'default: all' while vit-shapes showed 7 of its 11 methods."""
    from probe.commands._pages import curve_methods
    from probe.commands.render._args import DEFAULT_IMAGE_METHODS

    model, _ = probe.load_model("vit-shapes")
    shown = curve_methods(model, "vision", [], captures=True, has_target=True)
    assert shown == list(DEFAULT_IMAGE_METHODS)
    left_out = set(probe.list_methods("vision")) - set(shown)
    assert left_out == {"rollout-max", "rollout-min", "flow", "inputxgrad"}
    _run(["render", "--help"], capsys)
    code, out, _ = _run(["render", "--help"], capsys)
    help_text = " ".join(out.split())
    assert code == 0 and "default: all" not in help_text
    assert ("images " + ", ".join(shown)) in help_text
    assert all(m in help_text.split("Left out, by name only:")[1] for m in left_out)
    code, out, err = _run(["render", "compare", "--out", str(tmp_path), "--dpi", "20",
                           "--quiet"], capsys)
    assert code == 0, err
    assert [Path(p).name.split("_")[:3] for p in out.split()] == [
        ["compare", "vit-shapes", "default"]]
    readme = (ROOT / "README.md").read_text()
    assert "default: all" not in readme and "7 of the 11 vision methods" in readme


# ----------------------------------------------------------------------------- gradcam
def test_gradcam_on_a_model_whose_stages_output_tokens_is_one_clear_line():
    """LeViT's stages output tokens ``[batch, tokens, dim]``: the message was the internal
    'maps must be [batch, height, width], got (1, 384)'."""
    import timm
    import torch

    model = timm.create_model("levit_128s", num_classes=3).eval()
    with pytest.raises(probe.ProbeError) as info:
        probe.attribute(model, torch.randn(1, 3, 224, 224), "gradcam")
    assert str(info.value) == (
        "gradcam needs a spatial feature map [batch, channels, height, width], but the stage "
        "probe picked in levit_128s (LevitDistilled), stages.2 (block=-1), outputs (1, 16, 384), "
        "and none of its stages (stages.0, stages.1, stages.2) outputs one, so GradCAM does not "
        "apply to this model: use ig, saliency or inputxgrad, which need no feature map")
    with pytest.raises(probe.ProbeError, match=r"stages\.0 \(block=0\), outputs \(1, 196, 128\)"):
        probe.attribute(model, torch.randn(1, 3, 224, 224), "gradcam", block=0)
    assert not any(m._forward_hooks for m in model.modules())  # every hook removed
