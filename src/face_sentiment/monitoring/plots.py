"""The monitoring stage's figures: the drift timeline (`face-sentiment monitor` writes it as
timeline.png, notebook 10 shows it) and notebook 10's threshold measurements (`experiments`:
each column's scores per condition, false alarms against detection).

matplotlib is imported inside each function: the monitor command imports this module and draws
only when it writes its outputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from face_sentiment.monitoring import drift

# --------------------------------------------------------------------------------------------
# The monitor's timeline (`report`)


def plot_timeline(timeline: pd.DataFrame, window: drift.Window | str,
                  performance: pd.DataFrame | None = None, drift_share: float | None = None,
                  title: str | None = None):
    """Drift share per window (windows with dataset drift marked) above each expression's share
    of the top predictions; accuracy with its 95% interval below when labels were given."""
    import matplotlib.pyplot as plt
    window = drift.parse_window(window)
    panels = 3 if performance is not None and len(performance) else 2
    figure, axes = plt.subplots(panels, 1, figsize=(9, 2.4 * panels + 0.6), sharex=True)
    if window.kind == "seconds":
        x = pd.to_datetime(timeline["end"], unit="s")
        label = f"end of window ({window}, UTC)"
    else:
        x = timeline["window"]
        label = f"window ({window.size:g} {window.kind} each, oldest first)"
        axes[-1].xaxis.get_major_locator().set_params(integer=True)
    tested = timeline["status"] == "tested"
    axes[0].plot(x[tested], timeline.loc[tested, "drift_share"], "o-", color="tab:blue",
                 label="share of columns drifted")
    drifted = tested & timeline["dataset_drift"].astype(bool)
    axes[0].plot(x[drifted], timeline.loc[drifted, "drift_share"], "o", color="tab:red",
                 markersize=9, label="dataset drift")
    if drift_share is not None:
        axes[0].axhline(drift_share, color="tab:red", linestyle="--", linewidth=1,
                        label=f"threshold {drift_share:g}")
    untested = ~tested
    if untested.any():
        axes[0].plot(x[untested], np.zeros(int(untested.sum())), "x", color="grey",
                     label="not tested (too few faces)")
    axes[0].set_ylim(-0.05, 1.05)
    axes[0].set_ylabel("drift share")
    axes[0].legend(loc="upper left", fontsize=7, ncol=2)
    shares = [c for c in timeline.columns if c.startswith("share_")]
    if shares:
        axes[1].stackplot(x, *[timeline[c] for c in shares],
                          labels=[c.removeprefix("share_") for c in shares])
        axes[1].set_ylim(0, 1)
        axes[1].legend(loc="upper left", fontsize=7, ncol=len(shares))
    axes[1].set_ylabel("share of faces\n(top class)")
    if panels == 3:
        merged = timeline[["window"]].assign(x=x).merge(performance, on="window")
        axes[2].errorbar(merged["x"], merged["accuracy"],
                         yerr=[merged["accuracy"] - merged["accuracy_low"],
                               merged["accuracy_high"] - merged["accuracy"]], fmt="o-",
                         capsize=3, label="accuracy (95% CI)")
        axes[2].plot(merged["x"], merged["macro_f1"], "s--", label="macro-F1")
        axes[2].set_ylim(0, 1)
        axes[2].set_ylabel("with labels")
        axes[2].legend(loc="lower left", fontsize=7)
    axes[-1].set_xlabel(label)
    figure.suptitle(title or "Drift of live faces per window")
    figure.tight_layout()
    return figure


def close_figure(figure) -> None:
    """Free a figure once it is written to a file (pyplot keeps every figure it made)."""
    import matplotlib.pyplot as plt
    plt.close(figure)


# --------------------------------------------------------------------------------------------
# Notebook 10: the threshold measurements (`experiments`)


def plot_tradeoff(summary: pd.DataFrame, chosen: drift.DriftSettings | None = None):
    """False-alarm rate (worst unshifted condition) and detection rate (mean and worst shift)
    against the numeric threshold, with the Wilson bands of the worst ones when `summary` has
    them; one panel per drift share, one line style per top-class (Jensen-Shannon) threshold;
    the chosen setting dashed."""
    import matplotlib.pyplot as plt
    shares = sorted(summary["drift_share"].unique())
    styles = dict(zip(sorted(summary["cat_threshold"].unique()), ("-", "--", ":", "-."),
                      strict=False))
    metrics = (("false_alarm_max", "false alarms (worst same-distribution)", "tab:red", "o"),
               ("detection_mean", "detection (mean over shifts)", "tab:blue", "s"),
               ("detection_min", "detection (worst shift)", "tab:green", "^"))
    figure, axes = plt.subplots(1, len(shares), figsize=(4.6 * len(shares), 3.6), sharey=True,
                                squeeze=False)
    for ax, share in zip(axes[0], shares, strict=True):
        for cat, part in summary[summary["drift_share"] == share].groupby("cat_threshold"):
            part = part.sort_values("num_threshold")
            for column, label, colour, marker in metrics:
                ax.plot(part["num_threshold"], part[column], marker=marker, color=colour,
                        linestyle=styles.get(cat, "-"), label=f"{label}, JS {cat:g}")
                if f"{column}_ci_low" in part:
                    ax.fill_between(part["num_threshold"], part[f"{column}_ci_low"],
                                    part[f"{column}_ci_high"], color=colour, alpha=0.12)
        if chosen is not None and share == chosen.drift_share:
            ax.axvline(chosen.num_threshold, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(sorted(summary["num_threshold"].unique()))
        ax.set_xlabel("numeric threshold (normed Wasserstein)")
        ax.set_title(f"a window drifts at drift share >= {share:g}", fontsize=9)
    axes[0][0].set_ylabel("share of windows flagged")
    figure.suptitle("False alarms against detection, per threshold setting", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=7,
                  bbox_to_anchor=(0.5, -0.02 - 0.05 * len(styles)))
    figure.tight_layout()
    return figure


def plot_scores(scores: pd.DataFrame, settings: drift.DriftSettings, title: str = "",
                columns_per_row: int = 4):
    """Each column's score per condition (box per shift), with its threshold dashed; at most
    `columns_per_row` panels a row."""
    import matplotlib.pyplot as plt
    columns = list(dict.fromkeys(scores["column"]))
    rows = -(-len(columns) // columns_per_row)
    figure, axes = plt.subplots(rows, columns_per_row,
                                figsize=(2.3 * columns_per_row, 2.5 * rows + 0.5),
                                squeeze=False, sharey=True)
    labels = [f"{s} {lv:g}" if s != "none" else "same" for s, lv in
              scores[["shift", "level"]].drop_duplicates().itertuples(index=False)]
    for ax, column in zip(axes.flat, columns, strict=False):
        part = scores[scores["column"] == column]
        groups = [g["score"].to_numpy() for _, g in part.groupby(["shift", "level"], sort=False)]
        ax.boxplot(groups, vert=True, widths=0.6)
        ax.set_xticks(range(1, len(groups) + 1), labels[:len(groups)], rotation=90, fontsize=7)
        ax.axhline(settings.threshold(column), color="tab:red", linestyle="--", linewidth=1)
        ax.set_yscale("symlog", linthresh=0.05)
        ax.set_ylim(bottom=0)
        ax.set_title(column, fontsize=8)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel("drift score", fontsize=8)
    figure.suptitle(f"{title} (threshold dashed)" if title else "score per window (threshold "
                    "dashed)", fontsize=10)
    figure.tight_layout()
    return figure
