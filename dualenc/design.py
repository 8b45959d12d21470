"""The study declared as data: its arms, bias levels, grid blocks and the original's four experiments.

Everything above the run store reads the study from here: the sweep builds its grid and its order,
`collect` names each results row's arm, and the analysis, tables, figures and the calibration take
arms, labels, colours, markers and levels from it. Adding an arm is one `Arm` entry in ARMS and its
name in a `Block` (plus its prose); adding a bias level is one `Level` entry (and its name in a level
set). Nothing here trains or reads a run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .config import ConfigError, ExperimentConfig

# The original's example keeps 12 of 48 minority images ("25% bias"): 75% of them removed.
ORIGINAL_BIAS = 0.75
STRONG_BIAS = 0.9
ROLES = ("unbiased", "orig", "strong")   # the levels the verdict reads, by role


@dataclass(frozen=True)
class Arm:
    """One arm of the study: a loss with a caption setting, trained at every level of its blocks."""
    name: str                      # the one name: results rows' `arm`, selections, calibration methods
    label: str                     # for readers (legends, tables)
    loss: str
    captions: str = "undescriptive"
    descriptive_share: float = 1.0
    caption_templates: int = 1
    colour: str = "0.45"           # a matplotlib colour; the caption setting's, shared across losses
    marker: str = "o"              # the loss's
    core: bool = False             # trained first, at the key levels (the question's arms and controls)
    curve: bool = False            # then through every level of the bias curve
    calibrated: bool = False       # its budget is checked by the calibration (`dualenc.runs.calibration`)

    @property
    def variant(self) -> str:
        """The caption setting's name, shared by the losses: "descriptive", "background", ..."""
        if self.loss == "image_only":
            return "image_only"
        if self.captions != "descriptive":
            return self.captions
        return ("descriptive" + (f"_share_{self.descriptive_share:g}" if self.descriptive_share < 1 else "")
                + (f"_templates_{self.caption_templates}" if self.caption_templates > 1 else ""))

    @property
    def changes(self) -> dict:
        """The config changes that make a config this arm's."""
        return {"loss": self.loss, "captions": self.captions, "descriptive_share": self.descriptive_share,
                "caption_templates": self.caption_templates}

    def matches(self, loss: str, captions: str, descriptive_share: float, caption_templates: int) -> bool:
        if self.loss == "image_only":   # no text tower: the captions do not make another arm
            return loss == "image_only"
        return (loss, captions, float(descriptive_share), int(caption_templates)) == \
            (self.loss, self.captions, float(self.descriptive_share), int(self.caption_templates))


# colorblind palette (seaborn "colorblind"), by caption setting
_BLUE, _ORANGE, _GREEN, _RED, _PURPLE, _BROWN = "#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161"
HORSE_CAMEL = '"horse" / "camel"'

ARMS = {arm.name: arm for arm in (
    Arm("pairwise_undescriptive", HORSE_CAMEL, "pairwise", colour=_BLUE, core=True, curve=True, calibrated=True),
    Arm("pairwise_descriptive", "descriptive", "pairwise", "descriptive", colour=_ORANGE, core=True, curve=True,
        calibrated=True),
    Arm("pairwise_descriptive_share_0.5", "descriptive, share 0.5", "pairwise", "descriptive", 0.5,
        colour=_GREEN),
    Arm("pairwise_background", "background only", "pairwise", "background", colour=_RED, core=True),
    # the descriptive arm's structure (four captions, one true of an image) naming an attribute that is
    # not spurious: the animal's size
    Arm("pairwise_size", "size (control)", "pairwise", "size", colour=_BROWN, marker="v", core=True, curve=True,
        calibrated=True),
    Arm("pairwise_descriptive_templates_4", "descriptive, 4 templates", "pairwise", "descriptive",
        caption_templates=4, colour=_PURPLE),
    Arm("image_only", "image-only baseline", "image_only", marker="D", core=True, curve=True, calibrated=True),
    Arm("clip_undescriptive", HORSE_CAMEL, "clip", colour=_BLUE, marker="s", calibrated=True),
    Arm("clip_descriptive", "descriptive", "clip", "descriptive", colour=_ORANGE, marker="s", calibrated=True),
    Arm("siglip_undescriptive", HORSE_CAMEL, "siglip", colour=_BLUE, marker="^", calibrated=True),
    Arm("siglip_descriptive", "descriptive", "siglip", "descriptive", colour=_ORANGE, marker="^", calibrated=True),
)}
# The arms that answer the question: descriptive captions against "horse" / "camel" (pairwise loss).
QUESTION = ("pairwise_descriptive", "pairwise_undescriptive")


@dataclass(frozen=True)
class Level:
    """A bias level (share of minority training images removed) and where a sweep runs it."""
    bias: float
    tier: int                      # 0: key levels, first; 1: next; 2: the rest of the curve
    role: Optional[str] = None     # one of ROLES where the verdict reads it


# In the order a sweep runs them; dense where worst-group accuracy falls (between 0.5 and 1).
LEVELS = (Level(ORIGINAL_BIAS, 0, "orig"), Level(0.0, 0, "unbiased"), Level(STRONG_BIAS, 0, "strong"),
          Level(0.5, 1), Level(1.0, 1), Level(0.95, 2), Level(0.85, 2), Level(0.8, 2), Level(0.7, 2),
          Level(0.6, 2), Level(0.25, 2))
BIAS_LEVELS = tuple(sorted(level.bias for level in LEVELS))
FEW_BIAS_LEVELS = (0.0, 0.5, ORIGINAL_BIAS, STRONG_BIAS, 1.0)   # the axes that cannot afford every level
LEVEL_SETS = {"all": BIAS_LEVELS, "few": FEW_BIAS_LEVELS, "variability": (0.0, ORIGINAL_BIAS)}
DATA_SIZES = (192, 768)            # training images per group beside the base 48 (the data-size block)
SEEDS = tuple(range(5))            # data draws


@dataclass(frozen=True)
class Block:
    """A part of the grid: its arms at each level of a level set (and, if given, each data size).
    `family` is the config name of its runs; blocks run in ARMS order within a stage, `priority` apart."""
    family: str
    arms: tuple
    levels: str                    # a key of LEVEL_SETS
    priority: int                  # order among blocks at one level
    core: bool = False             # its core arms run first (`Arm.core`), its curve arms next
    sizes: tuple = ()              # n_train_per_group values; () the base size
    early: bool = False            # its runs at the original's bias come right after the core arms


BLOCKS = (
    Block("captions", ("pairwise_undescriptive", "pairwise_descriptive", "pairwise_descriptive_share_0.5",
                       "pairwise_background", "pairwise_size"), "all", priority=2, core=True),
    Block("image_only", ("image_only",), "all", priority=4, core=True),
    Block("losses", ("clip_undescriptive", "clip_descriptive", "siglip_undescriptive", "siglip_descriptive"),
          "few", priority=0),
    Block("variability", ("pairwise_descriptive_templates_4",), "variability", priority=3),
    Block("data_size", ("pairwise_undescriptive", "pairwise_descriptive"), "few", priority=1, sizes=DATA_SIZES,
          early=True),
)



# The strong-bias levels: from the original's bias up to, not including, 1 (at 1 no minority image is
# left to learn from and worst-group accuracy is at its floor in every arm).
STRONG_LEVELS = tuple(b for b in BIAS_LEVELS if ORIGINAL_BIAS <= b < 1.0)


# Learning curves (`dualenc curves`, results/curves.csv): the question's arms and the size control at
# the verdict's levels, every seed trained to each budget (each budget a whole schedule); the study's
# budget is the first. An arm's own converged budget is read from these at bias 0, on validation: an
# arm whose last doubling there still gained more than the calibration's tolerance is trained on at
# bias 0, a doubling at a time, up to CURVE_MAX_STEPS (`runs.curves.plateau_extensions`).
CURVE_ARMS = ("pairwise_undescriptive", "pairwise_descriptive", "pairwise_size")
CURVE_BUDGETS = {0.0: (1000, 2000), ORIGINAL_BIAS: (1000, 2000), STRONG_BIAS: (1000, 2000)}   # level -> budgets
CURVE_MAX_STEPS = 4000


@dataclass(frozen=True)
class PrimaryTest:
    """The study's one primary test, declared before the results: the bias x caption interaction.

    Per seed (a data draw), `arm` minus `baseline` on `metric`, averaged over `levels`, minus the
    same difference at `reference` (no bias). Its 95% Student-t interval over seeds decides it; the
    claim tested is the original's, that bias makes descriptive captions help (expected +1). Every
    other comparison is secondary; the per-level family carries Holm's correction."""
    arm: str
    baseline: str
    metric: str
    levels: tuple
    reference: float = 0.0
    expected: int = 1


PRIMARY = PrimaryTest(*QUESTION, "worst_group_acc", STRONG_LEVELS)


def arm_tables() -> dict:
    """The sweep page's tables of arms against bias: name -> arms, in row order (from BLOCKS)."""
    def block(family: str) -> tuple:
        return next((b.arms for b in BLOCKS if b.family == family), ())
    return {"captions": tuple(dict.fromkeys(a for b in BLOCKS if b.core for a in b.arms)),
            "losses": (*QUESTION[::-1], *block("losses"), "image_only"),
            "variability": (*QUESTION[::-1], *block("variability"))}


@dataclass(frozen=True)
class OriginalExperiment:
    """One of the original blog's four experiments, and the claim it made."""
    name: str
    arm: str
    bias: float
    claim: str

    @property
    def title(self) -> str:
        """The page's title: 'Experiment 3: bias 0.75, "horse" / "camel" captions'."""
        return f"Experiment {self.name.removeprefix('exp')}: bias {self.bias:g}, {ARMS[self.arm].label} captions"


ORIGINAL = (
    OriginalExperiment("exp1", "pairwise_undescriptive", 0.0,
                       'Without bias and with "horse" / "camel" captions, the model separates horses from camels, '
                       "with some confusion on the minority groups."),
    OriginalExperiment("exp2", "pairwise_descriptive", 0.0,
                       "With descriptive captions the embeddings also cluster by context (the background)."),
    OriginalExperiment("exp3", "pairwise_undescriptive", ORIGINAL_BIAS,
                       "Bias sharpens the majority groups, at the minority groups' expense."),
    OriginalExperiment("exp4", "pairwise_descriptive", ORIGINAL_BIAS,
                       "Under bias, descriptive captions help the minority group horse in desert."),
)
ORIGINAL_EXPERIMENTS = tuple(e.name for e in ORIGINAL)


@dataclass(frozen=True)
class ArmComparison:
    """A comparison the verdict makes: arm minus baseline, paired by seed, on a set of measures
    (`comparisons.MEASURE_SETS`), at the levels of `roles`; `key` prefixes its glue names."""
    key: str
    arm: str
    baseline: str
    measures: str
    roles: tuple = ROLES
    arm_words: str = "descriptive captions"          # how its sentences name the two arms
    baseline_words: str = '"horse" / "camel" captions'


COMPARISONS = (
    ArmComparison("cap", *QUESTION, "caption"),        # the question
    ArmComparison("bg", "pairwise_background", "pairwise_undescriptive", "background",
                  arm_words="background-only captions"),
    ArmComparison("ctl", "pairwise_size", "pairwise_undescriptive", "caption", arm_words="size captions (control)"),
    ArmComparison("dvc", "pairwise_descriptive", "pairwise_size", "caption",
                  baseline_words="size captions (control)"),
    ArmComparison("clip", "clip_descriptive", "clip_undescriptive", "worst_group", ("orig", "strong"),
                  "descriptive captions (clip)", '"horse" / "camel" captions (clip)'),
    ArmComparison("siglip", "siglip_descriptive", "siglip_undescriptive", "worst_group", ("orig", "strong"),
                  "descriptive captions (siglip)", '"horse" / "camel" captions (siglip)'),
)


def arm(name: str) -> Arm:
    if name not in ARMS:
        raise ConfigError(f"arm={name!r} is not declared: expected one of {sorted(ARMS)}")
    return ARMS[name]


def arm_of(loss: str, captions: str, descriptive_share: float, caption_templates: int) -> Optional[str]:
    """The name of the declared arm with these settings, or None (a setting no arm declares)."""
    return next((a.name for a in ARMS.values() if a.matches(loss, captions, descriptive_share, caption_templates)),
                None)


def arm_of_config(config: ExperimentConfig) -> Optional[str]:
    d = config.data
    return arm_of(config.train.loss, d.captions, d.descriptive_share, d.caption_templates)


def level(bias: float) -> Optional[Level]:
    return next((lv for lv in LEVELS if abs(lv.bias - bias) < 1e-9), None)


def role_levels() -> dict:
    """role -> bias level: {"unbiased": 0.0, "orig": 0.75, "strong": 0.9}."""
    return {lv.role: lv.bias for lv in LEVELS if lv.role}


def experiment_config(experiment: OriginalExperiment, base: Optional[ExperimentConfig] = None) -> ExperimentConfig:
    """The config of one of the original's experiments (named by it)."""
    base = base or ExperimentConfig()
    return base.replace(name=experiment.name, bias=experiment.bias, **arm(experiment.arm).changes)


__all__ = ["ORIGINAL_BIAS", "STRONG_BIAS", "ROLES", "Arm", "ARMS", "QUESTION", "Level", "LEVELS", "BIAS_LEVELS",
           "FEW_BIAS_LEVELS", "LEVEL_SETS", "STRONG_LEVELS", "CURVE_ARMS", "CURVE_BUDGETS", "CURVE_MAX_STEPS", "PrimaryTest", "PRIMARY", "DATA_SIZES", "SEEDS",
           "Block", "BLOCKS", "arm_tables",
           "OriginalExperiment", "ORIGINAL", "ORIGINAL_EXPERIMENTS", "ArmComparison", "COMPARISONS", "arm", "arm_of",
           "arm_of_config", "level", "role_levels", "experiment_config"]
