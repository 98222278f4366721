"""``dir(probe)`` is the public API: the lazy names of ``__all__`` and the public subpackages,
not the façade's own imports, and listing it imports no torch."""

from __future__ import annotations

import json
import subprocess
import sys

PUBLIC_SUBPACKAGES = {"viewers", "recipes"}


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dir_lists_the_public_api_only_and_imports_no_torch():
    got = _run(
        "import json, sys, probe\n"
        "before = dir(probe)\n"
        "heavy = sorted(m for m in ('torch', 'matplotlib', 'transformers') if m in sys.modules)\n"
        "probe.trace, probe.patch_maps  # loads torch and several rooms as submodules\n"
        "print(json.dumps({'before': before, 'after': dir(probe), 'heavy': heavy,\n"
        "                  'all': probe.__all__}))\n"
    )
    expected = sorted({*got["all"], *PUBLIC_SUBPACKAGES})
    assert got["before"] == expected
    assert got["after"] == expected  # loading submodules (probe.capture, ...) adds nothing
    assert got["heavy"] == []
    for leaked in ("Any", "TYPE_CHECKING", "annotations", "importlib", "_LAZY", "capture"):
        assert leaked not in got["before"] and leaked not in got["after"]


def test_every_listed_name_resolves():
    import probe

    for name in dir(probe):
        assert getattr(probe, name) is not None, name
