#!/usr/bin/env python
"""Build the book: render the experiment pages with papermill, then run Jupyter Book.

    python tools/build_book.py                       # full profile, HTML in _build/html
    DUALENC_BOOK_PROFILE=quick python tools/build_book.py   # small, fast settings
    python tools/build_book.py --help

Step 1 (generate). ``notebooks/experiment.ipynb`` is a papermill template. For each of the
book's four experiments (exp1..exp4) it is executed with ``experiment=expN`` (plus the
profile's parameters, see PROFILES) into ``book/generated/expN.ipynb``. A page is only
executed again when its inputs change: the cache key is a SHA-256 of the template file,
the parameters, every source file of the ``dualenc`` package and this script. The key is written beside
the page (``book/generated/expN.key``), and every rendered page is also kept under
``<build>/.papermill_cache/<key>.ipynb`` so switching between profiles does not re-execute.

Step 2 (build). ``jupyter-book build . -W --keep-going``: warnings are errors and any cell
error fails the build (``nb_execution_raise_on_error``). The other notebooks in _toc.yml are
executed by myst-nb and cached by jupyter-cache, which keys on the notebook's code only; so
this script empties that cache whenever the profile or the ``dualenc`` sources change.

Exit status: 0 on success, non-zero when papermill or the book build failed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "notebooks" / "experiment.ipynb"
GENERATED = ROOT / "book" / "generated"
PACKAGE = ROOT / "dualenc"
STATIC = ROOT / "book_static"
sys.path.insert(0, str(ROOT))
from dualenc.design import ORIGINAL_EXPERIMENTS as EXPERIMENTS  # noqa: E402  (exp1..exp4)
from dualenc.book.book_profile import BOOK_PROFILE_ENV as PROFILE_ENV, QUICK_SEEDS, QUICK_SIZES  # noqa: E402

# Parameters passed to the template on top of ``experiment=expN``, per profile. A parameter
# that the template's ``parameters`` cell does not declare is left out (with a note), so a
# profile never injects a variable the template would not validate.
PROFILES: dict[str, dict[str, object]] = {
    # the registry's settings for exp1..exp4 (the original's), nothing overridden
    "full": {},
    # a smoke-test build: a few steps, two seeds and small evaluation sets
    "quick": {**QUICK_SIZES, "seeds": QUICK_SEEDS},
}
# optional JSON object of extra parameters for every experiment page, e.g. '{"steps": 50}'
PARAMS_ENV = "DUALENC_BOOK_PARAMS"
KERNEL = "python3"
CELL_TIMEOUT_S = 600
PRETRAIN_JOBS = 2  # worker processes training the pages' runs before the pages execute


def log(msg: str) -> None:
    print(f"[build_book] {msg}", flush=True)


# --------------------------------------------------------------------------- cache keys


def package_digest(package: Path = PACKAGE) -> str:
    """SHA-256 over the relative path and bytes of every file under ``package`` (dualenc)."""
    h = hashlib.sha256()
    if package.is_dir():
        for path in sorted(package.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            if path.suffix in {".pyc", ".pyo"} or path.name.startswith("."):
                continue
            h.update(path.relative_to(package).as_posix().encode())
            h.update(b"\0")
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def page_key(template: Path, params: dict, pkg_digest: str) -> str:
    h = hashlib.sha256()
    h.update(b"template\0" + template.read_bytes())
    h.update(b"\0params\0" + json.dumps(params, sort_keys=True, default=str).encode())
    h.update(b"\0dualenc\0" + pkg_digest.encode())
    h.update(b"\0builder\0" + Path(__file__).read_bytes())  # how a page is rendered and tidied
    return h.hexdigest()


# --------------------------------------------------------------------------- parameters


def template_parameters(template: Path) -> dict[str, dict]:
    """The names (and inferred types/defaults) declared in the template's parameters cell."""
    import papermill

    return dict(papermill.inspect_notebook(str(template)))


def page_params(experiment: str, profile: str, declared: dict[str, dict]) -> dict:
    params: dict[str, object] = {"experiment": experiment}
    wanted = dict(PROFILES[profile])
    extra = os.environ.get(PARAMS_ENV, "").strip()
    if extra:
        try:
            more = json.loads(extra)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{PARAMS_ENV} is not valid JSON: {exc}") from None
        if not isinstance(more, dict):
            raise SystemExit(f"{PARAMS_ENV} must be a JSON object, got {type(more).__name__}")
        wanted.update(more)
    for name, value in wanted.items():
        if name in declared:
            params[name] = value
    if "experiment" not in declared:
        raise SystemExit(
            f"{TEMPLATE.relative_to(ROOT)} declares no `experiment` parameter "
            f"(declared: {sorted(declared) or 'none'}); the book needs `-p experiment expN`."
        )
    return params


# --------------------------------------------------------------------------- step 1


def run_papermill(template: Path, out: Path, params: dict, cwd: Path, failed_dir: Path) -> None:
    """Execute the template into ``out`` atomically; raise RuntimeError on failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=".ipynb", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    cmd = [
        sys.executable, "-m", "papermill", str(template), str(tmp),
        "-y", json.dumps(params),
        "-k", KERNEL,
        "--cwd", str(cwd),
        "--execution-timeout", str(CELL_TIMEOUT_S),
        "--no-progress-bar",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        failed_dir.mkdir(parents=True, exist_ok=True)
        kept = failed_dir / out.name
        if tmp.exists():
            shutil.move(str(tmp), kept)
        output = proc.stdout + proc.stderr
        marker = output.find("PapermillExecutionError")
        tail = output[marker:] if marker >= 0 else output
        tail = tail[-6000:]
        raise RuntimeError(
            f"papermill failed for {out.name} with {params} (exit {proc.returncode}); "
            f"the partly executed notebook is {kept}\n{tail}"
        )
    tidy_rendered_page(tmp, out)
    os.replace(tmp, out)
    log(f"rendered {out.relative_to(ROOT)} in {time.perf_counter() - t0:.1f} s")


def tidy_rendered_page(page: Path, out: Path) -> None:
    """Make a rendered page fit to publish: the template's title replaced by the experiment's own
    and the original's claim (`design.ORIGINAL`), papermill's injected-parameters cell tagged
    `remove-cell` (the page's table of the parameters used says the same for the reader, and the
    template's own parameters cell stays one click away), and papermill's record of the input and
    output paths made relative to the project, so the book shows no folder of the building machine."""
    from dualenc.design import ORIGINAL

    nb = json.loads(page.read_text())
    experiment = next((e for e in ORIGINAL if e.name == out.stem), None)
    title = next((c for c in nb["cells"] if c["cell_type"] == "markdown"
                  and "".join(c["source"]).startswith("# ")), None)
    if experiment is not None and title is not None:
        title["source"] = [f"# {experiment.title}\n", "\n", f"*The original study's claim:* {experiment.claim}"]
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell["metadata"]["tags"] = [*tags, "remove-cell"]
    record = nb.get("metadata", {}).get("papermill", {})
    record.update(input_path=TEMPLATE.relative_to(ROOT).as_posix(), output_path=relative_to_root(out))
    page.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def relative_to_root(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.name


def generate(profile: str, build_dir: Path, jobs: int, force: bool, cwd: Path) -> None:
    if not TEMPLATE.is_file():
        raise SystemExit(f"missing papermill template {TEMPLATE.relative_to(ROOT)}")
    declared = template_parameters(TEMPLATE)
    pkg = package_digest()
    store = build_dir / ".papermill_cache"
    failed_dir = build_dir / "papermill-failed"
    todo = []
    for exp in EXPERIMENTS:
        params = page_params(exp, profile, declared)
        key = page_key(TEMPLATE, params, pkg)
        out = GENERATED / f"{exp}.ipynb"
        key_file = GENERATED / f"{exp}.key"
        stored = store / f"{key}.ipynb"
        current = key_file.read_text().strip() if key_file.is_file() else ""
        if not force and out.is_file() and current == key:
            log(f"{exp}: unchanged, kept {out.relative_to(ROOT)}")
            continue
        if not force and stored.is_file():
            GENERATED.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stored, out)
            key_file.write_text(key + "\n")
            log(f"{exp}: restored from {stored.relative_to(ROOT)}")
            continue
        todo.append((exp, params, key, out, key_file, stored))
    skipped = sorted(set(PROFILES[profile]) - set(declared))
    if todo and skipped:
        log(f"profile {profile!r}: template does not declare {skipped}; not passed")

    if todo:
        pretrain([params for _, params, *_ in todo], cwd)

    def work(item):
        exp, params, key, out, key_file, stored = item
        log(f"{exp}: papermill {TEMPLATE.relative_to(ROOT)} -> {out.relative_to(ROOT)} {params}")
        key_file.unlink(missing_ok=True)  # a stale key must never vouch for a new page
        run_papermill(TEMPLATE, out, params, cwd, failed_dir)
        store.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, stored)
        key_file.write_text(key + "\n")

    errors = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for fut in [pool.submit(work, item) for item in todo]:
            try:
                fut.result()
            except RuntimeError as exc:
                errors.append(str(exc))
    if errors:
        for err in errors:
            print(err, file=sys.stderr)
        raise SystemExit(f"{len(errors)} experiment page(s) failed to render")


def page_configs(page_params_list: list) -> list:
    """Every seed's config of the pages rendered with these parameters."""
    from dualenc.book import notebook_helpers as nh
    from dualenc.runs.seed_runs import seed_configs

    configs = []
    for params in page_params_list:
        values = {**nh.parameter_defaults(), **{k: v for k, v in params.items() if k in nh.PARAMETERS}}
        configs += seed_configs(nh.config_from_parameters(values), values["seeds"])
    return configs


def pretrain(page_params_list: list, cwd: Path) -> None:
    """Train the seeds of every page to render before the pages run, as one sweep over two worker
    processes (`dualenc.runs.sweep.run_sweep`; a page's seeds are one batch; stale runs trained again, as
    the pages would); the pages then load them. The committed runs of results/book_runs/ are copied
    into the run store first (`dualenc.book.page_runs`): a fresh clone trains none of them."""
    from dualenc.book import notebook_helpers as nh
    from dualenc.book import page_runs
    from dualenc.runs.sweep import run_sweep

    configs = page_configs(page_params_list)
    jobs = max(1, min(PRETRAIN_JOBS, os.cpu_count() or 1))
    start = time.perf_counter()
    previous = os.getcwd()
    os.chdir(cwd)  # the pages resolve the run store from their working directory
    try:
        seeded = page_runs.seed_store(configs, nh.resolve_runs_dir(""), ROOT / page_runs.FOLDER)
        report = run_sweep(configs, root=nh.resolve_runs_dir(""), jobs=jobs, progress=False, retrain_stale=True,
                           accept_copies=True)
    finally:
        os.chdir(previous)
    log(f"pretrained {report.ran} run(s) of {len(page_params_list)} page(s) in {time.perf_counter() - start:.0f} s "
        f"({jobs} worker processes; {report.skipped} already stored, {seeded} of them copied from "
        f"{page_runs.FOLDER})")


def commit_runs(profile: str, cwd: Path) -> None:
    """Write the pages' runs from the run store to results/book_runs/ (after a build made them)."""
    from dualenc.book import notebook_helpers as nh
    from dualenc.book import page_runs

    if profile != "full":
        raise SystemExit(f"--commit-runs writes the full book's runs, not the {profile!r} profile's")
    declared = template_parameters(TEMPLATE)
    configs = page_configs([page_params(exp, profile, declared) for exp in EXPERIMENTS])
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        count = page_runs.commit_runs(configs, nh.resolve_runs_dir(""), ROOT / page_runs.FOLDER)
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None
    finally:
        os.chdir(previous)
    log(f"wrote {count} run(s) to {page_runs.FOLDER} (without their weights)")


# --------------------------------------------------------------------------- step 2


def toc_files(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Every file named in _toc.yml (root first), without extension."""
    import yaml

    data = yaml.safe_load(toc.read_text())
    found = [data["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in data.items() if k != "root"})
    return found


def missing_sources() -> list[str]:
    missing = []
    for name in toc_files():
        if not any((ROOT / f"{name}{ext}").is_file() for ext in (".md", ".ipynb", ".rst")):
            missing.append(name)
    return missing


def reset_if_stale(build_dir: Path, profile: str) -> bool:
    """Undo the caches that cannot see what changed; return True when Sphinx must redo all.

    jupyter-cache keys on a notebook's code only, so it is emptied when the profile, the
    extra parameters or the dualenc sources change, and Sphinx must then re-read every page
    (it would otherwise skip the unchanged notebooks). Sphinx also skips writing, and copying
    static files, when no page changed, so a change to book_static/ asks for a full rebuild.
    """
    stamp_file = build_dir / ".dualenc_book_stamp.json"
    stamp = {"profile": profile, "dualenc": package_digest(),
             "params": os.environ.get(PARAMS_ENV, ""), "static": package_digest(STATIC)}
    old = {}
    if stamp_file.is_file():
        try:
            old = json.loads(stamp_file.read_text())
        except json.JSONDecodeError:
            old = {}
    exec_keys = ("profile", "dualenc", "params")
    fresh = False
    if any(old.get(k) != stamp[k] for k in exec_keys):
        cache = build_dir / ".jupyter_cache"
        if cache.exists():
            log(f"profile, parameters or dualenc changed: emptying {cache}")
            shutil.rmtree(cache)
        fresh = True  # Sphinx must re-read (and so re-execute) the unchanged notebooks
    if old.get("static") != stamp["static"]:
        fresh = True
    if fresh:
        log("rebuilding every page (first build, or profile/dualenc/book_static changed)")
    build_dir.mkdir(parents=True, exist_ok=True)
    # the static part of the stamp is only updated once a build has succeeded (see main)
    stamp_file.write_text(json.dumps({**stamp, "static": old.get("static")}, indent=1) + "\n")
    return fresh


def write_stamp_after_build(build_dir: Path) -> None:
    stamp_file = build_dir / ".dualenc_book_stamp.json"
    stamp = json.loads(stamp_file.read_text())
    stamp["static"] = package_digest(STATIC)
    stamp_file.write_text(json.dumps(stamp, indent=1) + "\n")


def build(path_output: Path, builder: str, fresh: bool) -> int:
    cmd = [
        sys.executable, "-c",
        "from jupyter_book.cli.main import main; main(prog_name='jupyter-book')",
        "build", str(ROOT),
        "--path-output", str(path_output),
        "--builder", builder,
        "-W", "--keep-going",
    ]
    if fresh:
        cmd.append("--all")
    log(" ".join(cmd))
    return subprocess.run(cmd, cwd=ROOT).returncode


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES),
                        default=os.environ.get(PROFILE_ENV, "full") or "full",
                        help=f"parameter profile (default: ${PROFILE_ENV} or 'full')")
    parser.add_argument("--path-output", type=Path, default=ROOT,
                        help="the book goes to PATH/_build/html (default: the repository)")
    parser.add_argument("--builder", default="html", help="jupyter-book builder (default html)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("DUALENC_BOOK_JOBS", 1)),
                        help="experiment pages rendered at once (default 1)")
    parser.add_argument("--force", action="store_true",
                        help="re-execute the experiment pages even when cached")
    parser.add_argument("--all", dest="fresh", action="store_true",
                        help="make Sphinx re-read every page")
    parser.add_argument("--cwd", type=Path, default=ROOT,
                        help="working directory of the papermill kernels (default: repository)")
    step = parser.add_mutually_exclusive_group()
    step.add_argument("--generate-only", action="store_true", help="only step 1")
    step.add_argument("--no-generate", action="store_true", help="only step 2")
    parser.add_argument("--commit-runs", action="store_true",
                        help="after step 1, write the pages' runs to results/book_runs/ (what a fresh "
                             "clone reads instead of training them)")
    args = parser.parse_args(argv)
    if args.profile not in PROFILES:
        parser.error(f"unknown profile {args.profile!r}; choose one of {sorted(PROFILES)}")
    os.environ[PROFILE_ENV] = args.profile  # seen by every kernel, papermill's and myst-nb's
    # Sphinx writes this year into _config.yml's copyright: the footer carries the year of the build
    os.environ.setdefault("SOURCE_DATE_EPOCH", str(int(time.time())))

    path_output = args.path_output.resolve()
    build_dir = path_output / "_build"
    log(f"profile {args.profile!r}, output {build_dir / args.builder}")
    if not args.no_generate:
        generate(args.profile, build_dir, args.jobs, args.force, args.cwd.resolve())
    if args.commit_runs:
        commit_runs(args.profile, args.cwd.resolve())
    if args.generate_only:
        return 0
    missing = missing_sources()
    if missing:
        log("pages named in _toc.yml that do not exist: " + ", ".join(missing))
        return 2
    fresh = reset_if_stale(build_dir, args.profile)
    rc = build(path_output, args.builder, args.fresh or fresh)
    if rc == 0:
        write_stamp_after_build(build_dir)
        log(f"done: {build_dir / args.builder / 'index.html'}")
    else:
        log(f"jupyter-book build failed (exit {rc})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
