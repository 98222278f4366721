"""Repository contracts: README commands, CI script, packaging, lazy imports."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_opens_with_two_setup_and_go_commands():
    cmds = _readme_commands()
    assert len(cmds) >= 2
    demo, tests = cmds[0], cmds[1]
    assert "pip install" in demo and "probe.recipes.demo" in demo
    assert "pip install" in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _readme_commands()[1] in ci.splitlines()


def test_version_has_one_source():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["version"] == "attr: probe._version.__version__"
    assert not (ROOT / "setup.py").exists()
    assert "version" not in (ROOT / "pyproject.toml").read_text().split("[tool")[0]


def test_no_generic_top_level_packages():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    packages = cfg["options"]["packages"].split()
    assert all(p == "probe" or p.startswith("probe.") for p in packages)
    import probe.recipes
    import probe.viewers

    assert Path(probe.viewers.__file__).parent.name == "viewers"
    assert Path(probe.recipes.__file__).parent.name == "recipes"


def test_every_package_and_data_file_is_installed():
    """A non-editable install (``pip install .``) ships only what setup.cfg lists: every
    folder with an ``__init__.py`` must be a listed package (probe.capture.adapters once was
    not) and every data file must match a package_data pattern."""
    import fnmatch

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    roots = {"probe": ROOT / "probe", "probe.viewers": ROOT / "viewers",
             "probe.recipes": ROOT / "recipes"}
    found, data = set(), []
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            if name == "probe" and rel[:1] in (("viewers",), ("recipes",)):
                continue
            found.add(".".join((name, *rel)))
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc"):
                data.append(path)
    assert found == listed, f"not listed: {sorted(found - listed)}; not a package: " \
        f"{sorted(listed - found)}"
    patterns: dict[str, list[str]] = {}
    for line in cfg["options.package_data"].get("probe.models", "").split(","):
        patterns.setdefault("probe/models", []).append(line.strip())
    for path in data:
        rel = path.relative_to(ROOT).as_posix()
        assert rel.startswith("probe/models/"), f"{rel} is not shipped by package_data"
        inside = rel[len("probe/models/"):]
        assert any(fnmatch.fnmatch(inside, p) for p in patterns["probe/models"]), rel


def test_help_does_not_import_torch():
    code = (
        "import sys, probe.cli\n"
        "rc = probe.cli.main(['--help'])\n"
        "rc2 = probe.cli.main(['render', '--help'])\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'transformers', 'timm', 'captum') "
        "if m in sys.modules]\n"
        "print(rc, rc2, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 0 []"


def test_every_public_name_resolves():
    import probe

    for name in probe.__all__:
        assert getattr(probe, name) is not None, name


def test_test_helpers_are_imported_under_one_name():
    """``tests._tiny`` and ``tests._factories``, never the bare ``_tiny`` (a second module copy)."""
    bare = re.compile(r"^\s*(from|import)\s+(_tiny|_factories)\b", re.MULTILINE)
    offenders = [p.name for p in (ROOT / "tests").glob("*.py") if bare.search(p.read_text())]
    assert not offenders, f"import test helpers as tests._tiny / tests._factories: {offenders}"


def test_viewers_and_recipes_are_attributes_of_probe():
    code = (
        "import sys, probe\n"
        "ok = callable(probe.viewers.head_grid) and hasattr(probe.recipes, '__path__')\n"
        "print(ok, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True False"
