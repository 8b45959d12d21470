"""What a notebook template was given: unknown papermill parameters, and paths fit to publish.

papermill only warns about a parameter the template does not declare and runs the defaults; it
injects the given values as a cell of assignments headed "# Parameters" right after the template's
cell tagged `parameters`. `reject_unknown_parameters`, called first in the cell after that, reads
both cells from the kernel's input history and fails on any name the template does not declare.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional, Sequence

from ..config import ConfigError

INJECTED_HEADER = "# Parameters"   # the first line of papermill's injected cell (Python translator)


def assigned_names(source: str) -> list:
    """Names bound at the top level of a cell, in order (`x = 1`, `x: int = 1`)."""
    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return names


def _kernel_history() -> Sequence[str]:
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    return shell.user_ns.get("In", []) if shell is not None else []


def injected_parameters(history: Optional[Sequence[str]] = None) -> tuple:
    """(declared, given): the names of the template's parameters cell and of papermill's injected
    cell after it, from the newest injected cell in the history; ([], []) when nothing was injected."""
    history = list(_kernel_history() if history is None else history)
    for index in range(len(history) - 1, 0, -1):
        if history[index].lstrip().startswith(INJECTED_HEADER):
            return assigned_names(history[index - 1]), assigned_names(history[index])
    return [], []


def reject_unknown_parameters(history: Optional[Sequence[str]] = None) -> None:
    """Raise ConfigError naming every injected parameter the template does not declare."""
    declared, given = injected_parameters(history)
    unknown = [name for name in given if name not in declared]
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown}: this notebook takes {declared}")


def display_path(path, root: Optional[Path] = None) -> str:
    """A path as a published page may show it: relative to the project root when inside it (so a
    page built on one machine shows no folder of that machine), else as given."""
    from ..runs.study import project_root

    path = Path(path)
    root = root or project_root()
    if not path.is_absolute():
        return path.as_posix()
    if root is not None:
        try:
            return path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return str(path)
