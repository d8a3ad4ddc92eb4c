"""Data layer: find, read and validate what a user downloads, and cache it once.

- `fer2013`: FER2013 in both public forms (Kaggle's CSV and the image-folder release).
- `ferplus`: Microsoft's FER+ relabelling joined by row; majority and reference-rule labels.
- `quality`: per-image quality features (brightness, contrast, sharpness, clipping) and
  exact duplicates; the same features describe live faces for monitoring.
- `cache`: the canonical cache in data/interim (`load_dataset`), built atomically.
- `folder_dataset`: labelled folders or zips (images + labels.csv: CK+, Taiwan faces, LFW
  expressions, lab data).
- `photos`: photo sets beside FER2013: the person split, their faces (cached) for training.
- `validation`: TFDV statistics, the data contract, drift and skew (imports TFDV and Beam).
- `exploration`: tables for notebook 01.
- `transform`: the TF Transform preprocessing of the cache into TFRecords (`make processed`;
  staging cleaned on a signal and at the next start).
- `processed`: reading those records back, with their Training-quantile slices.
- `plots`: the stage's figures (notebooks 01-03): class balance, sample faces, quality per
  class, the validated features per split, the lighting normalisations, the quality buckets.
Imports nothing from later stages (model, evaluation, responsible).
"""

from face_sentiment._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "DataError": "fer2013", "locate_fer2013": "fer2013", "read_fer2013": "fer2013",
    "locate_ferplus": "ferplus", "read_ferplus": "ferplus",
    "vote_distribution": "ferplus", "majority_labels": "ferplus",
    "reference_majority_labels": "ferplus", "ferplus_test": "ferplus",
    "ferplus_reference_test": "ferplus",
    "quality_features": "quality", "duplicate_groups": "quality",
    "Fer2013Dataset": "cache", "build_cache": "cache", "load_dataset": "cache",
    "FolderDataset": "folder_dataset", "DatasetError": "folder_dataset",
    "KNOWN_DATASETS": "folder_dataset", "load_folder_dataset": "folder_dataset",
    "load_known": "folder_dataset", "is_available": "folder_dataset",
    "missing_message": "folder_dataset", "dataset_faces": "folder_dataset",
    "person_folds": "photos", "split_folds": "photos", "photo_faces": "photos",
    "run_validation": "validation",
})
