"""The data/interim/fer2013 cache: build, reuse, rebuild, atomic failure, FER+ labels."""

import hashlib
import json
import stat

import numpy as np
import pandas as pd
import pytest
from synthetic import FERPLUS_EXPECTED, FOLDER_ORDER

from face_sentiment.data.cache import build_cache, cache_dir, load_dataset
from face_sentiment.data.fer2013 import DataError
from face_sentiment.data.quality import QUALITY_COLUMNS
from face_sentiment.labels import FER2013_CLASSES, SPLITS
from face_sentiment.paths import project_root as resolved_root

CACHE_FILES = {"arrays.npz", "features.parquet", "manifest.json"}


def snapshot(folder):
    """Modification times of the cache files, and the folder's inode."""
    return folder.stat().st_ino, {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def leftovers(project_root):
    return [p.name for p in (project_root / "data" / "interim").iterdir()
            if p.name.startswith(".fer2013-")]


def manifest_of(folder):
    return json.loads((folder / "manifest.json").read_text())


def test_tests_run_in_a_temporary_project(project_root):
    assert resolved_root() == project_root.resolve()
    assert cache_dir() == project_root.resolve() / "data" / "interim" / "fer2013"


def test_build_cache_writes_arrays_features_and_manifest(fer2013_csv, sample, project_root):
    folder = build_cache(fer2013_csv, verbose=False)
    assert folder == project_root / "data" / "interim" / "fer2013"
    assert {p.name for p in folder.iterdir()} == CACHE_FILES
    manifest = manifest_of(folder)
    assert manifest["source"] == str(fer2013_csv)
    assert manifest["source_format"] == "csv"
    assert manifest["source_sha256"] == hashlib.sha256(fer2013_csv.read_bytes()).hexdigest()
    assert manifest["ferplus"] is None and manifest["ferplus_sha256"] is None
    assert manifest["classes"] == list(FER2013_CLASSES)
    assert manifest["total"] == 9
    expected = {split: dict.fromkeys(FER2013_CLASSES, 0) for split in SPLITS}
    for label, split in zip(sample.labels, sample.splits, strict=True):
        expected[SPLITS[split]][FER2013_CLASSES[label]] += 1
    assert manifest["counts"] == expected
    assert manifest["near_blank"] == 1  # the all-zero image
    assert manifest["duplicates"] == {
        "duplicate_groups": 1, "images_in_groups": 2,
        "within_split_pairs": dict.fromkeys(SPLITS, 0), "cross_split_groups": 1,
    }
    assert leftovers(project_root) == []


def test_load_dataset_round_trips_the_source(fer2013_csv, sample):
    dataset = load_dataset(fer2013_csv)
    np.testing.assert_array_equal(dataset.images, sample.images)
    np.testing.assert_array_equal(dataset.labels, sample.labels)
    np.testing.assert_array_equal(dataset.splits, sample.splits)
    assert list(dataset.source_ids) == [f"row-{i}" for i in range(9)]
    assert list(dataset.features.columns) == [*QUALITY_COLUMNS, "duplicate_group"]
    assert len(dataset.features) == 9
    assert dataset.features.near_blank.tolist() == [i == 2 for i in range(9)]
    groups = dataset.features.duplicate_group
    assert groups[0] == groups[4] >= 0 and (groups.drop([0, 4]) == -1).all()
    assert dataset.data_hash == hashlib.sha256(fer2013_csv.read_bytes()).hexdigest()
    images, labels = dataset.select("Training")
    np.testing.assert_array_equal(images, sample.images[:3])
    assert labels.dtype == np.int64 and labels.tolist() == sample.labels[:3].tolist()


def test_source_found_in_data_raw(fer2013_csv, raw_dir):
    in_raw = raw_dir / "fer2013.csv"
    in_raw.write_bytes(fer2013_csv.read_bytes())
    assert load_dataset().manifest["source"] == str(in_raw)


@pytest.mark.parametrize("source", ["image_folder_zip", "image_folder_dir"])
def test_cache_from_image_folder(source, sample, request):
    dataset = load_dataset(request.getfixturevalue(source))
    assert dataset.manifest["source_format"] == "image-folder"
    np.testing.assert_array_equal(dataset.labels, sample.labels[list(FOLDER_ORDER)])
    assert dataset.source_ids[0] == "Training_7"


def test_second_build_reuses_the_cache(fer2013_csv, capsys):
    folder = build_cache(fer2013_csv, verbose=True)
    assert "cache built" in capsys.readouterr().out
    before = snapshot(folder)
    assert build_cache(fer2013_csv, verbose=True) == folder
    assert "cache up to date" in capsys.readouterr().out
    assert snapshot(folder) == before


def test_quiet_build_prints_nothing(fer2013_csv, capsys):
    build_cache(fer2013_csv, verbose=False)
    build_cache(fer2013_csv, verbose=False)
    assert capsys.readouterr().out == ""


def test_force_rebuilds(fer2013_csv, capsys):
    folder = build_cache(fer2013_csv, verbose=False)
    before = snapshot(folder)
    build_cache(fer2013_csv, force=True, verbose=True)
    assert "cache built" in capsys.readouterr().out
    assert snapshot(folder) != before


def test_changed_source_rebuilds(fer2013_csv, write_csv, csv_rows, project_root):
    old_sha = load_dataset(fer2013_csv).data_hash
    csv_rows[0][0] = "6"  # angry -> neutral in Training
    write_csv(csv_rows)
    dataset = load_dataset(fer2013_csv)
    assert dataset.data_hash != old_sha
    assert dataset.labels[0] == 6
    assert dataset.manifest["counts"]["Training"]["neutral"] == 2
    assert dataset.manifest["counts"]["Training"]["angry"] == 0
    assert leftovers(project_root) == []


def test_corrupted_source_keeps_the_good_cache(fer2013_csv, write_csv, csv_rows, project_root):
    folder = build_cache(fer2013_csv, verbose=False)
    good_manifest = (folder / "manifest.json").read_text()
    tokens = csv_rows[5][1].split()
    tokens[0] = "256"
    csv_rows[5][1] = " ".join(tokens)
    write_csv(csv_rows)
    with pytest.raises(DataError, match=r"line 7 \(data row 5\): pixel value 256"):
        build_cache(fer2013_csv, verbose=False)
    assert (folder / "manifest.json").read_text() == good_manifest
    assert {p.name for p in folder.iterdir()} == CACHE_FILES
    with np.load(folder / "arrays.npz") as arrays:
        assert arrays["images"].shape == (9, 48, 48)
    assert leftovers(project_root) == []


def test_failed_write_keeps_the_good_cache(fer2013_csv, write_csv, csv_rows, project_root,
                                           monkeypatch):
    folder = build_cache(fer2013_csv, verbose=False)
    good_manifest = (folder / "manifest.json").read_text()
    csv_rows[0][0] = "6"
    write_csv(csv_rows)

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    with pytest.raises(OSError, match="No space left"):
        build_cache(fer2013_csv, verbose=False)
    assert (folder / "manifest.json").read_text() == good_manifest
    assert leftovers(project_root) == []


def test_cache_folder_has_ordinary_permissions(fer2013_csv, project_root):
    folder = build_cache(fer2013_csv, verbose=False)
    interim = project_root / "data" / "interim"  # made by mkdir under the same umask
    assert stat.S_IMODE(folder.stat().st_mode) == stat.S_IMODE(interim.stat().st_mode)


# --- FER+ ------------------------------------------------------------------------------------

def test_ferplus_attached(fer2013_csv, ferplus_csv, sample):
    dataset = load_dataset(fer2013_csv, ferplus_csv)
    assert dataset.manifest["ferplus"] == str(ferplus_csv)
    assert dataset.manifest["ferplus_sha256"] == hashlib.sha256(
        ferplus_csv.read_bytes()).hexdigest()
    np.testing.assert_array_equal(dataset.labels_for("ferplus"), FERPLUS_EXPECTED)
    np.testing.assert_array_equal(dataset.labels_for("fer2013"), sample.labels)
    # PrivateTest rows 6 (contempt), 7 (unknown on top: dropped) and 8 (fear).
    images, labels = dataset.select("PrivateTest", "ferplus")
    np.testing.assert_array_equal(images, sample.images[[6, 8]])
    assert labels.dtype == np.int64 and labels.tolist() == [7, 2]
    # PublicTest row 4 is a tie: dropped under FER+, kept under FER2013.
    assert len(dataset.select("PublicTest", "ferplus")[1]) == 2
    assert len(dataset.select("PublicTest", "fer2013")[1]) == 3
    distribution = dataset.ferplus_distribution()
    assert distribution.shape == (9, 8)
    np.testing.assert_allclose(distribution[FERPLUS_EXPECTED >= 0].sum(axis=1), 1.0, rtol=1e-6)


def test_vote_targets_follow_the_rows_select_returns(fer2013_csv, ferplus_csv, sample):
    dataset = load_dataset(fer2013_csv, ferplus_csv)
    for split in ("Training", "PublicTest", "PrivateTest"):
        _, labels = dataset.select(split, "ferplus")
        targets = dataset.select_vote_targets(split)
        assert targets.shape == (len(labels), 8)
        np.testing.assert_array_equal(targets.argmax(axis=1), labels)
    # Training rows 0 (anger 8, neutral 2) and 1 (happiness 10); row 2 has no FER+ label.
    expected = np.zeros((2, 8), np.float32)
    expected[0, [0, 6]] = [0.8, 0.2]
    expected[1, 3] = 1.0
    np.testing.assert_allclose(dataset.select_vote_targets("Training"), expected, rtol=1e-6)
    # PrivateTest row 8: fear 9 and a single unknown vote -> all fear.
    assert dataset.select_vote_targets("PrivateTest")[-1].tolist() == [0, 0, 1, 0, 0, 0, 0, 0]


def test_ferplus_found_in_data_raw(fer2013_csv, ferplus_csv, raw_dir):
    (raw_dir / "fer2013new.csv").write_bytes(ferplus_csv.read_bytes())
    dataset = load_dataset(fer2013_csv)
    np.testing.assert_array_equal(dataset.labels_for("ferplus"), FERPLUS_EXPECTED)


def test_adding_ferplus_rebuilds(fer2013_csv, ferplus_csv, capsys):
    build_cache(fer2013_csv, verbose=False)
    build_cache(fer2013_csv, ferplus_csv, verbose=True)
    assert "cache built" in capsys.readouterr().out
    assert manifest_of(build_cache(fer2013_csv, ferplus_csv, verbose=False))["ferplus"]


def test_ferplus_labels_without_ferplus(fer2013_csv):
    dataset = load_dataset(fer2013_csv)
    with pytest.raises(ValueError, match="no FER\\+ file was attached") as info:
        dataset.labels_for("ferplus")
    assert "FERPLUS_PATH" in str(info.value) and "fer2013new.csv" in str(info.value)
    with pytest.raises(ValueError, match="FER\\+"):
        dataset.select("Training", "ferplus")
    with pytest.raises(ValueError, match="no FER\\+ file"):
        dataset.ferplus_distribution()
    with pytest.raises(ValueError, match="unknown label set 'affectnet'"):
        dataset.labels_for("affectnet")


def test_ferplus_with_image_folder_source_is_refused(image_folder_zip, ferplus_csv,
                                                     project_root):
    with pytest.raises(DataError, match="image-folder release has no row order"):
        build_cache(image_folder_zip, ferplus_csv, verbose=False)
    assert not (project_root / "data" / "interim" / "fer2013").exists()
