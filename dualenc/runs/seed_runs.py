"""The seeds of one setting: config.seed, config.seed + 1, ..., trained together or loaded."""
from __future__ import annotations

from ..config import ConfigError, ExperimentConfig

MAX_SEEDS = 100


def check_seeds(seeds) -> int:
    """`seeds` if it is an integer in [1, MAX_SEEDS], else ConfigError naming it."""
    if not isinstance(seeds, int) or isinstance(seeds, bool) or not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError(f"seeds={seeds!r} is not allowed: expected an integer in [1, {MAX_SEEDS}]")
    return seeds


def seed_configs(config: ExperimentConfig, seeds: int) -> list:
    """The configs of seeds config.seed, config.seed + 1, ... (`seeds` of them)."""
    return [config.replace(seed=config.train.seed + i) for i in range(check_seeds(seeds))]


def seed_records(config: ExperimentConfig, seeds: int, runs_dir, with_weights: bool = False) -> list:
    """The RunRecords of seeds config.seed, config.seed + 1, ...: trained together (or loaded).
    With `with_weights`, runs copied without their weights (the book's committed runs) are trained
    again, to the same measures, with them."""
    from .study import run_group
    from .sweep import group_configs

    return [r for group in group_configs(seed_configs(config, seeds))
            for r in run_group(group, root=runs_dir, progress=False, accept_copies=not with_weights)]
