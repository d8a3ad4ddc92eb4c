"""Bias audit: does the model work equally well for different people and image conditions?

Per-group metrics come from fairlearn's `MetricFrame` (accuracy, macro-F1 and per-class recall
by group and by intersections of attributes). A gap between groups is reported as the largest
difference and the worst/best ratio, each with a stratified bootstrap confidence interval
(images resampled within their group) and a permutation-test p-value (group labels shuffled:
how often would chance alone give a gap this large?), so a reader can tell a real gap from
noise. An audit runs many such tests per model (attributes x metrics), so the difference
p-values are also Holm-adjusted within each model's audit, and `significant` reads the adjusted
ones. Small groups give wide intervals; that is the point of showing them.

Where no per-image demographics exist (FER2013) the audit slices by image condition
(brightness, contrast, sharpness tertiles) and describes the dataset's demographic make-up from
*model-predicted* FairFace attributes (Dominguez-Catena et al., arXiv 2312.14626), which cannot
be joined to images: representation shares and the label-by-group association (Cramér's V).

Mitigation (`mitigate_by_reweighting`): refit the model's final softmax layer on its own
penultimate features with group-reweighted training samples and compare accuracy and gap with
an unweighted refit and the original model: the accuracy/fairness trade-off, measured. Where
only the audited set carries the attribute (Taiwan's age groups), `mitigate_folder_attribute`
refits on some of its people and scores the others (cross-validation grouped by person).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from scipy.stats import chi2_contingency

from face_sentiment.data.processed import with_quality_buckets
from face_sentiment.paths import locate_input
from face_sentiment.stats import cluster_units, macro_f1, resample

DEMOGRAPHICS_ENV = "FAIRFACE_DEMOGRAPHICS_PATH"
DEMOGRAPHICS_FILE = "fer2013_fairface_predicted.csv.gz"
DEMOGRAPHICS_SOURCE = ("FairFace-predicted demographics of FER2013 (MIT licence): from the "
                       "repository of Dominguez-Catena et al., arXiv 2312.14626 "
                       "(columns age,race,gender,label,partition)")
DEMOGRAPHIC_COLUMNS = ("race", "gender", "age")
GAP_METRICS = ("accuracy", "macro_f1")
# Without --attribute, the CLI audits the labels.csv columns with 2..10 distinct values.
MAX_DEFAULT_GROUPS = 10


# --------------------------------------------------------------------------------------------
# Metrics (numpy: fast enough to recompute thousands of times for bootstrap and permutations)


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float((np.asarray(labels) == np.asarray(predicted)).mean()) if len(labels) else np.nan


def recall_of(labels: np.ndarray, predicted: np.ndarray, cls: int) -> float:
    members = np.asarray(labels) == cls
    return float((np.asarray(predicted)[members] == cls).mean()) if members.any() else np.nan


def metric_functions(classes: tuple[str, ...], present: tuple[int, ...]) -> dict:
    """MetricFrame metrics: accuracy, macro-F1 over present classes, recall of each class."""
    functions = {"accuracy": accuracy, "macro_f1": partial(macro_f1, classes=present)}
    functions.update({f"recall_{classes[c]}": partial(recall_of, cls=c) for c in present})
    return functions


def group_metrics(labels: np.ndarray, predicted: np.ndarray, sensitive: pd.DataFrame,
                  classes: tuple[str, ...]) -> MetricFrame:
    """fairlearn MetricFrame; several sensitive columns give their intersections."""
    present = tuple(sorted(set(np.asarray(labels).tolist())))
    functions = metric_functions(classes, present)
    frame = MetricFrame(metrics=functions, y_true=np.asarray(labels),
                        y_pred=np.asarray(predicted), sensitive_features=sensitive)
    counts = MetricFrame(metrics={"n": lambda y, p: len(y)}, y_true=np.asarray(labels),
                         y_pred=np.asarray(predicted), sensitive_features=sensitive)
    frame.counts = counts.by_group["n"]  # group sizes, shown beside the metrics
    return frame


def by_group_table(frame: MetricFrame) -> pd.DataFrame:
    return pd.concat([frame.counts.rename("n"), frame.by_group], axis=1)


# --------------------------------------------------------------------------------------------
# Gaps with uncertainty


def _group_codes(groups: pd.Series | np.ndarray) -> tuple[np.ndarray, list[str]]:
    codes, names = pd.factorize(pd.Series(groups).astype(str), sort=True)
    return codes, list(names)


def _gap(values: np.ndarray) -> tuple[float, float]:
    """(max - min, min / max) over the groups' metric values."""
    values = values[~np.isnan(values)]
    high, low = values.max(), values.min()
    return float(high - low), float(low / high) if high > 0 else np.nan


def _per_group(metric, labels, predicted, codes, count: int) -> np.ndarray:
    return np.array([metric(labels[codes == g], predicted[codes == g]) for g in range(count)])


def _clustered(codes: np.ndarray, clusters: np.ndarray | None) -> np.ndarray | None:
    """Cluster code per image when every cluster lies in one group (else None)."""
    if clusters is None:
        return None
    cluster_codes, _ = pd.factorize(pd.Series(clusters).astype(str))
    spread = pd.Series(codes).groupby(cluster_codes).nunique()
    return cluster_codes if (spread == 1).all() else None


def _group_units(codes: np.ndarray, cluster_codes: np.ndarray | None,
                 count: int) -> list[list[np.ndarray]]:
    """Each group's bootstrap units: its images, or its clusters' images (people)."""
    units = []
    for g in range(count):
        members = np.flatnonzero(codes == g)
        clusters = None if cluster_codes is None else cluster_codes[members]
        units.append([members[unit] for unit in cluster_units(len(members), clusters)])
    return units


def _permuted(rng, codes: np.ndarray, cluster_codes: np.ndarray | None) -> np.ndarray:
    """Group labels shuffled across images, or across clusters when clustered."""
    if cluster_codes is None:
        return rng.permutation(codes)
    group_of = pd.Series(codes).groupby(cluster_codes).first().to_numpy()
    return rng.permutation(group_of)[cluster_codes]


def gap_test(labels: np.ndarray, predicted: np.ndarray, groups, metric: str = "accuracy",
             resamples: int = 1000, permutations: int = 1000, seed: int = 0,
             confidence: float = 0.95, clusters: np.ndarray | None = None) -> dict:
    """Largest difference and worst/best ratio of `metric` across groups, each with a
    stratified bootstrap interval and a permutation-test p-value.

    `clusters` (e.g. the person in each image): when every cluster falls in one group, the
    bootstrap resamples clusters and the permutation shuffles groups across clusters, because
    images of one person are not independent. The bootstrap interval of a max-min gap is
    biased upwards (noise alone makes groups differ), so the p-value decides significance.
    """
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    codes, names = _group_codes(groups)
    cluster_codes = _clustered(codes, clusters)
    present = tuple(sorted(set(labels.tolist())))
    function = accuracy if metric == "accuracy" else partial(macro_f1, classes=present)
    values = _per_group(function, labels, predicted, codes, len(names))
    difference, ratio = _gap(values)
    rng = np.random.default_rng(seed)
    units = _group_units(codes, cluster_codes, len(names))  # resampled within each group
    boot = np.array([_gap(np.array([function(labels[i], predicted[i]) for i in
                                    (resample(rng, group) for group in units)]))
                     for _ in range(resamples)])
    null = np.array([_gap(_per_group(function, labels, predicted,
                                     _permuted(rng, codes, cluster_codes), len(names)))
                     for _ in range(permutations)])
    tail = (1 - confidence) / 2 * 100
    return {
        "metric": metric, "groups": len(names),
        "unit": "cluster" if cluster_codes is not None else "image",
        "worst_group": names[int(np.nanargmin(values))], "worst": float(np.nanmin(values)),
        "best_group": names[int(np.nanargmax(values))], "best": float(np.nanmax(values)),
        "difference": difference,
        "difference_ci_low": float(np.percentile(boot[:, 0], tail)),
        "difference_ci_high": float(np.percentile(boot[:, 0], 100 - tail)),
        "difference_p": float((1 + np.sum(null[:, 0] >= difference)) / (1 + permutations)),
        "ratio": ratio,
        "ratio_ci_low": float(np.nanpercentile(boot[:, 1], tail)),
        "ratio_ci_high": float(np.nanpercentile(boot[:, 1], 100 - tail)),
        "ratio_p": float((1 + np.sum(null[:, 1] <= ratio)) / (1 + permutations)),
    }


def intersection_key(sensitive: pd.DataFrame) -> pd.Series:
    return sensitive.astype(str).agg(" & ".join, axis=1)


def audit(labels: np.ndarray, predicted: np.ndarray, sensitive: pd.DataFrame,
          resamples: int = 1000, permutations: int = 1000, seed: int = 0,
          intersections: bool = True, clusters: np.ndarray | None = None) -> pd.DataFrame:
    """Gap tests for every sensitive column (and their intersection) and GAP_METRICS."""
    columns = {c: sensitive[c] for c in sensitive.columns}
    if intersections and sensitive.shape[1] > 1:
        columns[" & ".join(sensitive.columns)] = intersection_key(sensitive)
    rows = [{"attribute": name, **gap_test(labels, predicted, groups.to_numpy(), metric,
                                          resamples, permutations, seed, clusters=clusters)}
            for name, groups in columns.items() for metric in GAP_METRICS]
    table = pd.DataFrame(rows)
    table["difference_p_holm"] = holm(table["difference_p"].to_numpy())
    return table


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error control), in the input order."""
    p_values = np.asarray(p_values, dtype=float)
    count = len(p_values)
    order = np.argsort(p_values, kind="stable")
    scaled = p_values[order] * (count - np.arange(count))
    adjusted = np.empty(count)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def audit_models(predictions: dict[str, np.ndarray], labels: np.ndarray,
                 sensitive: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """`audit` for several models on the same images: their gaps side by side."""
    tables = [audit(labels, predicted, sensitive, **kwargs).assign(model=name)
              for name, predicted in predictions.items()]
    table = pd.concat(tables, ignore_index=True)
    return table.set_index(["attribute", "metric", "model"]).sort_index(level=[0, 1],
                                                                         sort_remaining=False)


def by_group_models(predictions: dict[str, np.ndarray], labels: np.ndarray,
                    sensitive: pd.DataFrame, classes: tuple[str, ...],
                    metrics: tuple[str, ...] = ("accuracy", "macro_f1")) -> pd.DataFrame:
    """One column per (model, metric), one row per group, with group sizes."""
    parts = {}
    for name, predicted in predictions.items():
        frame = group_metrics(labels, predicted, sensitive, classes)
        parts[name] = by_group_table(frame)[["n", *metrics]]
    return pd.concat(parts, axis=1)


def significant(table: pd.DataFrame, alpha: float = 0.05, adjusted: bool = True
                ) -> pd.DataFrame:
    """Rows whose difference is significant by the permutation test (Holm-adjusted unless
    `adjusted` is False)."""
    column = "difference_p_holm" if adjusted else "difference_p"
    return table[table[column] < alpha]


# --------------------------------------------------------------------------------------------
# FER2013: image conditions and the dataset-level demographic profile


def condition_groups(features: pd.DataFrame) -> pd.DataFrame:
    """brightness/contrast/sharpness bins (low/mid/high) of these images: the processed
    data's Training-quantile buckets when `features` has them, else tertiles of this set."""
    from face_sentiment.evaluation.metrics import quality_bins

    bins = quality_bins(features.reset_index(drop=True))
    return bins.rename(columns=lambda c: c.removesuffix("_bin"))


def locate_demographics() -> Path:
    return locate_input(DEMOGRAPHICS_ENV, (DEMOGRAPHICS_FILE,), "demographic profile",
                        f"Get it: {DEMOGRAPHICS_SOURCE}")


def load_demographics(path: str | os.PathLike | None = None) -> pd.DataFrame:
    table = pd.read_csv(path or locate_demographics(), dtype=str)
    missing = {"label", *DEMOGRAPHIC_COLUMNS} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return table


def representation(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Count and share of each (predicted) group, overall and per partition."""
    counts = pd.crosstab(table[column], table.get("partition", "all"), margins=True,
                         margins_name="total")
    shares = counts / counts.loc["total"]
    return pd.concat({"count": counts, "share": shares}, axis=1).drop(index="total")


def cramers_v(table: pd.DataFrame, column: str, target: str = "label") -> dict:
    """Association between `column` and the label: chi-square test and Cramér's V (0..1)."""
    contingency = pd.crosstab(table[column], table[target])
    chi2, p, dof, _ = chi2_contingency(contingency)
    n = contingency.to_numpy().sum()
    v = np.sqrt(chi2 / (n * (min(contingency.shape) - 1)))
    return {"attribute": column, "chi2": float(chi2), "dof": int(dof), "p": float(p),
            "cramers_v": float(v), "n": int(n)}


def label_by_group(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Share of each label within each group (rows sum to one)."""
    return pd.crosstab(table[column], table["label"], normalize="index")


# --------------------------------------------------------------------------------------------
# Mitigation: group-reweighted refit of the softmax layer


def penultimate_features(predictor, faces: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The Keras model's input to its final Dense layer, for (N, 48, 48) uint8 faces.

    An ensemble graph has one such layer per member: its features are the members' features
    side by side, each averaged over the member's views (face and mirror image), so the refit
    is one softmax layer over all members."""
    import keras

    from face_sentiment.model.architecture import member_networks, views_per_member
    from face_sentiment.preprocessing import preprocess_faces

    def features_of(network: keras.Model, inputs: np.ndarray) -> np.ndarray:
        features = keras.Model(network.inputs, network.layers[-1].input)
        return features.predict(inputs, batch_size=batch_size, verbose=0)

    model, inputs = predictor.model, preprocess_faces(faces, predictor.spec)
    members = member_networks(model)
    if not members:
        return features_of(model, inputs)
    views = [inputs, inputs[:, :, ::-1]][:views_per_member(model)]
    return np.concatenate([np.mean([features_of(member, view) for view in views], axis=0)
                           for member in members], axis=1)


def group_weights(groups: np.ndarray, labels: np.ndarray, upweight: dict[str, float]
                  | None = None) -> np.ndarray:
    """Sample weights giving every (group, class) cell equal total weight, times an optional
    extra factor per group; normalised to mean one."""
    cells = pd.Series(list(zip(groups, labels, strict=True)))
    weights = 1.0 / cells.map(cells.value_counts()).to_numpy(float)
    if upweight:
        weights *= np.array([upweight.get(g, 1.0) for g in groups])
    return weights / weights.mean()


def refit_head(features: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
               seed: int = 0):
    """Multinomial logistic regression on penultimate features (a new softmax layer)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    head = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=1.0,
                                                              random_state=seed))
    head.fit(features, labels, logisticregression__sample_weight=weights)
    return head


def _worst_group(labels: np.ndarray, predicted: np.ndarray, groups: np.ndarray) -> str:
    """The group where `predicted` is least accurate (the one a mitigation up-weights)."""
    return gap_test(labels, predicted, groups, resamples=1, permutations=1)["worst_group"]


def _reweighting_variants(worst_group: str, upweight: float) -> dict:
    """Each variant's sample weights as a function of its refit's training (groups, labels);
    None for the original model."""
    return {
        "original model": None,
        "refit, unweighted": lambda groups, labels: np.ones(len(labels)),
        "refit, group x class balanced": group_weights,
        f"refit, balanced + {worst_group!r} x{upweight:g}":
            lambda groups, labels: group_weights(groups, labels, {worst_group: upweight}),
    }


def _tradeoff_row(name: str, labels: np.ndarray, predicted: np.ndarray, groups: np.ndarray,
                  seed: int, **gap_kwargs) -> dict:
    gap = gap_test(labels, predicted, groups, "accuracy", seed=seed, **gap_kwargs)
    return {"variant": name, "accuracy": accuracy(labels, predicted),
            "macro_f1": macro_f1(labels, predicted, tuple(sorted(set(labels.tolist())))),
            "worst_group": gap["worst_group"], "worst_group_accuracy": gap["worst"],
            "best_group": gap["best_group"], "best_group_accuracy": gap["best"],
            "gap": gap["difference"], "gap_ci_low": gap["difference_ci_low"],
            "gap_ci_high": gap["difference_ci_high"], "gap_p": gap["difference_p"]}


def mitigate_by_reweighting(train: tuple[np.ndarray, np.ndarray, np.ndarray],
                            test: tuple[np.ndarray, np.ndarray, np.ndarray],
                            original_predicted: np.ndarray, worst_group: str,
                            upweight: float = 3.0, seed: int = 0, **gap_kwargs) -> pd.DataFrame:
    """Trade-off table: original model, unweighted refit, group-balanced refit, and
    group-balanced refit with the worst group up-weighted. `train`/`test` are
    (penultimate features, labels, groups)."""
    (x_train, y_train, g_train), (x_test, y_test, g_test) = train, test
    rows = []
    for name, weigh in _reweighting_variants(worst_group, upweight).items():
        predicted = original_predicted if weigh is None else \
            refit_head(x_train, y_train, weigh(g_train, y_train), seed).predict(x_test)
        rows.append(_tradeoff_row(name, y_test, predicted, g_test, seed, **gap_kwargs))
    return pd.DataFrame(rows).set_index("variant")


def mitigate_by_grouped_refit(features: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                              clusters: np.ndarray, original_predicted: np.ndarray,
                              worst_group: str, upweight: float = 3.0, folds: int = 5,
                              seed: int = 0, **gap_kwargs) -> pd.DataFrame:
    """`mitigate_by_reweighting` for a set that is the only one carrying the attribute (a
    folder's age groups): each refit learns on the people of the other folds and predicts the
    held-out fold (cross-validation grouped by `clusters`, so no person is on both sides), and
    the table scores the pooled held-out predictions, with intervals by cluster. Every refit
    also adapts the head to the set's images: the unweighted refit is the control that
    separates that from the reweighting."""
    from sklearn.model_selection import GroupKFold

    labels, groups = np.asarray(labels), np.asarray(groups)
    splits = list(GroupKFold(n_splits=folds).split(features, labels, clusters))
    rows = []
    for name, weigh in _reweighting_variants(worst_group, upweight).items():
        if weigh is None:
            predicted = np.asarray(original_predicted)
        else:  # every row is held out exactly once
            predicted = np.empty_like(labels)
            for train, held_out in splits:
                head = refit_head(features[train], labels[train],
                                  weigh(groups[train], labels[train]), seed)
                predicted[held_out] = head.predict(features[held_out])
        rows.append(_tradeoff_row(name, labels, predicted, groups, seed, clusters=clusters,
                                  **gap_kwargs))
    return pd.DataFrame(rows).set_index("variant")


def plot_by_group(table: pd.DataFrame, metric: str = "accuracy", title: str = ""):
    """Bars of `metric` (in percent) per group, one bar per model (from `by_group_models`)."""

    values = 100 * table.xs(metric, axis=1, level=1)
    ax = values.plot.bar(figsize=(max(4.0, 0.8 * len(values) + 2), 3.2), rot=30)
    ax.set_ylabel(f"{metric.replace('_', '-')} (%)")
    ax.set_xlabel(" x ".join(str(n) for n in values.index.names if n) or "group")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax.figure


def split_rows(dataset, split: str, count: int | None = None, seed: int = 0) -> np.ndarray:
    """Row indices of a FER2013 split, a seeded sorted subset of `count` when given."""
    rows = np.flatnonzero(dataset.split_mask(split))
    if count and count < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, count, replace=False))
    return rows


def mitigate_fer2013_condition(predictor, dataset, attribute: str, train_images: int = 8000,
                               upweight: float = 3.0, seed: int = 0,
                               **gap_kwargs) -> pd.DataFrame:
    """`mitigate_by_reweighting` for an image-condition attribute on FER2013: head refits on a
    seeded Training subset, scored on PrivateTest (bins: `condition_groups`)."""
    def part(split: str, count: int | None):
        rows = split_rows(dataset, split, count, seed)
        groups = condition_groups(with_quality_buckets(dataset, rows, split))[attribute]
        groups = groups.to_numpy()
        return dataset.images[rows], dataset.labels[rows].astype(np.int64), groups

    train_faces, y_train, g_train = part("Training", train_images)
    test_faces, y_test, g_test = part("PrivateTest", None)
    original = predictor.predict(test_faces).argmax(1)
    worst = _worst_group(y_test, original, g_test)
    return mitigate_by_reweighting(
        (penultimate_features(predictor, train_faces), y_train, g_train),
        (penultimate_features(predictor, test_faces), y_test, g_test),
        original, worst, upweight, seed, **gap_kwargs)


# --------------------------------------------------------------------------------------------
# One audit, shared by the CLI (`report`) and notebook 06


@dataclass
class AuditInputs:
    """What an audit scores: the images' true labels, each model's predicted classes (by model
    name), the images' sensitive attributes (one column each) and, optionally, each image's
    cluster (the person: images of one person are not independent)."""

    labels: np.ndarray
    predicted: dict[str, np.ndarray]
    sensitive: pd.DataFrame
    classes: tuple[str, ...]
    clusters: np.ndarray | None = None
    table: pd.DataFrame | None = None  # the scored rows with all their columns (folder sets)
    faces: np.ndarray | None = None  # the scored rows' face crops (folder sets, for refits)


def fer2013_inputs(predictors: list, dataset=None, images: int | None = None,
                   seed: int = 0) -> AuditInputs:
    """FER2013 PrivateTest by image condition (brightness, contrast and sharpness bins,
    `condition_groups`): all of it, or a seeded subset of `images`. Images are the units."""
    from face_sentiment.labels import FER2013_CLASSES

    if dataset is None:
        from face_sentiment.data.cache import load_dataset

        dataset = load_dataset()
    rows = split_rows(dataset, "PrivateTest", images, seed)
    faces = dataset.images[rows]
    return AuditInputs(dataset.labels[rows].astype(np.int64),
                       {p.name: p.predict(faces).argmax(1) for p in predictors},
                       condition_groups(with_quality_buckets(dataset, rows, "PrivateTest")),
                       FER2013_CLASSES)


def folder_inputs(dataset, predictors: list, attributes: list[str] | None = None,
                  cluster: str | None = None, detector: str = "blazeface-full") -> AuditInputs:
    """A labelled folder dataset (a path or a loaded `FolderDataset`) through the Pi runner's
    face detection: the rows where a face was found, sliced by `attributes` (default: every
    labels.csv column but `cluster` with 2..MAX_DEFAULT_GROUPS values)."""
    from face_sentiment.data.folder_dataset import FolderDataset, load_folder_dataset
    from face_sentiment.evaluation import cross_dataset as cd

    folder = dataset if isinstance(dataset, FolderDataset) else load_folder_dataset(dataset)
    crops = cd.dataset_faces(folder, detector)
    results = {p.name: cd.score(p, folder, crops) for p in predictors}
    first = next(iter(results.values()))
    chosen = attributes or [a for a in folder.attributes if a != cluster
                            and 1 < folder.table[a].nunique() <= MAX_DEFAULT_GROUPS]
    unknown = [a for a in chosen + ([cluster] if cluster else []) if a not in first.table.columns]
    if unknown:
        raise ValueError(f"{folder.source}: no column(s) {', '.join(unknown)} in labels.csv")
    faces = cd.usable_rows(folder, crops, first.model_classes)[1]
    return AuditInputs(first.labels, {name: r.predicted for name, r in results.items()},
                       first.table[chosen], first.model_classes,
                       first.table[cluster].to_numpy() if cluster else None, first.table, faces)


def mitigate_folder_attribute(inputs: AuditInputs, predictor, attribute: str,
                              upweight: float = 3.0, folds: int = 5, seed: int = 0,
                              **gap_kwargs) -> pd.DataFrame:
    """`mitigate_by_grouped_refit` for one attribute of a folder audit (`folder_inputs` with a
    `cluster` column: its people form the folds) and one of the models it scored."""
    if inputs.faces is None or inputs.clusters is None:
        raise ValueError("a folder mitigation needs the audit's faces and clusters "
                         "(folder_inputs with cluster=...)")
    groups = inputs.sensitive[attribute].to_numpy()
    original = inputs.predicted[predictor.name]
    worst = _worst_group(inputs.labels, original, groups)
    return mitigate_by_grouped_refit(penultimate_features(predictor, inputs.faces),
                                     inputs.labels, groups, inputs.clusters, original, worst,
                                     upweight, folds, seed, **gap_kwargs)


def audit_tables(inputs: AuditInputs, resamples: int = 1000, permutations: int = 1000,
                 seed: int = 0, intersections: bool | None = None) -> dict[str, pd.DataFrame]:
    """Every model's per-group accuracy and macro-F1 by each attribute ('by <attribute>') and,
    with `intersections`, by their intersection ('by <a> & <b>'); and every model's gap tests
    ('gaps': intervals, permutation p-values, Holm-adjusted within each model). `intersections`
    defaults to auditing them when there are at most three attributes."""
    sensitive = inputs.sensitive
    if intersections is None:
        intersections = sensitive.shape[1] <= 3
    tables = {f"by {column}": by_group_models(inputs.predicted, inputs.labels,
                                              sensitive[[column]], inputs.classes)
              for column in sensitive.columns}
    if intersections and sensitive.shape[1] > 1:
        tables[f"by {' & '.join(sensitive.columns)}"] = by_group_models(
            inputs.predicted, inputs.labels, sensitive, inputs.classes)
    tables["gaps"] = audit_models(inputs.predicted, inputs.labels, sensitive,
                                  resamples=resamples, permutations=permutations, seed=seed,
                                  clusters=inputs.clusters, intersections=intersections)
    return tables


def recall_by_group(inputs: AuditInputs, model: str) -> dict[str, pd.DataFrame]:
    """One model's group sizes, accuracy, macro-F1 and per-class recall by each attribute:
    which expressions are missed for whom."""
    return {column: by_group_table(group_metrics(inputs.labels, inputs.predicted[model],
                                                 inputs.sensitive[[column]], inputs.classes))
            for column in inputs.sensitive.columns}


def clusters_per_group(inputs: AuditInputs) -> pd.Series:
    """How many distinct clusters (people) each intersection of the attributes holds."""
    if inputs.clusters is None:
        raise ValueError("these audit inputs have no clusters")
    groups = [inputs.sensitive[column].to_numpy() for column in inputs.sensitive.columns]
    return pd.Series(inputs.clusters).groupby(groups).nunique().rename_axis(
        list(inputs.sensitive.columns))


def attribute_to_mitigate(significant_gaps: pd.DataFrame, model: str) -> str | None:
    """The attribute of `model`'s largest significant gap, from `significant(gaps)`, or None
    when the model has none (only a model's own gaps call for mitigating it)."""
    if not len(significant_gaps) or \
            model not in significant_gaps.index.get_level_values("model"):
        return None
    return significant_gaps.xs(model, level="model").difference.idxmax()[0]


def demographic_profile(demographics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The dataset-level profile from predicted demographics: representation of each
    attribute, the label association of each (Cramér's V) and label shares by gender."""
    tables = {f"predicted {column}": representation(demographics, column)
              for column in DEMOGRAPHIC_COLUMNS}
    tables["label association (Cramér's V)"] = pd.DataFrame(
        [cramers_v(demographics, column) for column in DEMOGRAPHIC_COLUMNS])
    tables["label shares within each predicted gender"] = label_by_group(demographics, "gender")
    return tables


def report(dataset: str, models: list[str], attributes: list[str] | None = None,
           cluster: str | None = None, resamples: int = 1000, permutations: int = 1000,
           seed: int = 0) -> dict[str, pd.DataFrame]:
    """The CLI's tables (`audit_tables`): per-group metrics and gap tests for every model.
    `dataset` is a labelled folder (attributes: columns of its labels.csv, default all but
    `cluster`) or 'fer2013' (all of PrivateTest by image condition)."""
    from face_sentiment.evaluation.predictors import load_predictors

    predictors = load_predictors(models)
    inputs = fer2013_inputs(predictors) if dataset == "fer2013" else \
        folder_inputs(dataset, predictors, attributes, cluster)
    return audit_tables(inputs, resamples, permutations, seed)


# --------------------------------------------------------------------------------------------
# Tables and findings for a reader (notebook 06): metrics in percent, gaps in points


def _is_metric(name) -> bool:
    """A score column shown in percent: accuracy, macro-F1, a class's recall."""
    return isinstance(name, str) and (name in ("accuracy", "macro_f1")
                                      or name.startswith("recall_"))


def percent_table(table: pd.DataFrame) -> pd.DataFrame:
    """A per-group table (`by_group_models`, `by_group_table`) with accuracy, macro-F1 and
    recalls in percent and named so ('accuracy (%)'); group sizes as they are."""
    out = table.copy()
    multi = isinstance(out.columns, pd.MultiIndex)
    for column in out.columns:
        if _is_metric(column[-1] if multi else column):
            out[column] = 100 * out[column]
    names = out.columns.get_level_values(-1) if multi else out.columns
    return out.rename(columns={n: f"{n} (%)" for n in names if _is_metric(n)},
                      level=-1 if multi else None)


def _with_value(name, value) -> str:
    return f"{name} ({100 * value:.1f}%)"


def gap_report(gaps: pd.DataFrame) -> pd.DataFrame:
    """`audit_models`' gap tests for a reader: the worst and best group with their value (in
    percent), the largest difference in points with its interval, and the permutation p-value
    raw and Holm-adjusted (the worst/best ratio stays in the full table)."""
    out = pd.DataFrame(index=gaps.index)
    out["worst"] = [_with_value(n, v) for n, v in zip(gaps.worst_group, gaps.worst,
                                                      strict=True)]
    out["best"] = [_with_value(n, v) for n, v in zip(gaps.best_group, gaps.best, strict=True)]
    for column in ("difference", "difference_ci_low", "difference_ci_high"):
        out[column.replace("difference", "gap_points")] = 100 * gaps[column]
    out["p (raw / Holm)"] = [f"{p:.2g} / {h:.2g}" for p, h in
                             zip(gaps.difference_p, gaps.difference_p_holm, strict=True)]
    return out


def tradeoff_report(tradeoff: pd.DataFrame) -> pd.DataFrame:
    """A mitigation trade-off table (`mitigate_by_reweighting` and the like) for a reader:
    accuracy and macro-F1 in percent, the worst and best group with their accuracy, the gap in
    points with its interval and its permutation p-value."""
    out = pd.DataFrame({"accuracy (%)": 100 * tradeoff.accuracy,
                        "macro_f1 (%)": 100 * tradeoff.macro_f1}, index=tradeoff.index)
    out["worst group"] = [_with_value(n, v) for n, v in
                          zip(tradeoff.worst_group, tradeoff.worst_group_accuracy, strict=True)]
    out["best group"] = [_with_value(n, v) for n, v in
                         zip(tradeoff.best_group, tradeoff.best_group_accuracy, strict=True)]
    for column in ("gap", "gap_ci_low", "gap_ci_high"):
        out[column.replace("gap", "gap_points")] = 100 * tradeoff[column]
    out["gap_p"] = tradeoff.gap_p
    return out


def largest_gaps(gaps: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Per model, its largest `metric` gap over the audited attributes (one row each, with
    the attribute), from `audit_models`' table."""
    part = gaps.xs(metric, level="metric").reset_index()
    rows = part.loc[part.groupby("model", sort=False)["difference"].idxmax()]
    return rows.set_index("model")


def mitigation_effects(tradeoff: pd.DataFrame) -> pd.DataFrame:
    """Each refit of a mitigation trade-off table (`mitigate_by_reweighting` and the like)
    against the original model, in points: the change of overall accuracy, of macro-F1, of
    the worst group's accuracy and of the gap (negative: narrower), and whether the refit
    costs accuracy."""
    original = tradeoff.iloc[0]
    refits = tradeoff.iloc[1:]
    out = pd.DataFrame({
        "accuracy_change": 100 * (refits.accuracy - original.accuracy),
        "macro_f1_change": 100 * (refits.macro_f1 - original.macro_f1),
        "worst_group_change": 100 * (refits.worst_group_accuracy
                                     - original.worst_group_accuracy),
        "gap_change": 100 * (refits.gap - original.gap)}, index=refits.index)
    out["costs_accuracy"] = out.accuracy_change < 0
    return out


def condition_bins_source(dataset) -> str:
    """Where `condition_groups`' bins for this FER2013 cache come from: 'Training' when TF
    Transform's processed data exists (its Training-quantile buckets), else 'own' (each
    audited set's own tertiles)."""
    from face_sentiment.data.processed import ProcessedDataError, current_processed

    try:
        current_processed(dataset, with_images=False)
    except (ProcessedDataError, FileNotFoundError):
        return "own"
    return "Training"


def demographic_report(demographics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """`demographic_profile` for a reader: shares in percent, the label association with the
    attribute as the index and its p-value written out (chi-square p-values of this size
    underflow to 0)."""
    tables = {}
    for title, table in demographic_profile(demographics).items():
        if title.startswith("predicted "):
            table = table.copy()
            table["share"] = 100 * table["share"]
            table = table.rename(columns={"share": "share (%)"}, level=0)
        elif title.startswith("label association"):
            table = table.set_index("attribute")
            table["p"] = [f"{p:.2g}" if p > 0 else "< 1e-300" for p in table["p"]]
        else:
            table = 100 * table
            title = f"{title} (%)"
        tables[title] = table
    return tables
