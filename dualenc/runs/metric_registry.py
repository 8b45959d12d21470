"""The metric registry: every metric a run stores, with how it is computed and how it is shown.

An entry (`Metric`) holds a metric's name (its key in a run's metrics.json and its column in the
results table), a label for readers, a format, a section, whether higher is better, and the
function that computes it from an `evaluate.RunOutputs` (a trained model's outputs on the splits,
each computed once). `evaluate.evaluate` fills metrics.json by walking the registry in order; the
CLI's table, the explorer's panel, the notebook tables and the results page read names, labels,
formats and order from here.

Adding a metric is two edits: the function that computes it (in `metrics`, numpy only) and its
entry below (`register(Metric(...))`, whose `compute` calls that function on the run's outputs).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from . import metrics
from ..config import GROUP_LABELS, GROUP_NAMES

# section -> what its metrics are about; the registry's order follows this one
SECTIONS = {
    "accuracy": "test accuracy with the run's headline prompts (or its classifier head)",
    "zs_class": 'zero-shot test accuracy with the prompts "horse" / "camel"',
    "zs_pooled": "zero-shot test accuracy with the four descriptive captions",
    "probes": "linear probes on the trained image embeddings",
    "reference_probes": "linear probes on raw pixels and on an untrained encoder",
    "silhouettes": "how the embeddings cluster (silhouettes)",
    "training_data": "the training images loaded",
    "training_run": "how the model was trained",
    "calibration": "validation accuracy, for choosing the budget (results/calibration.csv only)",
    "mechanism": "caption embeddings and nearest captions (results/mechanism.csv only: dualenc.runs.mechanism)",
}
# the sections that measure the model; the others describe its setup (data, training, calibration)
MODEL_SECTIONS = ("accuracy", "zs_class", "zs_pooled", "probes", "reference_probes", "silhouettes")
SHORT_TABLES = ("cli", "panel")  # `dualenc run`'s table; the explorer's run summary
TEXT_FORMATS = ("group", "s")    # formats of values that are names, not numbers
STORED_IN = ("run", "calibration", "mechanism")  # a run's metrics.json; the calibration and mechanism tables
ACCURACY, SIGNED = (0.0, 1.0), (-1.0, 1.0)   # the ranges of accuracies and of differences, cosines, silhouettes
CHANCE = 0.5                                 # accuracy of a guess between two classes (animals, backgrounds)


@dataclass(frozen=True)
class Metric:
    name: str                                  # key in metrics.json, column of the results table
    label: str                                 # for readers: axis titles, table rows
    section: str                               # one of SECTIONS
    compute: Callable[[Any], Any]              # evaluate.RunOutputs -> the value
    fmt: str = ".3f"                           # format spec of the value; "group": a group name
    higher_is_better: Optional[bool] = None    # None: neither (a count, a time, a name)
    shown_in: tuple = ()                       # which of SHORT_TABLES show it
    needs_text: bool = False                   # only models with a text tower have it (not image-only)
    stored_in: str = "run"                     # one of STORED_IN
    range: Optional[tuple] = None              # (lowest, highest) value it can take; None: unbounded
    chance: Optional[float] = None             # its value for a guess, where that means something

    def __post_init__(self) -> None:
        if self.section not in SECTIONS:
            raise ValueError(f"metric {self.name!r}: section={self.section!r} is not one of {list(SECTIONS)}")
        unknown = sorted(set(self.shown_in) - set(SHORT_TABLES))
        if unknown:
            raise ValueError(f"metric {self.name!r}: shown_in has {unknown}, expected some of {SHORT_TABLES}")
        if self.stored_in not in STORED_IN:
            raise ValueError(f"metric {self.name!r}: stored_in={self.stored_in!r} is not one of {STORED_IN}")
        if self.range is not None and not (len(self.range) == 2 and self.range[0] < self.range[1]):
            raise ValueError(f"metric {self.name!r}: range={self.range!r} is not a (lowest, highest) pair")

    @property
    def is_number(self) -> bool:
        return self.fmt not in TEXT_FORMATS

    def show(self, value) -> str:
        """The value as a table shows it: a group by its label, a number in `fmt`, NaN as "-"."""
        if self.fmt == "group":
            return GROUP_LABELS.get(value, str(value))
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return str(value)
        if math.isnan(value):
            return "-"
        if self.fmt.endswith("d"):  # a count; a mean of counts over seeds keeps one decimal
            return format(int(value), self.fmt) if float(value).is_integer() else format(float(value), ".1f")
        return format(value, self.fmt)


METRIC_REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add `metric` at the end of its section (so the registry stays in SECTIONS order)."""
    if metric.name in METRIC_REGISTRY:
        raise ValueError(f"metric {metric.name!r} is registered twice")
    entries = [*METRIC_REGISTRY.values()]
    position = max((i + 1 for i, m in enumerate(entries)
                    if list(SECTIONS).index(m.section) <= list(SECTIONS).index(metric.section)), default=0)
    entries.insert(position, metric)
    METRIC_REGISTRY.clear()
    METRIC_REGISTRY.update((m.name, m) for m in entries)
    return metric


# ---------------------------------------------------------------- accessors


def get_metric(name: str) -> Metric:
    if name not in METRIC_REGISTRY:
        raise KeyError(f"metric {name!r} is not registered: see dualenc.runs.metric_registry")
    return METRIC_REGISTRY[name]


def label_of(name: str) -> str:
    return get_metric(name).label


def format_value(name: str, value) -> str:
    """`value` of metric `name` as tables show it (see `Metric.show`)."""
    return get_metric(name).show(value)


def names(section: Optional[str] = None, shown_in: Optional[str] = None, stored_in: Optional[str] = "run",
          needs_text: Optional[bool] = None) -> list[str]:
    """Registered names in registry order, filtered by section, short table, where they are stored
    (None: anywhere) and whether they need a text tower (None: either)."""
    return [m.name for m in METRIC_REGISTRY.values()
            if (section is None or m.section == section) and (shown_in is None or shown_in in m.shown_in)
            and (stored_in is None or m.stored_in == stored_in)
            and (needs_text is None or m.needs_text == needs_text)]


def model_measures(shown_in: Optional[str] = None) -> list[str]:
    """The numbers that measure the model (MODEL_SECTIONS, no names such as worst_group) in
    registry order: what is averaged over seeds and compared between settings."""
    return [n for n in names(shown_in=shown_in)
            if METRIC_REGISTRY[n].section in MODEL_SECTIONS and METRIC_REGISTRY[n].is_number]


def labels_of(metric_names: Iterable[str]) -> dict[str, str]:
    """name -> label for the given names."""
    return {n: label_of(n) for n in metric_names}


def higher_is_better(name: str) -> Optional[bool]:
    return get_metric(name).higher_is_better


def range_of(name: str) -> tuple:
    """The values metric `name` can take (KeyError for a metric without a declared range)."""
    declared = get_metric(name).range
    if declared is None:
        raise KeyError(f"metric {name!r} declares no range: give its Metric entry range=(lowest, highest)")
    return declared


def chance_of(name: str) -> Optional[float]:
    return get_metric(name).chance


def compute_metrics(outputs, sections: Optional[Iterable[str]] = None, stored_in: str = "run") -> dict:
    """Every registered metric stored in `stored_in` (and in `sections`, if given) that applies
    to the run (`needs_text` ones only when it has a text tower), in registry order."""
    wanted = set(SECTIONS if sections is None else sections)
    return {m.name: m.compute(outputs) for m in METRIC_REGISTRY.values()
            if m.section in wanted and m.stored_in == stored_in and (outputs.has_text or not m.needs_text)}


# ---------------------------------------------------------------- the entries

PROMPT_SECTIONS = {  # prompts -> (name prefix, section, label suffix); "headline": the run's own
    "headline": ("", "accuracy", ""),
    "class": ("zs_class_", "zs_class", ', prompts "horse" / "camel"'),
    "pooled": ("zs_pooled_", "zs_pooled", ", the four descriptive captions"),
}
_SUMMARY = (  # metrics.accuracy_summary key -> label, format, higher is better, short tables (headline)
    ("average_acc", "average accuracy", ".3f", True, SHORT_TABLES),
    ("worst_group_acc", "worst-group accuracy", ".3f", True, SHORT_TABLES),
    ("worst_group", "worst group", "group", None, SHORT_TABLES),
    ("gap", "majority − minority accuracy", ".3f", False, SHORT_TABLES),
    ("majority_acc", "majority-group accuracy", ".3f", True, ()),
    ("minority_acc", "minority-group accuracy", ".3f", True, ()),
)
_ZERO_SHOT_SHORT_TABLES = {"average_acc": ("cli",)}  # the zero-shot sections' rows in the short tables
_PROBE_FEATURES = {"image": "", "pixels": ", raw pixels", "random": ", random-init encoder"}  # -> label suffix


def _summary_of(prompts: str, key: str, split: str = "test") -> Callable:
    return lambda run: run.accuracy_summary(prompts, split)[key]


def _group_accuracy_of(prompts: str, group: str) -> Callable:
    return lambda run: run.group_accuracy(prompts)[group]


def _probe_of(target: str, features: str) -> Callable:
    return lambda run: run.probe(target, features)


def _silhouette_of(embeddings: str, by: str) -> Callable:
    return lambda run: run.silhouettes(embeddings)[f"silhouette_{by}"]


def _train_count_of(group: str) -> Callable:
    return lambda run: run.train_counts()[group]


def _final_loss(run) -> float:
    return run.training.history[-1]["loss"] if run.training.history else math.nan


def _register_accuracy() -> None:
    register(Metric("headline_prompts", "prompt set of the headline accuracy", "accuracy",
                    lambda run: run.headline_prompts, fmt="s", shown_in=("cli",)))
    for prompts, (prefix, section, suffix) in PROMPT_SECTIONS.items():
        headline = prompts == "headline"
        for key, label, form, better, short_tables in _SUMMARY:
            accuracy = key.endswith("acc")
            register(Metric(f"{prefix}{key}", label + suffix, section, _summary_of(prompts, key), form, better,
                            shown_in=short_tables if headline else _ZERO_SHOT_SHORT_TABLES.get(key, ()),
                            needs_text=not headline, range=ACCURACY if accuracy else SIGNED if key == "gap" else None,
                            chance=CHANCE if accuracy else None))
        for group in GROUP_NAMES:
            register(Metric(f"{prefix}acc_{group}", f"accuracy on {GROUP_LABELS[group]}{suffix}", section,
                            _group_accuracy_of(prompts, group), higher_is_better=True,
                            shown_in=("cli",) if headline else (), needs_text=not headline, range=ACCURACY,
                            chance=CHANCE))


def _register_probes_and_silhouettes() -> None:
    for features, suffix in _PROBE_FEATURES.items():
        for target in ("animal", "background"):
            trained = features == "image"
            register(Metric(f"probe_{target}_acc" + ("" if trained else f"_{features}"),
                            f"probe accuracy: {target}{suffix}", "probes" if trained else "reference_probes",
                            _probe_of(target, features), higher_is_better=True if target == "animal" else None,
                            shown_in=SHORT_TABLES if trained else (), range=ACCURACY, chance=CHANCE))
    for embeddings in ("image", "text"):
        for by in ("animal", "background", "group"):
            register(Metric(f"silhouette_{by}_{embeddings}", f"silhouette by {by}, {embeddings}", "silhouettes",
                            _silhouette_of(embeddings, by), shown_in=("cli",) if embeddings == "image" else (),
                            needs_text=embeddings == "text", range=SIGNED))


def _register_training() -> None:
    register(Metric("n_train", "training images", "training_data", lambda run: len(run.dataset.train), fmt="d",
                    shown_in=SHORT_TABLES))
    for group in GROUP_NAMES:
        register(Metric(f"n_train_{group}", f"training images of {GROUP_LABELS[group]}", "training_data",
                        _train_count_of(group), fmt="d"))
    register(Metric("majority_share", "share of training images in a majority group", "training_data",
                    lambda run: metrics.majority_share(run.train_counts()), shown_in=("cli",)))
    register(Metric("train_seconds", "training time in seconds (of the models trained together)", "training_run",
                    lambda run: run.training.seconds, fmt=".1f", shown_in=("cli",)))
    register(Metric("trained_together", "models trained together", "training_run",
                    lambda run: len(run.training.trained_with), fmt="d"))
    register(Metric("steps", "optimizer steps", "training_run", lambda run: run.training.steps, fmt="d"))
    register(Metric("batch_size_used", "batch size", "training_run", lambda run: run.training.batch_size, fmt="d"))
    register(Metric("epochs", "epochs (passes over the training set)", "training_run",
                    lambda run: run.training.epochs, fmt=".1f"))
    register(Metric("final_loss", "training loss at the end", "training_run", _final_loss, higher_is_better=False))
    for key, label in (("average_acc", "average of the four groups"), ("worst_group_acc", "worst group")):
        register(Metric(f"val_{key}", f"validation accuracy, {label}", "calibration",
                        _summary_of("headline", key, "val"), higher_is_better=True, stored_in="calibration",
                        range=ACCURACY, chance=CHANCE))


def _in_the_mechanism_table(run) -> None:
    raise ValueError("computed from a stored run's embeddings by dualenc.runs.mechanism, not from a run's outputs")


def _register_mechanism() -> None:
    for same in ("animal", "background"):
        register(Metric(f"cos_same_{same}", f"cosine of two descriptive captions of one {same}", "mechanism",
                        _in_the_mechanism_table, stored_in="mechanism", needs_text=True, range=SIGNED))
    register(Metric("cos_neither", "cosine of two descriptive captions that share nothing", "mechanism",
                    _in_the_mechanism_table, stored_in="mechanism", needs_text=True, range=SIGNED))
    for name, label in (("acc_test", "accuracy, test images as they are"),
                        ("acc_coat_swap", "accuracy, each animal in the other animal's coat"),
                        ("acc_greyscale", "accuracy, test images in grey")):
        register(Metric(name, label, "mechanism", _in_the_mechanism_table, stored_in="mechanism", range=ACCURACY,
                        chance=CHANCE, higher_is_better=True))
    for kind, words in (("exact", "its animal and background"), ("animal", "its animal, the other background"),
                        ("background", "the other animal, its background"), ("neither", "neither")):
        register(Metric(f"match_{kind}", f"minority images nearest a caption naming {words}", "mechanism",
                        _in_the_mechanism_table, stored_in="mechanism", needs_text=True, range=ACCURACY))


_register_accuracy()
_register_probes_and_silhouettes()
_register_training()
_register_mechanism()
