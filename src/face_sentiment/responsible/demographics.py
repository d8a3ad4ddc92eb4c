"""FER2013's demographic make-up from *model-predicted* FairFace attributes.

FER2013 has no per-image demographics. Predictions of a FairFace model for its images
(Dominguez-Catena et al., arXiv 2312.14626) cannot be joined to images, so they describe the
dataset, not the model: the representation of each predicted group and the label-by-group
association (chi-square test, Cramér's V).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from face_sentiment.paths import locate_input

DEMOGRAPHICS_ENV = "FAIRFACE_DEMOGRAPHICS_PATH"
DEMOGRAPHICS_FILE = "fer2013_fairface_predicted.csv.gz"
DEMOGRAPHICS_SOURCE = ("FairFace-predicted demographics of FER2013 (MIT licence): from the "
                       "repository of Dominguez-Catena et al., arXiv 2312.14626 "
                       "(columns age,race,gender,label,partition)")
DEMOGRAPHIC_COLUMNS = ("race", "gender", "age")


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


def demographic_profile(demographics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The dataset-level profile from predicted demographics: representation of each
    attribute, the label association of each (Cramér's V) and label shares by gender."""
    tables = {f"predicted {column}": representation(demographics, column)
              for column in DEMOGRAPHIC_COLUMNS}
    tables["label association (Cramér's V)"] = pd.DataFrame(
        [cramers_v(demographics, column) for column in DEMOGRAPHIC_COLUMNS])
    tables["label shares within each predicted gender"] = label_by_group(demographics, "gender")
    return tables


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
