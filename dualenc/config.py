"""Frozen configuration objects: one `ExperimentConfig` is passed whole through the project.

Every field is validated on construction; an error names the field, the bad value and what is
allowed. `to_dict` / `from_dict` round-trip through JSON, and `config_hash` names a run directory.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Optional

ANIMALS = ("horse", "camel")
BACKGROUNDS = ("grass", "desert")
# Group order used everywhere (arrays, tables, plots): majority groups first.
GROUPS = (("horse", "grass"), ("camel", "desert"), ("horse", "desert"), ("camel", "grass"))
MAJORITY_GROUPS = (("horse", "grass"), ("camel", "desert"))
MINORITY_GROUPS = (("horse", "desert"), ("camel", "grass"))

CAPTION_MODES = ("undescriptive", "descriptive", "background", "size")
LOSSES = ("pairwise", "clip", "siglip", "image_only")
TOKEN_POOLS = ("cls", "mean")  # how the vision tower pools its tokens: class token or their mean
STEMS = ("patch", "conv")       # how the vision tower makes its tokens: linear patch embedding or convolutions
SCHEDULES = ("cosine", "wsd")   # learning rate after warm-up: cosine decay, or warmup-stable-decay
COMPILE_CHOICES = (True, False, "auto")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("bf16", "fp32")


class ConfigError(ValueError):
    """A configuration value is out of its allowed range; the message names the field."""


def group_name(animal: str, background: str) -> str:
    return f"{animal}_{background}"


GROUP_NAMES = tuple(group_name(a, b) for a, b in GROUPS)  # "horse_grass", ... in GROUPS order
# Each group as readers see it (tables, figures, the explorer).
GROUP_LABELS = {"horse_grass": "horse on grass", "camel_desert": "camel in desert",
                "horse_desert": "horse in desert", "camel_grass": "camel on grass"}


def minority_kept(bias: float, n: int) -> int:
    """Of a minority group's n training images, round((1 - bias) * n) are kept."""
    return int(round((1.0 - bias) * n))


def _check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{name}={value!r} is not allowed: expected {allowed}")


def _check_int(name: str, value: Any, low: int, high: Optional[int] = None) -> None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    upper = f" and <= {high}" if high is not None else ""
    _check(is_int and value >= low and (high is None or value <= high), name, value,
           f"an integer >= {low}{upper}")


def _check_float(name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    is_num = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = is_num and math.isfinite(value) and (value > low if low_open else value >= low) and value <= high
    bracket = "(" if low_open else "["
    _check(ok, name, value, f"a number in {bracket}{low}, {high}]")


def _coerce_floats(obj) -> None:
    """Store whole numbers given for float fields as floats, so bias=1 and bias=1.0 hash alike."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(obj, f.name, float(value))


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    _check(value in choices, name, value, "one of " + ", ".join(repr(c) for c in choices))


@dataclass(frozen=True)
class DataConfig:
    """The dataset: groups, sizes, bias, captions and how hard the images are."""

    bias: float = 0.0                  # share of each minority group's training images removed, 0..1
    captions: str = "undescriptive"    # undescriptive | descriptive | background, size (controls)
    descriptive_share: float = 1.0     # share of training captions that are descriptive (descriptive mode)
    caption_templates: int = 1         # paraphrases per group; 1 = the original's exact strings
    n_train_per_group: int = 48        # as in the original study
    n_val_per_group: int = 50          # balanced validation set (probes are fit here)
    n_test_per_group: int = 100        # balanced held-out test set
    image_size: int = 64
    animal_size: tuple = (0.55, 0.8)   # animal body length as a share of the image width (min, max)
    animal_similarity: float = 0.0     # 0: typical horse vs camel shapes; 1: hard to tell apart
    data_seed: Optional[int] = None    # the data draw; None = follow train.seed (a seed is a new dataset)
    data_dir: str = ""                 # user images <root>/<animal>_<background>/ or a CSV; "" = generated
    skip_unreadable: bool = False      # user images: warn and skip a file that cannot be read

    def __post_init__(self) -> None:
        _coerce_floats(self)
        object.__setattr__(self, "animal_size", tuple(self.animal_size))
        _check_float("bias", self.bias, 0.0, 1.0)
        _check_choice("captions", self.captions, CAPTION_MODES)
        _check_float("descriptive_share", self.descriptive_share, 0.0, 1.0)
        _check_int("caption_templates", self.caption_templates, 1, 4)
        _check_int("n_train_per_group", self.n_train_per_group, 1)
        _check_int("n_val_per_group", self.n_val_per_group, 2)
        _check_int("n_test_per_group", self.n_test_per_group, 1)
        _check_int("image_size", self.image_size, 16, 512)
        lo_hi = self.animal_size
        _check(len(lo_hi) == 2 and all(isinstance(v, (int, float)) for v in lo_hi)
               and 0.2 <= lo_hi[0] <= lo_hi[1] <= 0.95,
               "animal_size", lo_hi, "(min, max) with 0.2 <= min <= max <= 0.95")
        _check_float("animal_similarity", self.animal_similarity, 0.0, 1.0)
        if self.data_seed is not None:
            _check_int("data_seed", self.data_seed, 0)
        _check(isinstance(self.data_dir, str), "data_dir", self.data_dir, "a folder path or ''")
        _check(isinstance(self.skip_unreadable, bool), "skip_unreadable", self.skip_unreadable, "True or False")

    @property
    def draw_seed(self) -> int:
        """The data draw used to render: data_seed, or 0 for a DataConfig used on its own
        (an ExperimentConfig fills it from train.seed first: `resolved_data`)."""
        return 0 if self.data_seed is None else self.data_seed

    def minority_kept(self) -> int:
        """Training images kept per minority group (see `minority_kept`)."""
        return minority_kept(self.bias, self.n_train_per_group)

    def majority_share(self) -> float:
        """n_majority / (n_majority + n_minority) per animal that this config asks for: 0.5 at bias
        0, 1.0 at bias 1 (a run reports the share of the images it loaded: `metrics.majority_share`)."""
        n = self.n_train_per_group
        return n / (n + self.minority_kept())


def _check_tower(prefix: str, tower) -> None:
    """The fields both transformer towers share: width, depth, heads, mlp_ratio."""
    _check_int(f"{prefix}.width", tower.width, 8, 1024)
    _check_int(f"{prefix}.depth", tower.depth, 1, 24)
    _check_int(f"{prefix}.heads", tower.heads, 1, 32)
    _check(tower.width % tower.heads == 0, f"{prefix}.heads", tower.heads,
           f"a divisor of {prefix}.width={tower.width}")
    _check_float(f"{prefix}.mlp_ratio", tower.mlp_ratio, 0.0, 8.0, low_open=True)


@dataclass(frozen=True)
class VisionConfig:
    """ViT image tower."""

    patch_size: int = 8
    width: int = 64
    depth: int = 2
    heads: int = 2
    mlp_ratio: float = 2.0
    pool: str = "cls"                  # cls token or mean of patch tokens
    stem: str = "conv"                 # patch: one linear map per patch; conv: 3x3 stride-2 convolutions (Xiao et al. 2021)

    def __post_init__(self) -> None:
        _coerce_floats(self)
        _check_int("model.vision.patch_size", self.patch_size, 1, 64)
        _check_choice("model.vision.stem", self.stem, STEMS)
        _check(self.stem != "conv" or self.patch_size in (2, 4, 8, 16, 32), "model.vision.patch_size",
               self.patch_size, "a power of 2 from 2 to 32 with model.vision.stem='conv'")
        _check_tower("model.vision", self)
        _check_choice("model.vision.pool", self.pool, TOKEN_POOLS)


@dataclass(frozen=True)
class TextConfig:
    """Transformer text tower over word tokens with a padding mask."""

    width: int = 64
    depth: int = 1
    heads: int = 2
    mlp_ratio: float = 2.0
    context_length: int = 8            # tokens per caption, padded

    def __post_init__(self) -> None:
        _coerce_floats(self)
        _check_tower("model.text", self)
        _check_int("model.text.context_length", self.context_length, 2, 77)


@dataclass(frozen=True)
class ModelConfig:
    """Both towers, the shared embedding size and the initial logit scale and bias."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    embed_dim: int = 32
    init_logit_scale: float = 10.0     # multiplies the cosine; learnable, clamped to max_logit_scale
    init_logit_bias: float = -5.0      # added to the scaled cosine (pairwise and siglip)
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        _coerce_floats(self)
        _check_int("model.embed_dim", self.embed_dim, 2, 1024)
        _check_float("model.init_logit_scale", self.init_logit_scale, 0.0, self.max_logit_scale, low_open=True)
        _check_float("model.init_logit_bias", self.init_logit_bias, -100.0, 100.0)
        _check_float("model.max_logit_scale", self.max_logit_scale, 1.0, 1000.0)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: loss, schedule, seed, device."""

    loss: str = "pairwise"             # pairwise (the original's) | clip | siglip | image_only baseline
    steps: int = 1000                  # optimizer steps, the same in every arm (chosen on bias-0 validation)
    batch_size: int = 64
    lr: float = 1.5e-3
    weight_decay: float = 0.05
    warmup_frac: float = 0.1           # share of steps with linear warm-up
    schedule: str = "cosine"           # after warm-up: cosine decay to 0, or wsd (constant, then linear decay to 0)
    decay_frac: float = 0.2            # wsd: share of steps in the final linear decay
    augment: bool = True               # random flips and small shifts of training images
    seed: int = 0                      # model initialisation, batch order and (unless set) the data draw
    device: str = "auto"               # auto = cuda when present, else cpu
    precision: str = "bf16"            # bf16 autocast (fp32 master weights) or fp32 throughout
    compile: Any = "auto"              # torch.compile the training step: True, False or "auto" (when long enough to repay it)

    def __post_init__(self) -> None:
        _coerce_floats(self)
        _check_choice("loss", self.loss, LOSSES)
        _check_int("steps", self.steps, 1, 10_000_000)
        _check_int("batch_size", self.batch_size, 2, 65536)
        _check_float("lr", self.lr, 0.0, 1.0, low_open=True)
        _check_float("weight_decay", self.weight_decay, 0.0, 10.0)
        _check_float("warmup_frac", self.warmup_frac, 0.0, 1.0)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_float("decay_frac", self.decay_frac, 0.0, 1.0)
        _check(self.schedule != "wsd" or self.warmup_frac + self.decay_frac <= 1.0, "decay_frac", self.decay_frac,
               f"at most 1 - warmup_frac = {1.0 - self.warmup_frac:g} (warm-up and decay cannot overlap)")
        _check(isinstance(self.augment, bool), "augment", self.augment, "True or False")
        _check_int("seed", self.seed, 0)
        _check_choice("device", self.device, DEVICES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check(any(self.compile is c or (isinstance(c, str) and self.compile == c) for c in COMPILE_CHOICES),
               "compile", self.compile, "True, False or 'auto'")


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: everything needed to reproduce a run. `name` is a label, not hashed."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def resolved_data(self) -> DataConfig:
        """The data config with data_seed filled in: train.seed unless data_seed was set."""
        if self.data.data_seed is not None:
            return self.data
        return dataclasses.replace(self.data, data_seed=self.train.seed)

    def replace(self, **changes: Any) -> "ExperimentConfig":
        """Copy with flat overrides, e.g. replace(bias=0.5, loss="clip", seed=1)."""
        return with_overrides(self, changes)


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
             "vision": VisionConfig, "text": TextConfig}


def _build(cls: type, values: Any, path: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{path or 'config'}={values!r} is not allowed: expected a mapping")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {path or 'config'}: allowed keys are {sorted(known)}")
    kwargs = {}
    for key, value in values.items():
        sub = _SECTIONS.get(key)
        if sub is not None and isinstance(value, dict) and is_dataclass(sub):
            kwargs[key] = _build(sub, value, f"{path}.{key}" if path else key)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def from_dict(values: dict) -> ExperimentConfig:
    """Build a config from a (possibly partial) nested dict; unknown keys are an error."""
    return _build(ExperimentConfig, values, "")


def to_json(config: ExperimentConfig) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)


# Fields added after runs were stored, at the value every earlier run had: left out of the hash
# there, so that the earlier runs keep their names (and the committed tables their run ids).
ADDED_FIELDS = {("model", "vision", "stem"): "patch", ("train", "schedule"): "cosine",
                ("train", "decay_frac"): 0.2}


def config_hash(config: ExperimentConfig) -> str:
    """Stable 12-hex-digit hash of everything but the name: it names the run directory."""
    body = config.to_dict()
    body.pop("name")
    for path, earlier in ADDED_FIELDS.items():
        *sections, name = path
        node = body
        for section in sections:
            node = node[section]
        if node[name] == earlier:
            del node[name]
    return body_hash(body)


def body_hash(body: dict) -> str:
    """12 hex digits of SHA-256 over a config dict as canonical JSON."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _flat_fields() -> dict:
    """Flat override name -> section path, e.g. 'bias' -> ('data',), 'width' is ambiguous."""
    out: dict = {}
    for section, cls in (("data", DataConfig), ("train", TrainConfig)):
        for f in fields(cls):
            out[f.name] = (section,)
    return out


FLAT_FIELDS = _flat_fields()


def with_overrides(config: ExperimentConfig, changes: dict) -> ExperimentConfig:
    """Apply overrides given flat (bias=0.5, loss='clip') or dotted ('model.vision.depth': 3)."""
    body = config.to_dict()
    for key, value in changes.items():
        if key == "name":
            body["name"] = value
            continue
        path = key.split(".") if "." in key else [*FLAT_FIELDS.get(key, ("?",)), key]
        if path[0] == "?":
            allowed = sorted(FLAT_FIELDS) + ["model.<field>", "model.vision.<field>", "model.text.<field>"]
            raise ConfigError(f"unknown setting {key!r}: allowed are {allowed}")
        node = body
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown setting {key!r}")
            node = node[part]
        if path[-1] not in node:
            raise ConfigError(f"unknown setting {key!r}: allowed in {'.'.join(path[:-1])} are {sorted(node)}")
        node[path[-1]] = value
    return from_dict(body)
