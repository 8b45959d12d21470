"""Evaluation on numpy arrays: zero-shot accuracy per group, probes, geometry, seed statistics.

Nothing here imports torch: the trainer hands over embeddings as arrays, so every function can be
checked on small hand-made examples. Groups are always reported in `config.GROUPS` order (majority
groups first), keyed by `config.group_name(animal, background)`, e.g. "horse_grass".
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..config import GROUP_NAMES, ANIMALS, BACKGROUNDS, GROUPS, MAJORITY_GROUPS, MINORITY_GROUPS, group_name

_EPS = 1e-12


def _normalise(x: np.ndarray) -> np.ndarray:
    """L2-normalise the rows of x (a zero row stays zero instead of becoming NaN)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, _EPS)


def class_embeddings(class_prompt_emb: Sequence[np.ndarray]) -> np.ndarray:
    """Pool each class's prompts CLIP-style: mean of the normalised prompts, re-normalised.

    class_prompt_emb[k] is (P_k, D) (a single (D,) prompt is accepted too). Returns (K, D).
    """
    if len(class_prompt_emb) < 2:
        raise ValueError(f"zero-shot needs at least 2 classes, got {len(class_prompt_emb)}")
    pooled = []
    for k, prompts in enumerate(class_prompt_emb):
        p = np.atleast_2d(np.asarray(prompts, dtype=np.float64))  # (P_k, D)
        if p.ndim != 2 or p.shape[0] == 0:
            raise ValueError(f"class {k}: expected a (P, D) array of prompt embeddings, got shape {p.shape}")
        pooled.append(_normalise(_normalise(p).mean(axis=0)))
    dims = {v.shape[-1] for v in pooled}
    if len(dims) != 1:
        raise ValueError(f"prompt embeddings of different classes have different sizes {sorted(dims)}")
    return np.stack(pooled)


# How a class's prompt embeddings are pooled into its score (see `zero_shot_scores`).
PROMPT_POOLS = ("mean", "max")


def zero_shot_scores(image_emb: np.ndarray, class_prompt_emb: Sequence[np.ndarray],
                     pool: str = "mean") -> np.ndarray:
    """Score of each image for each class: (N, K).

    pool="mean": cosine to the pooled class embedding (CLIP's prompt ensembling, made for
    paraphrases). pool="max": cosine to the class's best-matching prompt, i.e. pick the nearest
    prompt and read off its class; right for prompts that describe different things (the
    descriptive captions of one animal name two backgrounds, whose mean can point anywhere).
    """
    if pool not in PROMPT_POOLS:
        raise ValueError(f"pool={pool!r} is not allowed: expected one of {PROMPT_POOLS}")
    img = np.asarray(image_emb, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image_emb must be (N, D), got shape {img.shape}")
    classes = class_embeddings(class_prompt_emb)  # (K, D), also validates the prompts
    if classes.shape[1] != img.shape[1]:
        raise ValueError(f"image embeddings have size {img.shape[1]} but prompts have size {classes.shape[1]}")
    img = _normalise(img)
    if pool == "mean":
        return img @ classes.T
    return np.stack([(img @ _normalise(np.atleast_2d(np.asarray(p, dtype=np.float64))).T).max(axis=1)
                     for p in class_prompt_emb], axis=1)


def zero_shot_predict(image_emb: np.ndarray, class_prompt_emb: Sequence[np.ndarray],
                      pool: str = "mean") -> np.ndarray:
    """Index of the best-scoring class for each image: (N,) int (ties go to the lower index)."""
    return np.argmax(zero_shot_scores(image_emb, class_prompt_emb, pool), axis=1).astype(np.int64)


def _check_labels(animal: Sequence[str], background: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(animal, dtype=object)
    b = np.asarray(background, dtype=object)
    if len(a) != n or len(b) != n:
        raise ValueError(f"labels have lengths animal={len(a)}, background={len(b)} but there are {n} examples")
    for name, values, allowed in (("animal", a, ANIMALS), ("background", b, BACKGROUNDS)):
        unknown = sorted({str(v) for v in values} - set(allowed))
        if unknown:
            raise ValueError(f"unknown {name} label(s) {unknown}: allowed are {list(allowed)}")
    return a, b


def group_accuracy(correct: np.ndarray, animal: Sequence[str], background: Sequence[str]) -> dict[str, float]:
    """Accuracy in each of the four groups, in config.GROUPS order; an empty group is an error."""
    c = np.asarray(correct, dtype=np.float64).ravel()
    a, b = _check_labels(animal, background, len(c))
    out: dict[str, float] = {}
    for animal_k, background_k in GROUPS:
        mask = (a == animal_k) & (b == background_k)
        if not mask.any():
            raise ValueError(f"group {group_name(animal_k, background_k)!r} has no examples")
        out[group_name(animal_k, background_k)] = float(c[mask].mean())
    return out


def accuracy_summary(group_acc: dict[str, float]) -> dict[str, float | str]:
    """Average and worst-group accuracy, the worst group's name, the mean accuracy of the majority
    and of the minority groups, and the majority-minus-minority gap."""
    missing = [g for g in GROUP_NAMES if g not in group_acc]
    if missing:
        raise ValueError(f"group accuracy is missing group(s) {missing}")
    acc = {g: float(group_acc[g]) for g in GROUP_NAMES}
    worst = min(GROUP_NAMES, key=lambda g: acc[g])  # ties: the first in GROUPS order
    majority = np.mean([acc[group_name(*g)] for g in MAJORITY_GROUPS])
    minority = np.mean([acc[group_name(*g)] for g in MINORITY_GROUPS])
    return {
        "average_acc": float(np.mean(list(acc.values()))),
        "worst_group_acc": acc[worst],
        "worst_group": worst,
        "majority_acc": float(majority),
        "minority_acc": float(minority),
        "gap": float(majority - minority),
    }


def majority_share(group_counts: dict[str, int]) -> float:
    """Share of the training images that are in a majority group, from the counts actually loaded:
    n_majority / (n_majority + n_minority), 0.5 for a balanced set, 1.0 with no minority image
    (per animal when the animals have as many images each, as a generated set has). No image: nan."""
    missing = [g for g in GROUP_NAMES if g not in group_counts]
    if missing:
        raise ValueError(f"group counts are missing group(s) {missing}")
    majority = sum(group_counts[group_name(*g)] for g in MAJORITY_GROUPS)
    total = majority + sum(group_counts[group_name(*g)] for g in MINORITY_GROUPS)
    return majority / total if total else math.nan


def linear_probe(train_x: np.ndarray, train_y: Sequence, test_x: np.ndarray, test_y: Sequence,
                 seed: int = 0) -> float:
    """Accuracy on test of a logistic regression on standardised features fit on train.

    Deterministic (lbfgs solver, fixed seed). Labels may be strings or ints.
    """
    train_x = np.asarray(train_x, dtype=np.float64)
    test_x = np.asarray(test_x, dtype=np.float64)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"features must be (N, D) with the same D, got {train_x.shape} and {test_x.shape}")
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError("features and labels have different lengths: "
                         f"train {len(train_x)} vs {len(train_y)}, test {len(test_x)} vs {len(test_y)}")
    if len(np.unique(train_y)) < 2:
        raise ValueError(f"a probe needs at least 2 classes in its training labels, got {np.unique(train_y).tolist()}")
    probe = make_pipeline(StandardScaler(),
                          LogisticRegression(C=1.0, max_iter=5000, random_state=seed))
    probe.fit(train_x, train_y)
    return float(np.mean(probe.predict(test_x) == test_y))


def _silhouette(emb: np.ndarray, labels: np.ndarray) -> float:
    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels > len(emb) - 1:  # sklearn's range; outside it the score is undefined
        return math.nan
    return float(silhouette_score(emb, labels, metric="cosine"))


def silhouettes(emb: np.ndarray, animal: Sequence[str], background: Sequence[str]) -> dict[str, float]:
    """Silhouette (cosine distance) of the embeddings labelled by animal, background and group.

    In [-1, 1]: high means tight, separate clusters for that label. A label with one class -> nan.
    """
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"emb must be (N, D), got shape {x.shape}")
    a, b = _check_labels(animal, background, len(x))
    groups = np.array([group_name(ai, bi) for ai, bi in zip(a, b)], dtype=object)
    return {
        "silhouette_animal": _silhouette(x, a.astype(str)),
        "silhouette_background": _silhouette(x, b.astype(str)),
        "silhouette_group": _silhouette(x, groups.astype(str)),
    }


def _finite(values: Sequence[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[~np.isnan(v)]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} is not allowed: expected a number in (0, 1)")


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t confidence interval of the mean over seeds; NaNs are dropped.

    Used for differences taken seed by seed (paired), whose range is not a problem. One value ->
    (value, nan, nan); no values -> (nan, nan, nan).
    """
    _check_confidence(confidence)
    v = _finite(values)
    if len(v) == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if len(v) == 1:
        return (mean, math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + confidence / 2, df=len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return (mean, mean - half, mean + half)


N_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, n_resamples: int = N_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap interval of the mean over seeds; NaNs are dropped.

    The seeds' values are resampled with replacement `n_resamples` times (numpy's default_rng(seed),
    so a call always gives the same interval) and the interval is the central `confidence` share of
    the resampled means. Every resampled mean lies between the smallest and the largest value, so
    the interval never leaves the range the values can take: accuracies stay inside [0, 1]. With
    few seeds it is narrower than a Student-t interval (it treats the seeds seen as the whole
    population); levels are described with it, differences are decided with `mean_ci` on the
    seed-by-seed differences. One value -> (value, nan, nan); no values -> (nan, nan, nan).
    """
    _check_confidence(confidence)
    if not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples={n_resamples!r} is not allowed: expected an integer >= 1")
    v = _finite(values)
    if len(v) == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if len(v) == 1:
        return (mean, math.nan, math.nan)
    means = v[_resample_index(len(v), n_resamples, seed)].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    # the mean of identical values can differ from them in the last bit; keep low <= mean <= high
    return (mean, float(min(low, mean)), float(max(high, mean)))


@lru_cache(maxsize=32)
def _resample_index(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) indices drawn with replacement; cached, as a summary asks for the same n often."""
    index = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    index.setflags(write=False)
    return index


INTERVALS = {"bootstrap": bootstrap_ci, "t": mean_ci}


def summarise_seeds(df: pd.DataFrame, by: list[str], metrics: list[str],
                    confidence: float = 0.95, interval: str = "bootstrap") -> pd.DataFrame:
    """One row per combination of `by`: <metric>_mean, <metric>_low, <metric>_high and n_seeds.

    interval="bootstrap" (the default, `bootstrap_ci`: levels stay inside the values' range) or
    "t" (`mean_ci`). n_seeds counts the rows of the combination; NaN metric values are dropped.
    Rows whose `by` values are NaN form their own combination rather than being dropped.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval={interval!r} is not allowed: expected one of {sorted(INTERVALS)}")
    ci = INTERVALS[interval]
    missing = [c for c in [*by, *metrics] if c not in df.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not in the table: it has {list(df.columns)}")
    columns = [*by] + [f"{m}_{s}" for m in metrics for s in ("mean", "low", "high")] + ["n_seeds"]
    groups = df.groupby(list(by), sort=True, dropna=False) if by else [((), df)]
    rows = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        for m in metrics:
            row[f"{m}_mean"], row[f"{m}_low"], row[f"{m}_high"] = ci(part[m].to_numpy(float), confidence)
        row["n_seeds"] = len(part)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
