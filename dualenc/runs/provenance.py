"""What made a run: the code digest and the machine fingerprint.

Both go into every run's training.json and every results-table row. The code digest is a hash of
the `dualenc` source files that a run's numbers depend on: the modules that training, data and
evaluation import, found by following their imports inside the package. A stored run whose digest
differs from today's code is *stale* (see `study.run_status`), unless today's code is declared to
train like it (`EQUIVALENCE_FILE`, written by `dualenc equivalence` after retraining runs of every
arm bitwise).

The machine fingerprint names what decides the floating-point kernels: the CPU model, torch's CPU
capability (`ATEN_CPU_CAPABILITY` can lower it), the oneDNN ISA limit (`ONEDNN_MAX_CPU_ISA`), the
CPU's vector extensions and torch's version. Two runs of the same config, code digest and kernel
fingerprint are bitwise equal; across fingerprints they agree within the measured spread
(`dualenc.runs.replication`).
"""
from __future__ import annotations

import ast
import functools
import hashlib
import os
import platform
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]   # dualenc/
# The modules whose code (with everything they import inside dualenc) makes a run's numbers.
RESULT_MODULES = ("model.train", "data.datasets", "runs.evaluate")
# CPU features that change which kernels torch and oneDNN take (read from /proc/cpuinfo).
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
UNRECORDED = "unrecorded"  # the code digest of a run stored before runs recorded one


def _module_file(name: str) -> Path:
    """The file of dotted module `name` inside dualenc ("" is the package itself)."""
    base = PACKAGE.joinpath(*name.split(".")) if name else PACKAGE
    file = base.with_suffix(".py")
    return file if name and file.is_file() else base / "__init__.py"


def _imported_modules(name: str) -> set:
    """Dotted names of the dualenc modules that module `name` imports, at the top or inside
    functions (a name imported from a package is counted as its submodule where there is one)."""
    file = _module_file(name)
    here = name.split(".") if name else []
    package = here if file.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            target = package[:len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
        elif (node.module or "").split(".")[0] == "dualenc":
            target = node.module.split(".")[1:]
        else:
            continue
        found.add(".".join(target))
        for alias in node.names:       # from . import metrics; from ..data import datasets
            sub = PACKAGE.joinpath(*target, alias.name)
            if sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file():
                found.add(".".join([*target, alias.name]))
    return found


@functools.lru_cache(maxsize=1)
def code_files() -> tuple:
    """The source files a run's numbers depend on, sorted: RESULT_MODULES, their imports, and the
    __init__.py of every package they are in (Python runs it on import)."""
    seen: dict = {}
    todo = list(RESULT_MODULES)
    while todo:
        name = todo.pop()
        file = _module_file(name)
        if name in seen or not file.is_file():
            continue
        seen[name] = file
        parents = [".".join(name.split(".")[:i]) for i in range(len(name.split(".")))]
        todo.extend((_imported_modules(name) | set(parents)) - set(seen))
    return tuple(sorted(set(seen.values())))


def files_digest(files, package: Path = PACKAGE) -> str:
    """SHA-256 over each file's path (relative to `package`) and bytes."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(Path(file).resolve().relative_to(package.resolve()).as_posix().encode() + b"\0")
        digest.update(Path(file).read_bytes() + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """12 hex digits naming the code that trains, renders and evaluates a run."""
    return files_digest(code_files())[:12]


# Code digests declared to train exactly as an earlier one (a change that leaves every arm's runs
# bitwise equal: a moved file, a new arm): checked and written by `dualenc equivalence`.
EQUIVALENCE_FILE = PACKAGE.parent / "results" / "equivalent_code.csv"


def equivalences(path: Path | None = None) -> dict:
    """{code digest: the earlier code digest it trains like} from the declarations file ({} where
    there is none, e.g. an installed package)."""
    path = EQUIVALENCE_FILE if path is None else Path(path)
    if not path.is_file():
        return {}
    import csv
    with open(path, newline="") as f:
        return {row["code_digest"]: row["trains_like"] for row in csv.DictReader(f)}


def training_digest(digest: str, path: Path | None = None) -> str:
    """The earliest code digest that `digest` trains like, following the declarations; a digest
    without one is its own."""
    known, seen = equivalences(path), {digest}
    while digest in known and known[digest] not in seen:
        digest = known[digest]
        seen.add(digest)
    return digest


def same_training(a: str, b: str) -> bool:
    """Whether code digests a and b train alike: equal, or declared equivalent (`EQUIVALENCE_FILE`)."""
    return a == b or (UNRECORDED not in (a, b) and training_digest(a) == training_digest(b))


def _cpuinfo() -> tuple:
    """(CPU model name, its flags) from /proc/cpuinfo, or what `platform` knows elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), set()
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", platform.machine()), set(fields.get("flags", "").split())


def machine() -> dict:
    """This process's machine, as recorded with each run: what picks the kernels, and the threads."""
    import torch

    model, flags = _cpuinfo()
    return {
        "cpu_model": model,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_isa": " ".join(f for f in ISA_FLAGS if f in flags) or "none",
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


# The fields of `provenance()` that choose the floating-point kernels (the thread count does not:
# tests/test_determinism.py trains with 1 and 2 threads and gets the same weights).
KERNEL_FIELDS = ("device", "cpu_model", "cpu_capability", "cpu_isa", "onednn_max_isa", "torch")


def kernel_fingerprint(record: dict) -> str:
    """8 hex digits over KERNEL_FIELDS of a run's training.json: equal fingerprints and code
    digests give bitwise equal runs. UNRECORDED where a field is missing (an older run)."""
    if any(record.get(f) is None for f in KERNEL_FIELDS):
        return UNRECORDED
    text = "\0".join(str(record[f]) for f in KERNEL_FIELDS)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def provenance(device: str = "cpu") -> dict:
    """What training.json records about the code and the machine of a run trained now."""
    record = {"code_digest": code_digest(), "device": device, **machine()}
    return {**record, "kernels": kernel_fingerprint(record)}


# training.json key -> results-table column (the config has a `device` column of its own: "auto").
PROVENANCE_COLUMNS = {"code_digest": "code_digest", "kernels": "kernels", "device": "trained_on",
                      "cpu_model": "cpu_model", "cpu_capability": "cpu_capability", "cpu_isa": "cpu_isa",
                      "onednn_max_isa": "onednn_max_isa", "torch": "torch", "threads": "threads"}


def provenance_row(training: dict) -> dict:
    """A results-table row's provenance columns from a run's training.json (older runs: UNRECORDED),
    and the runs it was trained with (a batch's composition changes its rounding too)."""
    row = {column: training.get(key, UNRECORDED) for key, column in PROVENANCE_COLUMNS.items()}
    row["kernels"] = training.get("kernels") or kernel_fingerprint(training)
    row["trained_with"] = " ".join(training.get("trained_with", [])) or UNRECORDED
    row["compiled"] = training.get("compile", UNRECORDED)
    return row


def same_making(training: dict, row) -> bool:
    """Whether a run (its training.json) was made like a results-table row: same code digest,
    kernel fingerprint, batch, compiled or eager step, and thread count (inductor's generated kernels
    and oneDNN's bf16 convolutions split their reductions by it: tests/test_determinism.py). Then
    the two are bitwise equal."""
    made = provenance_row(training)
    columns = ["kernels", "trained_with", "compiled", "threads"]
    return made["code_digest"] != UNRECORDED and same_training(made["code_digest"], str(row.get("code_digest"))) \
        and all(made[c] != UNRECORDED and str(made[c]) == str(row.get(c)) for c in columns)
