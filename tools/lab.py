#!/usr/bin/env python
"""Open the live explorer in JupyterLab on a scratch copy of notebooks/explorer.ipynb.

    python tools/lab.py                  # what `make lab` runs
    python tools/lab.py --no-browser     # on a server: prints the URL to open
    python tools/lab.py --fresh          # start again from the committed notebook
    python tools/lab.py -- --port 9999   # anything after -- goes to `jupyter lab`

The copy lives in _build/lab/ (git-ignored with the rest of _build/), so JupyterLab's autosave
never touches the committed notebook, which is kept without outputs. The kernel starts in that
folder; `dualenc.runs.study.runs_root` finds the project root above it, so the explorer uses the
project's run store (runs/, or $DUALENC_RUNS). JupyterLab's root is the scratch folder itself.
As root (in a container) `--allow-root` is passed, since Jupyter refuses to start otherwise.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "explorer.ipynb"
SCRATCH = ROOT / "_build" / "lab"


def prepare_copy(source: Path = NOTEBOOK, folder: Path = SCRATCH, fresh: bool = False) -> Path:
    """The scratch copy of `source` in `folder`: made when missing, when `fresh`, or when the
    committed notebook is newer than the copy (an older copy's edits are then replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / source.name
    if fresh or not copy.exists() or source.stat().st_mtime > copy.stat().st_mtime:
        shutil.copyfile(source, copy)
        print(f"[lab] copied {source.relative_to(ROOT)} to {copy}")
    else:
        print(f"[lab] reusing the scratch copy {copy} (--fresh starts again from the committed one)")
    return copy


def lab_command(copy: Path, no_browser: bool = False, extra: list | None = None,
                is_root: bool | None = None) -> list:
    """The `jupyter lab` command line that serves `copy`'s folder and opens `copy`."""
    url = f"/lab/tree/{copy.name}"
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={copy.parent}",
           f"--LabApp.default_url={url}", f"--ServerApp.default_url={url}"]
    if is_root if is_root is not None else (hasattr(os, "geteuid") and os.geteuid() == 0):
        cmd.append("--allow-root")
    if no_browser:
        cmd.append("--no-browser")
    return cmd + list(extra or [])


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open a browser (also with NO_BROWSER=1); open the printed URL yourself")
    parser.add_argument("--fresh", action="store_true", help="copy the committed notebook again")
    parser.add_argument("extra", nargs="*", help="arguments for `jupyter lab` (after --)")
    args = parser.parse_args(argv)
    copy = prepare_copy(fresh=args.fresh)
    no_browser = args.no_browser or os.environ.get("NO_BROWSER", "") not in ("", "0")
    cmd = lab_command(copy, no_browser, args.extra)
    print(f"[lab] starting: {' '.join(cmd)}")
    print(f"[lab] open the URL below that ends in /lab/tree/{copy.name}?token=... "
          "(Ctrl-C twice stops the server)", flush=True)
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
