"""Tables for notebook 01 (data exploration): who is in FER2013 and how it looks.

Every function takes the cached `Fer2013Dataset` and returns a DataFrame (or the indices of
images to show), so the notebook only calls and shows; its figures are in `data.plots`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from face_sentiment.data.cache import Fer2013Dataset
from face_sentiment.data.quality import QUALITY_COLUMNS
from face_sentiment.labels import FER2013_CLASSES, SPLITS
from face_sentiment.stats import majority_class


def class_balance(dataset: Fer2013Dataset) -> pd.DataFrame:
    """Images per split (rows) and class (columns), with totals."""
    table = pd.crosstab(pd.Categorical.from_codes(dataset.splits, SPLITS, ordered=True),
                        pd.Categorical.from_codes(dataset.labels, FER2013_CLASSES, ordered=True),
                        margins=True, margins_name="total", dropna=False)
    table.index.name, table.columns.name = "split", "class"
    return table


def provenance(dataset: Fer2013Dataset) -> pd.DataFrame:
    """Where the data came from, for citing it: source file, format, sha256 and images."""
    manifest = dataset.manifest
    return pd.Series({
        "source": manifest.get("source", ""), "format": manifest.get("source_format", ""),
        "sha256": dataset.data_hash, "images": int(len(dataset.labels)),
    }, name="value").rename_axis("FER2013").to_frame()


def majority_baseline(dataset: Fer2013Dataset) -> pd.DataFrame:
    """Per split: its most frequent class, the accuracy of always answering that class
    (its share) and uniform chance over the classes, both in percent: the floor any model's
    accuracy is read against."""
    rows = {}
    for index, split in enumerate(SPLITS):
        labels = dataset.labels[dataset.splits == index]
        top, share = majority_class(labels, len(FER2013_CLASSES))
        rows[split] = {"images": int(len(labels)), "majority class": FER2013_CLASSES[top],
                       "majority share %": 100 * share,
                       "chance %": 100 / len(FER2013_CLASSES)}
    return pd.DataFrame(rows).T.rename_axis("split")


def montage(images: np.ndarray, per_row: int, gap: int = 2) -> np.ndarray:
    """Equal-sized grey images tiled into one, `per_row` across, on a white ground (an empty
    slot stays white)."""
    images = np.asarray(images)
    count, height, width = images.shape[:3]
    rows = max(1, -(-count // per_row))
    canvas = np.full((rows * (height + gap) - gap, per_row * (width + gap) - gap), 255,
                     np.uint8)
    for index, image in enumerate(images):
        top, left = (index // per_row) * (height + gap), (index % per_row) * (width + gap)
        canvas[top:top + height, left:left + width] = image
    return canvas


def quality_by_class(dataset: Fer2013Dataset, split: str = "Training") -> pd.DataFrame:
    """Median of each quality feature per class, and the share of near-blank images."""
    frame = dataset.features.loc[dataset.split_mask(split), list(QUALITY_COLUMNS)].copy()
    frame["class"] = np.asarray(FER2013_CLASSES)[dataset.labels[dataset.split_mask(split)]]
    summary = frame.groupby("class").median(numeric_only=True).drop(columns="near_blank")
    summary["near_blank_images"] = frame.groupby("class")["near_blank"].sum()
    return summary.reindex(FER2013_CLASSES)


def duplicate_report(dataset: Fer2013Dataset) -> pd.DataFrame:
    """Every duplicate group: size, the splits it spans and whether its labels disagree."""
    groups = dataset.features["duplicate_group"].to_numpy()
    members = pd.DataFrame({"group": groups, "split": np.asarray(SPLITS)[dataset.splits],
                            "label": np.asarray(FER2013_CLASSES)[dataset.labels]})
    members = members[members.group >= 0]
    report = members.groupby("group").agg(
        images=("label", "size"),
        splits=("split", lambda s: ",".join(sorted(set(s)))),
        labels=("label", lambda s: ",".join(sorted(set(s)))),
    )
    report["cross_split"] = report.splits.str.contains(",")
    report["label_conflict"] = report.labels.str.contains(",")
    return report.sort_values("images", ascending=False)


def duplicate_summary(dataset: Fer2013Dataset, duplicates: pd.DataFrame) -> pd.DataFrame:
    """The counts behind `duplicate_report` (its result is `duplicates`): groups, images in
    them, groups spanning splits or carrying conflicting labels, pairs of copies within each
    split, and the test images with a copy in Training (faces a model may have trained on)."""
    groups = dataset.features["duplicate_group"].to_numpy()
    in_groups = groups >= 0
    training = SPLITS.index("Training")
    training_groups = np.unique(groups[in_groups & (dataset.splits == training)])
    rows = {"duplicate groups": len(duplicates),
            "images in them": int(duplicates["images"].sum()),
            "groups spanning splits": int(duplicates["cross_split"].sum()),
            "groups with conflicting labels": int(duplicates["label_conflict"].sum())}
    for index, split in enumerate(SPLITS):
        sizes = np.bincount(groups[in_groups & (dataset.splits == index)]) if in_groups.any() \
            else np.zeros(0, int)
        rows[f"pairs of copies within {split}"] = int((sizes * (sizes - 1) // 2).sum())
    for index, split in enumerate(SPLITS):
        if index != training:
            leaked = (dataset.splits == index) & in_groups & np.isin(groups, training_groups)
            rows[f"{split} images with a copy in Training"] = int(leaked.sum())
    return pd.Series(rows, name="count").to_frame()


def near_blank_by_split(dataset: Fer2013Dataset) -> pd.DataFrame:
    """Near-blank images (no face: pixel standard deviation under 2 grey levels) per split."""
    near_blank = dataset.features["near_blank"].to_numpy(bool)
    return pd.DataFrame({"near-blank images": [int((near_blank & (dataset.splits == i)).sum())
                                               for i in range(len(SPLITS))],
                         "images": [int((dataset.splits == i).sum())
                                    for i in range(len(SPLITS))]},
                        index=pd.Index(SPLITS, name="split"))


def conflicting_duplicate_examples(dataset: Fer2013Dataset, duplicates: pd.DataFrame,
                                   groups: int = 6) -> list[int]:
    """Image indices of the first `groups` duplicate groups whose labels disagree, two per
    group, for showing side by side (`duplicates` is `duplicate_report(dataset)`)."""
    conflicting = duplicates[duplicates.label_conflict].index[:groups]
    members = dataset.features.duplicate_group.to_numpy()
    return [int(i) for group in conflicting for i in np.flatnonzero(members == group)[:2]]
