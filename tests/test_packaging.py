"""pyproject.toml is the source of truth for dependencies: environment.yml mirrors it, the `test`
extra installs what the tests import, and the pins that keep the project offline-buildable hold."""
import re
import sys
from pathlib import Path

import yaml

from conftest import TEST_MODULES

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
SELF = re.compile(rf"^{PROJECT['name']}\[(.+)\]$")


def _normal(requirement: str) -> str:
    return re.sub(r"\s", "", requirement).replace('"', "'").lower()


def _extra(name: str) -> set:
    """An extra's requirements, with the extras it names of this project itself ("dualenc[a,b]") expanded."""
    out = set()
    for requirement in EXTRAS[name]:
        included = SELF.match(_normal(requirement))
        if included:
            for other in included.group(1).split(","):
                out |= _extra(other)
        else:
            out.add(_normal(requirement))
    return out


def _environment_pip() -> list:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return [_normal(r) for r in pip if r != "-e ."]


def _name(requirement: str) -> str:
    return re.match(r"[a-z0-9._-]+", requirement).group(0)


def test_environment_yml_mirrors_every_dependency_and_extra():
    in_pyproject = {_normal(r) for r in PROJECT["dependencies"]}
    for name in EXTRAS:
        in_pyproject |= _extra(name)
    in_environment = _environment_pip()
    assert len(in_environment) == len(set(in_environment)), "environment.yml lists a requirement twice"
    assert set(in_environment) == in_pyproject, (
        f"only in pyproject.toml: {sorted(in_pyproject - set(in_environment))}; "
        f"only in environment.yml: {sorted(set(in_environment) - in_pyproject)}")
    assert {"test", "book", "sweep", "explore"} <= set(EXTRAS)


def test_environment_python_satisfies_requires_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    lowest = re.fullmatch(r">=(\d+)\.(\d+)", PROJECT["requires-python"])
    assert lowest, PROJECT["requires-python"]
    assert tuple(map(int, python.split("=")[1].split("."))) >= tuple(map(int, lowest.groups()))


def test_pins_hold():
    core = {_name(r): r for r in map(_normal, PROJECT["dependencies"])}
    assert core["torch"] == "torch==2.13.0"                                   # a CPU build, not multi-GB CUDA
    book = {_name(r): r for r in _extra("book")}
    assert book["jupyter-book"] == "jupyter-book==1.0.4.post1"                # 2.x cannot build offline
    assert book["ipykernel"].endswith("<7")                                   # 7.x hangs under papermill


def test_test_extra_installs_what_the_tests_import():
    installed = {_name(r) for r in _extra("test")}
    missing = [pip for pip in TEST_MODULES.values() if _name(_normal(pip)) not in installed]
    assert not missing, f"tests import {missing}, which `pip install .[test]` does not install"
    assert "pytest" in installed


def test_make_test_installs_the_test_extra():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*\.\[test[\],]", makefile), "the Makefile's venv does not install .[test]"


def test_readme_layout_lists_every_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    layout = layout[:layout.index("```", layout.index("```") + 3)]
    modules = [p.stem for p in (ROOT / "dualenc").rglob("*.py") if p.stem != "__init__" and "plots" not in p.parts]
    missing = [m for m in modules if not re.search(rf"\b{m}\.py\b", layout)]
    assert not missing, f"README's layout section does not list {missing}"
    assert {"plots/", "analysis/", "book/"} <= set(re.findall(r"\b\w+/", layout))
