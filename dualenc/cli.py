"""The `dualenc` command: run experiments, preview and export the data, score a run on other
images, list the registry, collect results."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import CAPTION_MODES, LOSSES, ConfigError, ExperimentConfig, config_hash, from_dict
from .design import ORIGINAL_EXPERIMENTS
from .runs.sweep import MAX_MODELS

# Flags of `dualenc run` that map straight onto config fields (flag -> field).
RUN_FLAGS = {
    "bias": (float, "share of each minority group's training images removed, 0..1"),
    "captions": (str, f"caption mode: {', '.join(CAPTION_MODES)}"),
    "descriptive_share": (float, "share of training captions that are descriptive, 0..1"),
    "caption_templates": (int, "paraphrases per group, 1..4 (1 = the original's strings)"),
    "loss": (str, f"training loss: {', '.join(LOSSES)}"),
    "seed": (int, "seed: initialisation, batch order and the data draw"),
    "steps": (int, "optimizer steps (the budget; the same in every arm of a comparison)"),
    "precision": (str, "bf16 (autocast, fp32 master weights) or fp32"),
    "image_size": (int, "image size in pixels"),
    "data_dir": (str, "your own images: <root>/<animal>_<background>/*.png|jpg, or a CSV manifest; "
                      "splits it declares (train/ val/ test/ folders, a split column) are kept"),
    "device": (str, "auto, cpu or cuda"),
}


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    from .runs.study import get_experiment

    if args.experiment and args.config:
        raise ConfigError("give either an experiment name or --config, not both")
    if args.config:
        config = from_dict(json.loads(Path(args.config).read_text()))
    elif args.experiment:
        config = get_experiment(args.experiment)
    else:
        config = ExperimentConfig(name="custom")
    changes = {k: getattr(args, k) for k in RUN_FLAGS if getattr(args, k) is not None}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r} is not KEY=VALUE (e.g. --set model.vision.depth=3)")
        changes[key] = _parse_value(value)
    if args.skip_unreadable:
        changes["skip_unreadable"] = True
    return config.replace(**changes) if changes else config


def format_metrics(metrics: dict) -> str:
    """A two-column table of the run's metrics that the registry shows in the CLI, in its order."""
    from .runs.metric_registry import format_value, names

    rows = [(name, format_value(name, metrics[name])) for name in names(shown_in="cli") if name in metrics]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    lines += [f"{name:<{width}}  {shown}" for name, shown in rows]
    return "\n".join(lines)


def format_seed_summary(records: list) -> str:
    """Mean and 95% interval (percentile bootstrap over seeds) of each number of the CLI's table
    that measures the model (not the data or the training run)."""
    from .runs.metric_registry import model_measures
    from .runs.metrics import bootstrap_ci

    keys = [k for k in model_measures(shown_in="cli") if all(k in r.metrics for r in records)]
    width = max(len(k) for k in keys)
    lines = [f"{'metric':<{width}}  mean   95% interval over {len(records)} seeds",
             f"{'-' * width}  -----  ------------"]
    for key in keys:
        mean, low, high = bootstrap_ci([r.metrics[key] for r in records])
        lines.append(f"{key:<{width}}  {mean:.3f}  [{low:.3f}, {high:.3f}]")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from .runs.study import run_dir, run_experiment, run_group
    from .runs.sweep import group_configs
    from .runs.transfer import list_test_entries

    config = config_from_args(args)
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"--seeds={args.seeds} is not allowed: expected an integer >= 1")
    for test_dir in args.test_dir or []:
        list_test_entries(test_dir)  # a bad folder fails before training, not after
    if args.seeds is None or args.seeds == 1:
        record = run_experiment(config, root=args.runs, progress=not args.quiet, force=args.force)
        print(f"experiment {config.name or '(unnamed)'}  config {config_hash(config)}")
        print(format_metrics(record.metrics))
        print(f"run directory: {run_dir(config, args.runs)}")
        _print_transfers(run_dir(config, args.runs), args)
        return 0
    configs = [config.replace(seed=config.train.seed + i) for i in range(args.seeds)]
    records = [r for group in group_configs(configs, args.max_models)
               for r in run_group(group, root=args.runs, progress=not args.quiet, force=args.force)]
    print(f"experiment {config.name or '(unnamed)'}  seeds {configs[0].train.seed}..{configs[-1].train.seed} "
          f"(trained together, at most {args.max_models} per batch)")
    print(format_seed_summary(records))
    for c in configs:
        print(f"run directory (seed {c.train.seed}): {run_dir(c, args.runs)}")
    for c in configs:
        _print_transfers(run_dir(c, args.runs), args)
    return 0


def _print_transfers(path: Path, args: argparse.Namespace) -> None:
    from .runs.transfer import evaluate_on_folder

    on_error = "warn" if args.skip_unreadable else "raise"
    for test_dir in args.test_dir or []:
        print(evaluate_on_folder(path, test_dir, on_error=on_error).report())


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .runs.study import runs_root

    path = Path(args.run_dir)
    if not path.is_dir() and (runs_root(args.runs) / args.run_dir).is_dir():
        path = runs_root(args.runs) / args.run_dir  # a run id in the store
    _print_transfers(path, args)
    return 0


def cmd_export_data(args: argparse.Namespace) -> int:
    from .data.export import export_dataset

    config = config_from_args(args)
    report = export_dataset(config, args.out, force=args.force, progress=not args.quiet)
    print(report.summary())
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from .data.render import contact_sheet

    config = ExperimentConfig()
    changes = {"image_size": args.image_size}
    if args.similarity is not None:
        changes["animal_similarity"] = args.similarity
    config = config.replace(**changes)
    sheet = contact_sheet(config.data, per_group=args.per_group, seed=args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .runs.study import DESCRIPTIONS, REGISTRY

    for name, config in REGISTRY.items():
        print(f"{name}  {config_hash(config)}  {DESCRIPTIONS[name]}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from .runs.study import write_results
    from .runs.sweep import get_grid

    runs = {config_hash(c) for c in get_grid(args.grid)} if args.grid else None
    table, paths = write_results(args.runs, args.out, runs=runs, merge=args.merge, mixed_code=args.mixed_code)
    print(f"{len(table)} finished runs -> {', '.join(str(p) for p in paths)}")
    return 0


def cmd_mechanism(args: argparse.Namespace) -> int:
    from .runs.mechanism import collect_mechanism
    from .runs.study import write_table
    from .runs.sweep import get_grid

    runs = {config_hash(c) for c in get_grid(args.grid)} if args.grid else None
    table = collect_mechanism(args.runs, runs=runs)
    write_table(table, args.out)
    print(f"{len(table)} runs with a text tower -> {args.out}")
    if args.cue_conflict_out:
        from .runs.cue_conflict import collect_cue_conflict

        cues = collect_cue_conflict(args.runs, runs=runs)
        write_table(cues, args.cue_conflict_out)
        print(f"{len(cues)} runs asked on cue-conflict and grey images -> {args.cue_conflict_out}")
    return 0


def cmd_equivalence(args: argparse.Namespace) -> int:
    from .runs.equivalence import main

    return main(args.runs, args.per_arm, args.jobs, command=" ".join(["dualenc", *sys.argv[1:]]))


def cmd_curves(args: argparse.Namespace) -> int:
    from .runs.curves import run_curves

    table = run_curves(args.runs, args.out, args.grid_table, jobs=args.jobs, progress=not args.quiet)
    print(f"{len(table)} curve rows written to {args.out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .runs.study import run_dir, run_status
    from .runs.sweep import get_grid, run_sweep

    configs = get_grid(args.grid)
    if args.list:
        for config in configs:
            status = run_status(run_dir(config, args.runs)).replace("missing", "todo")
            print(f"{config_hash(config)}  {status:5}  {config.name}  bias={config.data.bias} "
                  f"captions={config.data.captions} share={config.data.descriptive_share} "
                  f"templates={config.data.caption_templates} loss={config.train.loss} seed={config.train.seed}")
        return 0
    done = set()
    if args.table:
        import pandas as pd
        if not Path(args.table).is_file():
            raise ConfigError(f"--table {args.table!r} does not exist")
        done = set(pd.read_csv(args.table)["run"])
    report = run_sweep(configs, root=args.runs, jobs=args.jobs, scheduler=args.scheduler,
                       progress=not args.quiet, max_models=args.max_models, done=done,
                       retrain_stale=args.retrain_stale)
    print(f"grid {args.grid}: {report.total} configs, {report.skipped} already done, "
          f"{report.ran} run in {report.seconds:.1f} s")
    if report.stale:
        print(f"{report.stale} stored runs were made by other code (stale) and kept as they are: "
              "--retrain-stale trains them again with today's code")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dualenc", description=(
        "Train and evaluate toy CLIP-style dual encoders on horses and camels, biased or not."))
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and evaluate one experiment (or load it if already run)",
                         description=f"Run a registry experiment ({ORIGINAL_EXPERIMENTS[0]}.."
                                     f"{ORIGINAL_EXPERIMENTS[-1]}) or a custom config; "
                                     "prints the metrics and the run directory.")
    run.add_argument("experiment", nargs="?",
                     help=f"registry name, e.g. {ORIGINAL_EXPERIMENTS[-2]} (see `dualenc list`)")
    _add_config_arguments(run)
    run.add_argument("--test-dir", action="append", metavar="DIR",
                     help="after training, also score each run on this image folder or CSV manifest "
                          "(repeatable; see `dualenc evaluate`)")
    run.add_argument("--runs", help="run store directory (default: $DUALENC_RUNS, else runs/ at the project root)")
    run.add_argument("--force", action="store_true", help="train again even if the run is stored")
    run.add_argument("--seeds", type=int, help="train this many seeds (seed, seed+1, ...) together and "
                     "report mean and 95%% interval")
    run.add_argument("--max-models", type=int, default=MAX_MODELS,
                     help="models trained together in one batch (default %(default)s)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=cmd_run)

    preview = sub.add_parser("preview", help="write a contact sheet of the generated images",
                             description="One row per group: horse-grass, horse-desert, camel-desert, camel-grass.")
    preview.add_argument("--out", default="sheet.png", help="output PNG (default sheet.png)")
    preview.add_argument("--per-group", type=int, default=8, help="images per row (default 8)")
    preview.add_argument("--image-size", type=int, default=64, help="image size in pixels (default 64)")
    preview.add_argument("--similarity", type=float, help="animal_similarity 0..1 (difficulty)")
    preview.add_argument("--seed", type=int, default=0, help="render seed (default 0)")
    preview.set_defaults(func=cmd_preview)

    evaluate = sub.add_parser("evaluate", help="score a stored run on another image folder (transfer)",
                              description="Scores a finished run on every image of a folder "
                                          "(<root>/<animal>_<background>/*.png|jpg) or CSV manifest: per-group, "
                                          "average and worst-group accuracy with both prompt sets (or the "
                                          "classifier head). Stored in RUN_DIR/transfer/; metrics.json is untouched.")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, or a run id in the run store")
    evaluate.add_argument("--test-dir", action="append", metavar="DIR", required=True,
                          help="image folder or CSV manifest to score on (repeatable)")
    evaluate.add_argument("--skip-unreadable", action="store_true",
                          help="warn and skip unreadable images instead of stopping")
    evaluate.add_argument("--runs", help="run store for a run id (default: $DUALENC_RUNS, else runs/)")
    evaluate.set_defaults(func=cmd_evaluate)

    export = sub.add_parser("export-data", help="write a config's train/val/test images as PNG files",
                            description="Writes OUT/<split>/<animal>_<background>/NNN.png (the training split "
                                        "biased) and OUT/manifest.csv; --data-dir OUT, OUT/manifest.csv or "
                                        "OUT/<split> reads them back.")
    export.add_argument("out", metavar="OUT", help="a new or empty folder, e.g. data/procedural")
    export.add_argument("--experiment", help=f"start from a registry experiment, e.g. {ORIGINAL_EXPERIMENTS[-2]}")
    _add_config_arguments(export)
    export.add_argument("--force", action="store_true", help="replace an earlier export in OUT")
    export.add_argument("--quiet", action="store_true", help="no progress bars")
    export.set_defaults(func=cmd_export_data)

    listing = sub.add_parser("list", help="list the registry's experiments")
    listing.set_defaults(func=cmd_list)

    sweep = sub.add_parser("sweep", help="run every config of a named grid not yet in the run store",
                           description="Runs a grid (default: the study's full grid; ci: a tiny one). "
                                       "Finished runs are skipped, so an interrupted sweep resumes.")
    sweep.add_argument("grid", nargs="?", default="default", help="grid name: default or ci")
    sweep.add_argument("--jobs", type=int, default=1,
                       help="worker processes, one torch thread each (default 1: in this process)")
    sweep.add_argument("--scheduler", help="a Dask scheduler address (tcp://host:8786) to run on instead")
    sweep.add_argument("--runs", help="run store directory (default: $DUALENC_RUNS, else runs/ at the project root)")
    sweep.add_argument("--list", action="store_true", help="list the grid's configs and whether each is done")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.add_argument("--table", help="a results table (e.g. results/default.csv) whose runs count as done: "
                       "continue a grid begun elsewhere; then `dualenc collect --grid G --out TABLE --merge`")
    sweep.add_argument("--max-models", type=int, default=MAX_MODELS,
                       help="seeds of a setting trained together in one batch (default %(default)s)")
    sweep.add_argument("--retrain-stale", action="store_true",
                       help="train again the stored runs that other code made (another code digest)")
    sweep.set_defaults(func=cmd_sweep)

    coll = sub.add_parser("collect", help="gather every finished run into one table (CSV and Parquet)")
    coll.add_argument("--runs", help="run store directory (default: $DUALENC_RUNS, else runs/ at the project root)")
    coll.add_argument("--out", default="results/results.csv",
                      help="output CSV; a .parquet file is written beside it")
    coll.add_argument("--grid", help="keep only this grid's runs (e.g. default, with --out results/default.csv)")
    coll.add_argument("--merge", action="store_true",
                      help="keep the rows already in --out whose runs this store lacks (a table grown over machines)")
    coll.add_argument("--mixed-code", action="store_true",
                      help="write rows made by different code (code digests) into one table anyway")
    coll.set_defaults(func=cmd_collect)

    mech = sub.add_parser("mechanism", help="caption similarities and nearest captions of every finished run "
                                            "(results/mechanism.csv), cue conflicts (results/cue_conflict.csv)")
    mech.add_argument("--runs", help="run store directory (default: $DUALENC_RUNS, else runs/ at the project root)")
    mech.add_argument("--out", default="results/mechanism.csv", help="output CSV")
    mech.add_argument("--grid", help="keep only this grid's runs (e.g. default)")
    mech.add_argument("--cue-conflict-out", default="results/cue_conflict.csv",
                      help="also ask the core arms' runs on cue-conflict and grey test images, into this CSV "
                           "('' to skip)")
    mech.set_defaults(func=cmd_mechanism)

    equiv = sub.add_parser("equivalence", help="train one stored batch of every arm again with today's code and, "
                                                "if all are bitwise equal, declare that it trains like the stored runs")
    equiv.add_argument("--runs", help="run store directory (default: $DUALENC_RUNS, else runs/ at the project root)")
    equiv.add_argument("--per-arm", type=int, default=1, help="stored batches to train again per arm (default 1)")
    equiv.add_argument("--jobs", type=int, default=1, help="batches trained at once, one thread each (default 1)")
    equiv.set_defaults(func=cmd_equivalence)

    curves = sub.add_parser("curves", help="learning curves: the curve arms at bias 0, 0.75 and 0.9 trained to "
                                           "every budget of design.CURVE_BUDGETS, and on at bias 0 while an "
                                           "arm's validation accuracy still rises (results/curves.csv)")
    curves.add_argument("--runs", help="run store directory (default: $DUALENC_RUNS, else runs/ at the project root)")
    curves.add_argument("--out", default="results/curves.csv", help="output CSV")
    curves.add_argument("--grid-table", default="results/default.csv",
                        help="the grid's results table: its runs at the study's budget are read, not trained")
    curves.add_argument("--jobs", type=int, default=1, help="batches trained at once, one thread each (default 1)")
    curves.add_argument("--quiet", action="store_true", help="no progress bar")
    curves.set_defaults(func=cmd_curves)
    return parser


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--config, the RUN_FLAGS, --set and --skip-unreadable (read by `config_from_args`)."""
    parser.add_argument("--config", help="a JSON config file (as saved in a run's config.json)")
    for flag, (kind, text) in RUN_FLAGS.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=kind, help=text)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="any other config field, e.g. --set model.vision.depth=3 (repeatable)")
    parser.add_argument("--skip-unreadable", action="store_true",
                        help="with --data-dir or --test-dir: warn and skip unreadable images instead of stopping")


def main(argv: list | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"dualenc: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
