"""The audit's tables for a reader (notebook 06): metrics in percent, gaps in points (its
figure, `plot_by_group`, is in `responsible.plots`).

Nothing here computes a statistic: each function re-expresses a table of `groups`, `gaps` or
`mitigation`.
"""

from __future__ import annotations

import pandas as pd


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
