"""Photo sets beside FER2013 (face_sentiment.data.photos): person-disjoint folds, faces framed as
at run time. Small fixtures only; the real LFW-expressions set is read by the evaluation
commands and notebook 09."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers import needs_blazeface

from face_sentiment.data import photos as photos_module
from face_sentiment.data.folder_dataset import DatasetError
from face_sentiment.data.photos import person_folds, photo_faces, split_folds

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_no_person_lands_in_two_folds():
    rng = np.random.default_rng(0)
    persons = [f"person_{i}" for i in rng.integers(0, 300, 2000)]
    folds = person_folds(persons, 3, seed=7)
    table = pd.DataFrame({"person": persons, "fold": folds})
    assert (table.groupby("person").fold.nunique() == 1).all()
    assert set(folds) == {0, 1, 2}
    people = table.drop_duplicates("person").fold.value_counts()
    assert people.max() - people.min() <= 1  # dealt out in turn: as many people in each fold
    # Few people (the 15 Taiwan actors): still five in each fold, none empty.
    assert np.bincount(person_folds([f"actor{i}" for i in range(15)], 3)).tolist() == [5, 5, 5]
    # The fold of a person depends on the person and the seed alone, not on the row order.
    reordered = person_folds(persons[::-1], 3, seed=7)[::-1]
    assert np.array_equal(reordered, folds)
    assert not np.array_equal(person_folds(persons, 3, seed=8), folds)


def test_the_split_reads_labels_only_so_training_and_scoring_agree():
    """People with no usable label (contempt only) take no place in the deal: the folds of
    everyone else are the same with or without them, and their rows get -1."""
    people = [f"person{i}" for i in range(30)]
    table = pd.DataFrame({"label": ["happy"] * 30, "person": people})
    with_contempt = pd.concat([table, pd.DataFrame({"label": ["contempt"] * 2,
                                                    "person": ["only_contempt", "person3"]})],
                              ignore_index=True)
    plain = split_folds(table, "lfw_expressions", CLASSES, 3, seed=1)
    mixed = split_folds(with_contempt, "lfw_expressions", CLASSES, 3, seed=1)
    assert np.array_equal(mixed[:30], plain) and mixed[30:].tolist() == [-1, -1]
    assert np.array_equal(plain, person_folds(people, 3, seed=1))


def test_person_folds_reject_bad_input():
    with pytest.raises(ValueError, match="at least 2 folds"):
        person_folds(["a", "b"], 1)
    with pytest.raises(DatasetError, match="row 3 of labels.csv has no person"):
        person_folds(["a", " ", "b"], 2)


@needs_blazeface
def test_photo_faces_split_by_person_and_drop_unknown_labels(project_root, tmp_path,
                                                             monkeypatch):
    folder = tmp_path / "lfw"
    rows = []
    rng = np.random.default_rng(1)
    for i in range(24):
        label = ("happy", "neutral", "contempt")[i % 3]
        path = f"{label}/p{i % 8}_{i:04d}.jpg"
        (folder / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / path), rng.integers(80, 120, (64, 64), dtype=np.uint8))
        rows.append({"path": path, "label": label, "person": f"p{i % 8}"})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    monkeypatch.setenv("LFW_EXPRESSIONS_PATH", str(folder))
    photos = photo_faces("lfw_expressions", CLASSES, folds=2, seed=0)
    assert len(photos.table) == 16 and "contempt" not in set(photos.table["label"])
    assert photos.faces.shape == (16, 48, 48)  # every crop answered (taken whole here)
    assert [CLASSES[i] for i in photos.labels] == list(photos.table["label"])
    held_out = set(photos.table.loc[photos.table["fold"] == 0, "person"])
    trained = set(photos.table.loc[photos.table["fold"] != 0, "person"])
    assert held_out and trained and not held_out & trained
    faces, labels = photos.fold(0, keep=False)
    assert len(faces) == len(labels) == (photos.table["fold"] != 0).sum()
    with pytest.raises(ValueError, match="unknown photo set"):
        photo_faces("ckplus", CLASSES, folds=2)
    # The faces are found once: a second call reads them from data/interim/photos.
    assert len(list((project_root / "data" / "interim" / "photos").glob("*.npz"))) == 1

    def no_search(*args, **kwargs):
        raise AssertionError("faces searched again")

    monkeypatch.setattr(photos_module, "dataset_faces", no_search)
    again = photo_faces("lfw_expressions", CLASSES, folds=2, seed=0)
    assert np.array_equal(again.faces, photos.faces) and again.table.equals(photos.table)


@pytest.mark.tensorflow
def test_held_out_subset_scores_only_the_people_never_trained_on(project_root, tmp_path,
                                                                  monkeypatch):
    from face_sentiment.data.folder_dataset import load_known
    from face_sentiment.evaluation.cross_dataset import held_out_subset

    folder = tmp_path / "lfw"
    (folder / "happy").mkdir(parents=True)
    rows = []
    for i in range(30):
        path = f"happy/p{i % 9}_{i:04d}.png"
        cv2.imwrite(str(folder / path), np.full((48, 48), 100, np.uint8))
        rows.append({"path": path, "label": "happy", "person": f"p{i % 9}"})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    monkeypatch.setenv("LFW_EXPRESSIONS_PATH", str(folder))
    (project_root / "profiles").mkdir()
    (project_root / "profiles" / "tuned.yaml").write_text(
        "training:\n  run_name: tuned\n  seed: 5\n  photo_sets: [lfw_expressions]\n"
        "  photo_folds: 3\n  photo_holdout_fold: 2\n")
    (project_root / "profiles" / "plain.yaml").write_text("training:\n  run_name: plain\n")
    dataset = load_known("lfw_expressions")
    held_out = held_out_subset(dataset, "tuned")
    expected = person_folds(dataset.table["person"], 3, seed=5) == 2
    assert held_out.table["path"].tolist() == dataset.table.loc[expected, "path"].tolist()
    assert len(held_out.images) == len(held_out.table) == expected.sum() > 0
    with pytest.raises(ValueError, match="trained on no 'lfw_expressions' photographs"):
        held_out_subset(dataset, "plain")
