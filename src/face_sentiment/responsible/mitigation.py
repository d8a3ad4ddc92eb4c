"""Mitigation: refit the model's final softmax layer on its own penultimate features with
group-reweighted training samples, and compare accuracy and gap with an unweighted refit and
the original model (the accuracy/fairness trade-off, measured).

On FER2013 (`mitigate_fer2013_condition`) the refits learn on a Training subset and are scored
on PrivateTest. Where only the audited set carries the attribute (Taiwan's age groups),
`mitigate_folder_attribute` refits on some of its people and scores the others
(cross-validation grouped by person). Every refit is scored by `gaps.gap_test`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from face_sentiment.data.processed import with_quality_buckets
from face_sentiment.responsible.gaps import gap_test
from face_sentiment.responsible.groups import accuracy
from face_sentiment.responsible.inputs import condition_groups, split_rows
from face_sentiment.stats import macro_f1

if TYPE_CHECKING:
    from face_sentiment.responsible.inputs import AuditInputs


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


def attribute_to_mitigate(significant_gaps: pd.DataFrame, model: str) -> str | None:
    """The attribute of `model`'s largest significant gap, from `significant(gaps)`, or None
    when the model has none (only a model's own gaps call for mitigating it)."""
    if not len(significant_gaps) or \
            model not in significant_gaps.index.get_level_values("model"):
        return None
    return significant_gaps.xs(model, level="model").difference.idxmax()[0]
