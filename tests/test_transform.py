"""TF Transform (data.transform) and its reader (data.processed) on the real FER2013 cache.

One module fixture runs the Beam pipeline on every PrivateTest face plus a seeded slice of
Training (the analyzers' rows) into a temporary folder; the tests read that output. The parity
test is the issue's contract: the transform graph equals `preprocess_faces` on every PrivateTest
face within 1e-5.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import CKPLUS, FER2013, FER2013_ENV, ROOT, subprocess_env

# TF Transform imports TensorFlow: the tests that build or run its graph are marked so; the
# table, chunking and staging-folder logic is TensorFlow-free.

PARITY_TOLERANCE = 1e-5
TRAINING_ROWS = 2000


def test_chunks_stay_within_one_split():
    from face_sentiment.data.transform import CHUNK_ROWS, _chunks

    splits = np.array(["Training"] * (CHUNK_ROWS + 5) + ["PublicTest"] * 3 + ["Training"] * 2)
    chunks = _chunks(splits, None)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(splits)))
    assert all(len(set(splits[chunk])) == 1 and len(chunk) <= CHUNK_ROWS for chunk in chunks)
    analysed = _chunks(splits, splits == "PublicTest")
    assert [splits[c][0] for c in analysed] == ["PublicTest"] and len(analysed[0]) == 3


def test_a_subset_never_passes_for_the_whole_table():
    from face_sentiment.data.transform import FaceTable

    images = np.random.default_rng(0).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    table = FaceTable(
        name="t", images=images, labels=np.arange(4), classes=("a", "b", "c", "d"),
        splits=np.array(["Training"] * 2 + ["PublicTest"] * 2), source_ids=np.array(list("wxyz")),
        rows=np.arange(4), analyze=np.array([True, True, False, False]), data_hash="whole")
    first, other = table.subset(np.array([0, 2])), table.subset(np.array([1, 3]))
    assert len({table.data_hash, first.data_hash, other.data_hash}) == 3
    assert table.subset(np.array([0, 2])).data_hash == first.data_hash  # same rows, same hash
    assert list(first.rows) == [0, 2] and list(first.source_ids) == ["w", "y"]


@pytest.mark.tensorflow
def test_equalising_methods_are_refused():
    from face_sentiment.data.transform import make_preprocessing_fn
    from face_sentiment.preprocessing import PreprocessingSpec

    with pytest.raises(ValueError, match="clahe.*no TensorFlow version"):
        make_preprocessing_fn(PreprocessingSpec(method="clahe"))


@pytest.fixture(scope="module")
def real_dataset():
    if FER2013 is None:
        pytest.skip("FER2013 not found (set FER2013_PATH)")
    from face_sentiment.data.cache import load_dataset

    with pytest.MonkeyPatch.context() as patch:  # the real project tree and its cache
        patch.setenv("FACE_SENTIMENT_ROOT", str(ROOT))
        if FER2013_ENV:
            patch.setenv("FER2013_PATH", FER2013_ENV)
        return load_dataset()


@pytest.fixture(scope="module")
def processed(real_dataset, tmp_path_factory):
    """The pipeline's output for PrivateTest + a Training slice, and the rows it holds."""
    from face_sentiment.data.transform import fer2013_table, run_transform

    table = fer2013_table(real_dataset)
    training = np.flatnonzero(real_dataset.split_mask("Training"))
    chosen = np.sort(np.random.default_rng(0).choice(training, TRAINING_ROWS, replace=False))
    keep = np.concatenate([chosen, np.flatnonzero(real_dataset.split_mask("PrivateTest"))])
    folder = tmp_path_factory.mktemp("processed") / "fer2013"
    run_transform(table.subset(keep), out=folder, verbose=False)
    return folder, keep


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
def test_transform_graph_equals_preprocess_faces_on_every_private_test_face(
        real_dataset, processed):
    import tensorflow_transform as tft

    from face_sentiment.preprocessing import preprocess_faces
    from face_sentiment.quality import quality_arrays

    folder, _ = processed
    faces, labels = real_dataset.select("PrivateTest")
    rows = real_dataset.rows("PrivateTest")
    expected = preprocess_faces(faces).reshape(len(faces), -1)
    quality = quality_arrays(faces)
    raw = {"image": faces.reshape(len(faces), -1).astype(np.int64), "label": labels,
           "row": rows.astype(np.int64), "split": np.array([b"PrivateTest"] * len(faces)),
           "source_id": real_dataset.source_ids[rows].astype(bytes),
           "ferplus_votes": real_dataset.ferplus_votes[rows].astype(np.int64),
           **{n: quality[n].astype(np.float32) for n in
              ("brightness", "contrast", "sharpness", "clipped_fraction")}}
    graph = tft.TFTransformOutput(str(folder)).transform_features_layer()
    got = graph(raw)["image"].numpy()
    difference = float(np.abs(got - expected).max())
    print(f"transform graph vs preprocess_faces, {len(faces)} PrivateTest faces: "
          f"max |difference| = {difference:.2e}")
    assert difference <= PARITY_TOLERANCE


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
def test_records_hold_the_preprocessed_faces_labels_and_analyzer_outputs(
        real_dataset, processed):
    from face_sentiment.data.processed import load_processed
    from face_sentiment.preprocessing import preprocess_faces

    folder, keep = processed
    data = load_processed(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"] == {"PrivateTest": 3589, "Training": TRAINING_ROWS}
    assert manifest["analyzed_rows"] == TRAINING_ROWS and manifest["tft_version"] == "1.16.0"
    assert np.array_equal(np.sort(data.table["row"]), np.sort(keep))
    rows = data.table["row"].to_numpy()
    assert np.array_equal(data.table["label"], real_dataset.labels[rows])
    assert np.abs(data.images - preprocess_faces(real_dataset.images[rows])).max() <= 1e-5
    assert np.array_equal(np.stack(data.table["ferplus_votes"]), real_dataset.ferplus_votes[rows])
    training = data.table[data.table["split"] == "Training"]
    for name in ("brightness", "contrast", "sharpness"):
        # z-scores and quantile buckets were fitted on the Training rows only
        z = training[f"{name}_z"]
        assert abs(z.mean()) < 1e-3 and abs(z.std(ddof=0) - 1) < 1e-3
        shares = training[f"{name}_bucket"].value_counts(normalize=True).sort_index()
        assert list(shares.index) == [0, 1, 2] and shares.between(0.30, 0.37).all()
        means = training.groupby(f"{name}_bucket")[name].mean()
        assert means.is_monotonic_increasing  # buckets are ordered low -> high


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
def test_unchanged_input_reruns_nothing_and_stale_or_corrupt_data_is_named(
        real_dataset, processed, tmp_path):
    from face_sentiment.data.processed import ProcessedDataError, current_processed, load_processed
    from face_sentiment.data.transform import fer2013_table, run_transform

    folder, keep = processed
    before = (folder / "manifest.json").stat().st_mtime_ns
    run_transform(fer2013_table(real_dataset).subset(keep), out=folder, verbose=False)
    assert (folder / "manifest.json").stat().st_mtime_ns == before

    class Other:  # a cache made from other data
        data_hash = "0" * 64
    with pytest.raises(ProcessedDataError, match="other data.*make processed"):
        current_processed(Other(), folder=folder)

    broken = tmp_path / "fer2013"
    shutil.copytree(folder, broken)
    record = next(broken.glob("PrivateTest-*.tfrecord.gz"))
    record.write_bytes(record.read_bytes()[: record.stat().st_size // 2])
    with pytest.raises(ProcessedDataError, match=f"{record.name}: corrupt TFRecord"):
        load_processed(broken)
    (broken / "manifest.json").unlink()
    with pytest.raises(ProcessedDataError, match="manifest.json missing.*make processed"):
        load_processed(broken)


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
def test_training_inputs_and_slices_from_processed_data(real_dataset, processed, monkeypatch):
    import face_sentiment.data.processed as processed_module
    from face_sentiment.evaluation.metrics import quality_bins
    from face_sentiment.model.training import TrainingConfig, prepare_split

    folder, _ = processed
    monkeypatch.setattr(processed_module, "processed_dir", lambda name: folder)
    # the fixture processed a subset, whose hash names its rows: read it as current
    subset_hash = processed_module.manifest_of(folder)["data_sha256"]
    monkeypatch.setattr(type(real_dataset), "data_hash", property(lambda self: subset_hash))
    processed_module._current.cache_clear()
    from_cache, labels = prepare_split(real_dataset, "PrivateTest", TrainingConfig(), None)
    from_records, same_labels = prepare_split(real_dataset, "PrivateTest",
                                              TrainingConfig(data="processed"), None)
    assert np.array_equal(labels, same_labels)
    assert np.abs(from_cache - from_records).max() <= PARITY_TOLERANCE

    rows = real_dataset.rows("PrivateTest")
    features = processed_module.with_quality_buckets(real_dataset, rows, "PrivateTest")
    bins = quality_bins(features)
    # Training boundaries: PrivateTest's bins need not be exact thirds, but follow the values
    assert set(bins["brightness_bin"]) == {"low", "mid", "high"}
    darkest = features["brightness"].idxmin()
    assert bins.loc[darkest, "brightness_bin"] == "low"
    processed_module._current.cache_clear()


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
@pytest.mark.skipif(not CKPLUS, reason="CK+ not found (set CKPLUS_PATH)")
def test_cli_transforms_a_folder_dataset_with_vocabularies(tmp_path):
    out = tmp_path / "ckplus"
    result = subprocess.run(
        [sys.executable, "-m", "face_sentiment", "transform", "--dataset", CKPLUS,
         "--out", str(out)], capture_output=True, text=True, timeout=600,
        env={**subprocess_env(), "FACE_SENTIMENT_ROOT": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"all": manifest["analyzed_rows"]}
    assert "subject" in manifest["categorical"]
    vocabulary = (out / "transform_fn" / "assets" / "subject").read_text().split()
    assert len(vocabulary) == len(set(vocabulary)) > 10


# --- the staging folder: removed on SIGTERM/SIGINT, stale ones at the next start ---------------


def _plant(folder, owner=None, age_s=0.0):
    import os
    import time

    folder.mkdir(parents=True)
    (folder / "inputs").mkdir()
    (folder / "inputs" / "image.npy").write_bytes(b"\0" * 1024)
    if owner is not None:
        (folder / ".owner.json").write_text(json.dumps(owner))
    if age_s:
        old = time.time() - age_s
        os.utime(folder, (old, old))
    return folder


def test_stale_staging_folders_are_removed_and_live_ones_kept(tmp_path):
    import os
    import socket

    from face_sentiment.data.transform import remove_stale_staging

    host = socket.gethostname()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)  # that process has exited
    target = tmp_path / "processed" / "fer2013"
    parent = target.parent
    killed = _plant(parent / ".fer2013-killed1", {"pid": dead_pid, "host": host, "started": 0})
    live = _plant(parent / ".fer2013-running", {"pid": os.getpid(), "host": host,
                                                "started": 0})
    unowned_old = _plant(parent / ".fer2013-old00001", age_s=3600)
    just_made = _plant(parent / ".fer2013-new00001")  # a run about to claim it
    retired = _plant(parent / ".fer2013-retired", age_s=3600)
    other = _plant(parent / ".ckplus-killed1", {"pid": dead_pid, "host": host, "started": 0})
    removed = remove_stale_staging(target)
    assert sorted(removed) == sorted([killed, unowned_old, retired])
    assert not killed.exists() and not unowned_old.exists() and not retired.exists()
    assert live.exists() and just_made.exists() and other.exists()
    assert remove_stale_staging(tmp_path / "nowhere" / "fer2013") == []


def _tiny_table(rows: int = 64):
    from face_sentiment.data.transform import FaceTable

    rng = np.random.default_rng(0)
    splits = np.array(["Training"] * (rows // 2) + ["PublicTest"] * (rows - rows // 2))
    return FaceTable(
        name="tiny", images=rng.integers(0, 256, (rows, 48, 48), dtype=np.uint8),
        labels=rng.integers(0, 7, rows), classes=("angry", "disgust", "fear", "happy", "sad",
                                                  "surprise", "neutral"),
        splits=splits, source_ids=np.array([f"s{i}" for i in range(rows)]),
        rows=np.arange(rows), analyze=splits == "Training", data_hash="tiny")


@pytest.mark.parametrize("signum,raised,code", [("SIGTERM", "Terminated", 143),
                                                ("SIGINT", "KeyboardInterrupt", None)])
def test_a_signal_during_the_staging_step_removes_the_staging_folder(
        tmp_path, monkeypatch, signum, raised, code):
    """The pipeline stands in for Beam: it fills the staging folder, then its process gets
    the signal. The run unwinds, leaves no staging folder and no output, and the signal
    handlers are the previous ones again."""
    import os
    import signal

    from face_sentiment.data import transform

    seen = {}

    def pipeline(table, spec, staging, beam_args):
        transform._write_inputs(table, staging / "inputs")
        seen["staging"] = staging
        seen["owner"] = json.loads((staging / transform.OWNER_FILE).read_text())
        os.kill(os.getpid(), getattr(signal, signum))
        raise AssertionError("the signal did not interrupt the run")

    monkeypatch.setattr(transform, "_run_pipeline", pipeline)
    monkeypatch.setattr(transform, "transform_key", lambda table, spec: json.dumps({"tft": "x"}))
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    target = tmp_path / "processed" / "tiny"
    expected = transform.Terminated if raised == "Terminated" else KeyboardInterrupt
    with pytest.raises(expected) as caught:
        transform.run_transform(_tiny_table(), out=target, verbose=False)
    if code is not None:
        assert caught.value.code == code
    assert seen["owner"]["pid"] == os.getpid()
    assert not seen["staging"].exists() and not target.exists()
    assert transform.staging_folders(target) == []
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


# A child that runs the real Beam pipeline on a tiny table (TF Transform's imports dominate).
_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from test_transform import _tiny_table
from face_sentiment.data.transform import run_transform
run_transform(_tiny_table(), out={out!r}, verbose=False)
"""


@pytest.mark.slow
@pytest.mark.tensorflow
def test_sigterm_to_a_real_transform_leaves_no_staging_folder(tmp_path):
    """`face-sentiment transform` killed with SIGTERM (a supervisor, `docker stop`) while Beam
    runs in its staging folder: the process exits 143 and the folder is gone."""
    import signal
    import time

    target = tmp_path / "processed" / "tiny"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(tests=str(ROOT / "tests"), out=str(target))],
        env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and child.poll() is None:
            staged = list(target.parent.glob(".tiny-*/inputs/image.npy"))
            if staged:
                break
            time.sleep(0.2)
        assert child.poll() is None, f"the child ended first: {child.communicate()[1][-2000:]}"
        assert staged, "no staging folder appeared within 300 s"
        time.sleep(1.0)  # into Beam's work
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 143, stderr[-2000:]
    assert not list(target.parent.glob(".tiny-*")) and not target.exists()
