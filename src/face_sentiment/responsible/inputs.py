"""What an audit scores (`AuditInputs`): the images' labels, each model's predictions, the
sensitive attributes and, optionally, each image's cluster (the person).

Two sources: FER2013 PrivateTest sliced by image condition (brightness, contrast, sharpness
bins: FER2013 has no per-image demographics) and a labelled folder dataset through the Pi
runner's face detection, sliced by its labels.csv columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from face_sentiment.data.processed import with_quality_buckets

# Without --attribute, the CLI audits the labels.csv columns with 2..10 distinct values.
MAX_DEFAULT_GROUPS = 10


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


def condition_groups(features: pd.DataFrame) -> pd.DataFrame:
    """brightness/contrast/sharpness bins (low/mid/high) of these images: the processed
    data's Training-quantile buckets when `features` has them, else tertiles of this set."""
    from face_sentiment.evaluation.metrics import quality_bins

    bins = quality_bins(features.reset_index(drop=True))
    return bins.rename(columns=lambda c: c.removesuffix("_bin"))


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


def split_rows(dataset, split: str, count: int | None = None, seed: int = 0) -> np.ndarray:
    """Row indices of a FER2013 split, a seeded sorted subset of `count` when given."""
    rows = np.flatnonzero(dataset.split_mask(split))
    if count and count < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, count, replace=False))
    return rows


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


def clusters_per_group(inputs: AuditInputs) -> pd.Series:
    """How many distinct clusters (people) each intersection of the attributes holds."""
    if inputs.clusters is None:
        raise ValueError("these audit inputs have no clusters")
    groups = [inputs.sensitive[column].to_numpy() for column in inputs.sensitive.columns]
    return pd.Series(inputs.clusters).groupby(groups).nunique().rename_axis(
        list(inputs.sensitive.columns))
