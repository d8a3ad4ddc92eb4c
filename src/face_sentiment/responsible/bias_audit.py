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

The parts live in their own modules of `face_sentiment.responsible`, by concern: `groups`
(per-group metrics), `gaps` (gap tests), `inputs` (what an audit scores), `demographics`,
`mitigation` and `presentation` (tables for a reader); statistics come from
`face_sentiment.stats`, the figure from `plots`. This module is the audit itself
(`audit_tables`, shared by the CLI's `report` and notebook 06) and, as before the split, the
one place every name of those parts is imported from.
"""

from __future__ import annotations

import pandas as pd

from face_sentiment.responsible.demographics import (
    DEMOGRAPHIC_COLUMNS,
    DEMOGRAPHICS_ENV,
    DEMOGRAPHICS_FILE,
    DEMOGRAPHICS_SOURCE,
    cramers_v,
    demographic_profile,
    demographic_report,
    label_by_group,
    load_demographics,
    locate_demographics,
    representation,
)
from face_sentiment.responsible.gaps import (
    GAP_METRICS,
    audit,
    audit_models,
    gap_test,
    holm,
    significant,
)
from face_sentiment.responsible.groups import (
    accuracy,
    by_group_models,
    by_group_table,
    group_metrics,
    intersection_key,
    metric_functions,
    recall_of,
)
from face_sentiment.responsible.inputs import (
    MAX_DEFAULT_GROUPS,
    AuditInputs,
    clusters_per_group,
    condition_bins_source,
    condition_groups,
    fer2013_inputs,
    folder_inputs,
    split_rows,
)
from face_sentiment.responsible.mitigation import (
    attribute_to_mitigate,
    group_weights,
    mitigate_by_grouped_refit,
    mitigate_by_reweighting,
    mitigate_fer2013_condition,
    mitigate_folder_attribute,
    penultimate_features,
    refit_head,
)
from face_sentiment.responsible.presentation import (
    gap_report,
    largest_gaps,
    mitigation_effects,
    percent_table,
    tradeoff_report,
)
from face_sentiment.stats import macro_f1

__all__ = [
    "DEMOGRAPHICS_ENV", "DEMOGRAPHICS_FILE", "DEMOGRAPHICS_SOURCE", "DEMOGRAPHIC_COLUMNS",
    "GAP_METRICS", "MAX_DEFAULT_GROUPS", "AuditInputs", "accuracy", "attribute_to_mitigate",
    "audit", "audit_models", "audit_tables", "by_group_models", "by_group_table",
    "clusters_per_group", "condition_bins_source", "condition_groups", "cramers_v",
    "demographic_profile", "demographic_report", "fer2013_inputs", "folder_inputs",
    "gap_report", "gap_test", "group_metrics", "group_weights", "holm", "intersection_key",
    "label_by_group", "largest_gaps", "load_demographics", "locate_demographics", "macro_f1",
    "metric_functions", "mitigate_by_grouped_refit", "mitigate_by_reweighting",
    "mitigate_fer2013_condition", "mitigate_folder_attribute", "mitigation_effects",
    "penultimate_features", "percent_table", "recall_by_group", "recall_of",
    "refit_head", "report", "representation", "significant", "split_rows", "tradeoff_report",
]


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
