"""The Feast feature store (face_sentiment.features, features/): apply, ingest, materialize,
the point-in-time training set, the online read, bad input, and the monitor's store windows.

The store is a copy of the committed features/ folder in a temporary tree (its data/ there
too: the checkout's features/ and data/ are never written). It holds a real slice of the
FER2013 cache (the first ROWS rows, FER+ votes included), a labelled batch of real PublicTest
crops, and a real runner log: the Pi runner with the shipped int8 model on the shared video.
One store is built per module (Feast takes ~10 s to import, each step a few seconds).
"""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers import FACE_VIDEO, FER2013, FERPLUS, HAS_BLAZEFACE, REAL_MODELS, ROOT

from face_sentiment.labels import FER2013_CLASSES

ROWS = 2000
DEVICE = "pi-test"
NOW = pd.Timestamp.now(tz="UTC")

needs_fer2013 = pytest.mark.skipif(FER2013 is None, reason="FER2013 not found (set "
                                   "FER2013_PATH)")
needs_log = pytest.mark.skipif(
    not (FACE_VIDEO.is_file() and HAS_BLAZEFACE and
         (REAL_MODELS / "face_sentiment_int8.tflite").is_file()),
    reason=f"a real log needs the video ({FACE_VIDEO}), the BlazeFace models and the shipped "
           "int8 model")


def real(*marks):
    """Slow, real data (FER2013; a runner log too when `needs_log` is among `marks`)."""
    def mark(test):
        for decorator in (pytest.mark.slow, pytest.mark.real_data, needs_fer2013, *marks):
            test = decorator(test)
        return test
    return mark


def copy_repo(tree):
    """The committed Feast repository copied into a temporary project tree."""
    repo = tree / "features"
    shutil.copytree(ROOT / "features", repo, ignore=shutil.ignore_patterns("__pycache__"))
    return repo


@pytest.fixture(scope="module")
def dataset():
    from face_sentiment.data.cache import load_dataset
    with pytest.MonkeyPatch.context() as patch:  # the real checkout's cache, read only
        patch.setenv("FACE_SENTIMENT_ROOT", str(ROOT))
        return load_dataset(FER2013, FERPLUS)


@pytest.fixture(scope="module")
def real_log(tmp_path_factory):
    """The runner's log of 30 frames of the shared video (shipped int8 model)."""
    from face_sentiment.live import runner
    folder = tmp_path_factory.mktemp("log")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACE_SENTIMENT_DEVICE", DEVICE)
        patch.setenv("FACE_SENTIMENT_ENERGY", "off")
        code = runner.main(["--source", str(FACE_VIDEO), "--model",
                            str(REAL_MODELS / "face_sentiment_int8.tflite"), "--benchmark", "30",
                            "--out", str(folder), "--log", str(folder / "real.jsonl"),
                            "--quiet"])
    assert code == 0
    return folder / "real.jsonl"


@pytest.fixture(scope="module")
def batch(dataset, tmp_path_factory):
    """A new labelled batch: 12 real PublicTest crops as PNGs, labelled two days ago."""
    folder = tmp_path_factory.mktemp("batch") / "lab-batch"
    rows = np.flatnonzero(dataset.split_mask("PublicTest"))[:12]
    labelled = (NOW - pd.Timedelta(days=2)).timestamp()
    table = []
    for i, row in enumerate(rows):
        label = FER2013_CLASSES[dataset.labels[row]]
        (folder / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / label / f"{i}.png"), dataset.images[row])
        table.append({"path": f"{label}/{i}.png", "label": label, "time": labelled})
    pd.DataFrame(table).to_csv(folder / "labels.csv", index=False)
    return folder, rows


@pytest.fixture(scope="module")
def store(dataset, batch, tmp_path_factory):
    """Applied copy with the first ROWS FER2013 rows and the batch in its offline tables."""
    from face_sentiment.data.folder_dataset import load_folder_dataset
    from face_sentiment.features import retrieval, sources
    from face_sentiment.features.store import apply
    repo = copy_repo(tmp_path_factory.mktemp("project"))
    store, views = apply(repo)
    assert views == ["ferplus_votes", "image_labels", "image_quality", "image_split",
                     "live_faces", "live_frames"]
    tables = sources.fer2013_tables(dataset, slice(0, ROWS))
    extra = sources.batch_tables(load_folder_dataset(batch[0]))
    for name, table in extra.items():
        tables[name] = pd.concat([tables[name], table], ignore_index=True)
    written = sources.write_tables(store, tables)
    assert written["image_labels"][1] == ROWS + 12
    assert written["image_labels"][0].parent == repo.parent / "data" / "feature_store" / \
        "offline"
    # Only the views read online are materialized by default; the image views are offline.
    with pytest.raises(retrieval.StoreError, match="nothing to materialize.*live_faces"):
        retrieval.materialize(store)
    return store


@pytest.fixture(scope="module")
def live_store(store, real_log):
    """`store` with the real log ingested (through the CLI) and materialized."""
    from face_sentiment.cli import main
    repo = str(store.repo_path)
    assert main(["features", "--repo", repo, "ingest", str(real_log)]) == 0
    assert main(["features", "--repo", repo, "materialize", "--view", "live_faces", "--view",
                 "live_frames"]) == 0
    return store


@real()
def test_the_store_lives_in_the_copy_and_moves_with_it(store, tmp_path):
    from face_sentiment.features.retrieval import entity_table, training_set
    from face_sentiment.features.store import open_store, table_path
    tree = store.repo_path.parent
    assert sorted(p.name for p in (tree / "data" / "feature_store").iterdir()) == [
        "offline", "online.db", "registry.db"]
    assert sorted(p.name for p in store.repo_path.iterdir()) == [  # no __pycache__ left
        "definitions.py", "feature_store.yaml"]
    moved = tmp_path / "moved"
    shutil.copytree(tree, moved)  # paths are relative: the copy reads its own files
    copy = open_store(moved / "features")
    assert copy.get_feature_view("image_labels").batch_source.path == \
        "../data/feature_store/offline/image_labels.parquet"
    assert table_path(copy, "image_labels") == \
        moved / "data" / "feature_store" / "offline" / "image_labels.parquet"
    table = training_set(copy, entity_table(copy, ["fer2013"], splits=["Training"]))
    assert len(table) == ROWS and table["label"].notna().all()


@real()
def test_training_set_joins_fer2013_and_the_batch_as_of_now(store, dataset, batch, tmp_path,
                                                            capsys):
    from face_sentiment.cli import main
    out = tmp_path / "train.parquet"
    code = main(["features", "--repo", str(store.repo_path), "training-set", "--dataset",
                 "fer2013", "--dataset", "lab-batch", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert f"wrote {out}: {ROWS + 12} rows (fer2013 {ROWS}, lab-batch 12)" in \
        capsys.readouterr().out
    table = pd.read_parquet(out)
    fer = table[table["dataset"] == "fer2013"].set_index("image_id").sort_index()
    assert list(fer.index) == list(range(ROWS))
    assert np.array_equal(fer["label_index"], dataset.labels[:ROWS])
    assert np.allclose(fer["brightness"], dataset.features["brightness"][:ROWS])
    assert np.array_equal(fer["votes_neutral"], dataset.ferplus_votes[:ROWS, 0])
    assert (fer["split"] == "Training").all()  # the first rows of fer2013.csv
    lab = table[table["dataset"] == "lab-batch"].sort_values("image_id")
    rows = batch[1]
    assert list(lab["label"]) == [FER2013_CLASSES[i] for i in dataset.labels[rows]]
    # the batch's crops are the cache's images: the same quality features (one definition)
    assert np.allclose(lab["sharpness"], dataset.features["sharpness"].to_numpy()[rows],
                       rtol=1e-5)
    assert lab["votes_neutral"].isna().all()  # FER+ votes exist for fer2013 only


@real()
def test_point_in_time_join_where_a_naive_join_is_wrong(store):
    """A label corrected later comes back as the value valid at each entity's time; a feature
    row written after an entity's time does not leak; FER+ votes appear only after 2016-08."""
    from face_sentiment.features import sources
    from face_sentiment.features.retrieval import training_set
    t1, t2, t3 = (pd.Timestamp(s, tz="UTC") for s in ("2024-01-10", "2024-03-01", "2024-06-01"))
    created = pd.Timestamp.now(tz="UTC")
    keys = pd.DataFrame({"dataset": "relabel", "image_id": [0, 0]})
    labels = keys.assign(label=["sad", "happy"], label_index=[4, 3], event_timestamp=[t1, t2],
                         created=created)
    quality = pd.DataFrame({"dataset": ["relabel"], "image_id": [0], "brightness": [80.0],
                            "contrast": [30.0], "sharpness": [100.0], "clipped_fraction": [0.0],
                            "near_blank": [False], "event_timestamp": [t3],
                            "created": [created]})
    sources.write_tables(store, {"image_labels": labels, "image_quality": quality})
    entities = pd.DataFrame({
        "dataset": ["relabel"] * 3 + ["fer2013"] * 2, "image_id": [0, 0, 0, 5, 5],
        "event_timestamp": [pd.Timestamp("2024-02-01", tz="UTC"), pd.Timestamp(
            "2024-04-01", tz="UTC"), pd.Timestamp("2024-07-01", tz="UTC"),
            pd.Timestamp("2014-01-01", tz="UTC"), NOW]})
    joined = training_set(store, entities)
    assert list(joined["label"][:3]) == ["sad", "happy", "happy"]
    assert joined["brightness"][:2].isna().all() and joined["brightness"][2] == 80.0
    assert np.isnan(joined["votes_neutral"][3]) and joined["votes_neutral"][4] >= 0
    # the naive join (each key's latest row) gets the first entity's label and the first two
    # entities' brightness wrong
    table = pd.read_parquet(sources_path(store, "image_labels"))
    latest = table.sort_values("event_timestamp").groupby(["dataset", "image_id"]).last()
    assert latest.loc[("relabel", 0), "label"] == "happy" != joined["label"][0]


def sources_path(store, name):
    from face_sentiment.features.store import table_path
    return table_path(store, name)


@real(needs_log)
def test_online_read_gives_each_devices_latest_frame(live_store, real_log, capsys):
    from face_sentiment.cli import main
    from face_sentiment.features.retrieval import online_devices
    records = [json.loads(line) for line in real_log.read_text().splitlines()]
    last = records[-1]
    table = online_devices(live_store)
    assert set(table["device_id"]) == {DEVICE}
    assert sorted(table["track_id"]) == sorted(face["track"] for face in last["faces"])
    assert (table["frame"] == last["frame"]).all()
    by_track = table.set_index("track_id")
    for face in last["faces"]:
        row = by_track.loc[face["track"]]
        assert row["brightness"] == pytest.approx(face["brightness"])
        assert row["p_happy"] == pytest.approx(face["probabilities"]["happy"])
        assert row["model_id"] == last["model"]
    assert main(["features", "--repo", str(live_store.repo_path), "online", "--device",
                 DEVICE]) == 0
    assert DEVICE in capsys.readouterr().out
    assert main(["features", "--repo", str(live_store.repo_path), "online", "--device",
                 "nowhere"]) == 2
    assert "device 'nowhere' has no materialized features" in capsys.readouterr().err


@real(needs_log)
def test_a_log_line_with_a_missing_field_names_file_and_line(live_store, real_log, tmp_path,
                                                             capsys):
    from face_sentiment.cli import main
    lines = real_log.read_text().splitlines()
    broken = [json.loads(line) for line in lines]
    del broken[2]["time"]
    del broken[4]["faces"][0]["brightness"]
    path = tmp_path / "broken.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in broken))
    before = pd.read_parquet(sources_path(live_store, "live_faces"))
    code = main(["features", "--repo", str(live_store.repo_path), "ingest", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{path}: line 3: missing field 'time' in the frame record" in err
    assert f"{path}: line 5: missing field 'brightness' in a face" in err
    after = pd.read_parquet(sources_path(live_store, "live_faces"))
    assert len(after) == len(before)  # nothing of the file was ingested


@real()
def test_a_store_not_applied_or_missing_a_view_is_named(store, tmp_path, capsys):
    from face_sentiment.cli import main
    from face_sentiment.features.store import StoreError, feature_view
    repo = copy_repo(tmp_path)
    code = main(["features", "--repo", str(repo), "ingest", str(tmp_path / "pi.jsonl")])
    err = capsys.readouterr().err
    assert code == 2
    assert "feature store not applied: run `face-sentiment features apply`" in err
    assert f"(repository {repo};" in err
    assert not (tmp_path / "data" / "feature_store" / "registry.db").exists()
    code = main(["features", "--repo", str(tmp_path / "nowhere"), "materialize"])
    assert code == 2 and "feature_store.yaml is missing" in capsys.readouterr().err
    with pytest.raises(StoreError, match="feature view 'image_labelz' is not in the registry"):
        feature_view(store, "image_labelz")


@real(needs_log)
def test_monitor_takes_its_windows_from_the_store(live_store, real_log, tmp_path, capsys):
    """Reference: the log's first 15 frames, read from the store; current: its last 15. The
    verdict and every window's scores equal the monitor's on the same frames from the log."""
    from face_sentiment.cli import main
    from face_sentiment.features.windows import store_window
    from face_sentiment.monitoring.logs import load_logs
    records = [json.loads(line) for line in real_log.read_text().splitlines()]
    split = records[15]["time"]
    data = store_window(live_store, f"device={DEVICE},start={split}")
    logged = load_logs(real_log)
    later = logged.faces[logged.faces["time"] >= split].reset_index(drop=True)
    columns = ["line", "track", "brightness", "face_px", "score", "top", "entropy", "p_sad"]
    pd.testing.assert_frame_equal(data.faces[columns].reset_index(drop=True), later[columns],
                                  check_dtype=False)
    out = tmp_path / "store"
    code = main(["monitor", "--from-store", f"device={DEVICE},start={split}", "--reference",
                 f"store:device={DEVICE},end={split}", "--feature-repo",
                 str(live_store.repo_path),
                 "--window", "5frames", "--min-faces", "10", "--out", str(out)])
    from_store = capsys.readouterr().out
    assert code in (0, 1)
    head = tmp_path / "head.jsonl"
    tail = tmp_path / "tail.jsonl"
    head.write_text("".join(json.dumps(r) + "\n" for r in records[:15]))
    tail.write_text("".join(json.dumps(r) + "\n" for r in records[15:]))
    direct = main(["monitor", str(tail), "--reference", str(head), "--window", "5frames",
                   "--min-faces", "10", "--out", str(tmp_path / "direct")])
    assert direct == code
    ours = json.loads((out / "monitor.json").read_text())
    theirs = json.loads((tmp_path / "direct" / "monitor.json").read_text())
    assert ours["verdict"] == theirs["verdict"]
    assert [w["result"] for w in ours["windows"]] == [w["result"] for w in theirs["windows"]]
    assert from_store.split(":")[0] == capsys.readouterr().out.split(":")[0]
    assert (out / "store_reference.jsonl").is_file() and (out / "store_current.jsonl").is_file()
    # held faces (a missed face shown at its last box) are not observations: both skip them
    assert ours["reference"]["faces"] == sum(1 for r in records[:15] for face in r["faces"]
                                             if not face.get("held"))


def _copied_store(store, folder):
    """A copy of the module's store (its project tree), for tests that add rows to it."""
    from face_sentiment.features.store import open_store
    shutil.copytree(store.repo_path.parent, folder)
    return open_store(folder / "features")


def _lab_batch(batch, dataset):
    """The module's lab batch as retrain's ingest leaves it (every row in the train part)."""
    from face_sentiment.pipeline.incoming import Batch
    folder, rows = batch
    table = pd.read_csv(folder / "labels.csv", dtype={"path": str, "label": str})
    table = table.assign(image_id=range(len(table)), part="train", face_found=True)
    return Batch("lab-batch", folder, "sha", table, dataset.images[rows], None)


@real()
def test_retrain_trains_on_the_labels_the_store_had_when_it_started(store, dataset, batch,
                                                                    tmp_path, capsys):
    """`features ingest --labels` adds corrected labels at their time; retrain's mix_labels
    reads them as of the run's start: a correction from before counts, a later one does not."""
    from dataclasses import replace

    from face_sentiment.cli import main
    from face_sentiment.pipeline.feature_store import mix_labels
    copy = _copied_store(store, tmp_path / "copy")
    first = replace(dataset, images=dataset.images[:ROWS], labels=dataset.labels[:ROWS],
                    splits=dataset.splits[:ROWS])
    lab = _lab_batch(batch, dataset)
    before, after = NOW - pd.Timedelta(days=1), NOW + pd.Timedelta(days=1)
    old = [FER2013_CLASSES[i] for i in dataset.labels[:2]]
    new = [next(c for c in FER2013_CLASSES if c != label) for label in old]
    relabel = [next(c for c in FER2013_CLASSES if c != lab.table["label"][3])]
    corrections = tmp_path / "corrections.csv"
    pd.DataFrame({"dataset": ["fer2013", "fer2013", "lab-batch"], "image_id": [0, 1, 3],
                  "label": [new[0], new[1], relabel[0]],
                  "time": [before.isoformat(), after.isoformat(), ""]}).to_csv(
        corrections, index=False)
    code = main(["features", "--repo", str(copy.repo_path), "ingest", "--labels",
                 str(corrections)])
    assert code == 0, capsys.readouterr().err
    assert "image_labels: +3 rows" in capsys.readouterr().out
    then = mix_labels(copy, first, lab, NOW.isoformat())
    assert then.fer_rows.tolist() == np.flatnonzero(first.splits == 0).tolist()
    assert FER2013_CLASSES[then.fer_labels[0]] == new[0]  # corrected a day before the start
    assert FER2013_CLASSES[then.fer_labels[1]] == old[1]  # corrected after it: not seen
    assert then.corrected == {"fer2013": 1, "lab-batch": 0}  # the blank time is "now": later
    later = mix_labels(copy, first, lab, (after + pd.Timedelta(hours=1)).isoformat())
    assert FER2013_CLASSES[later.fer_labels[1]] == new[1]
    assert FER2013_CLASSES[later.batch_labels[3]] == relabel[0]
    assert later.corrected == {"fer2013": 2, "lab-batch": 1} and later.digest != then.digest
    # the store must hold every image of the cache the run uses
    with pytest.raises(ValueError, match=rf"{len(dataset.labels) - ROWS} image\(s\) had no "
                       "label in the feature store as of .*features ingest --fer2013"):
        mix_labels(copy, dataset, lab, NOW.isoformat())
    # and a batch's labels from after the run's start are not there yet
    with pytest.raises(ValueError, match="batch lab-batch: 12 image\\(s\\) had no label"):
        mix_labels(copy, first, lab, (NOW - pd.Timedelta(days=3)).isoformat())


@real()
def test_bad_label_corrections_name_the_file_and_row(store, tmp_path, capsys):
    from face_sentiment.cli import main
    before = pd.read_parquet(sources_path(store, "image_labels"))
    cases = {"dataset,image_id,label\nfer2013,3,happy\nfer2013,4,joy\n":
             "row 3: label 'joy' is not one of angry",
             "dataset,image_id,label\nfer2013,x1,happy\n": "row 2: image_id 'x1' is not a row",
             f"dataset,image_id,label\nfer2013,{ROWS + 5},sad\n":
             f"row 2: image fer2013/{ROWS + 5} is not in the store",
             "dataset,image_id,label,time\nfer2013,1,sad,yesterday\n":
             "row 2: 'time' 'yesterday' is neither seconds",
             "dataset,label\nfer2013,sad\n": "missing column(s) image_id"}
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"fix{i}.csv"
        path.write_text(text)
        code = main(["features", "--repo", str(store.repo_path), "ingest", "--labels",
                     str(path)])
        err = capsys.readouterr().err
        assert code == 2 and f"{path}" in err and message in err, err
    after = pd.read_parquet(sources_path(store, "image_labels"))
    assert len(after) == len(before)  # nothing written


@real()
def test_a_store_filled_from_another_cache_is_refused(store, dataset, tmp_path):
    from face_sentiment.features.store import StoreError, data_folder
    from face_sentiment.pipeline.feature_store import ready_store
    copy = _copied_store(store, tmp_path / "copy")
    (data_folder(copy) / "fer2013.json").write_text(json.dumps(
        {"sha256": "0" * 64, "rows": len(dataset.labels), "ingested": "2026-01-01"}))
    with pytest.raises(StoreError, match="holds FER2013 from another cache .*000000000000"):
        ready_store(dataset, copy.repo_path)


# --- without data or Feast ----------------------------------------------------------------


def test_store_selectors_are_checked():
    from face_sentiment.features.windows import parse_selector
    assert parse_selector("device=pi-1, last=10min") == {"device": "pi-1", "last": "10min"}
    assert parse_selector("") == {}
    with pytest.raises(ValueError, match="bad store selector 'room=lab'"):
        parse_selector("device=pi-1,room=lab")
    with pytest.raises(ValueError, match="bad store selector 'device'"):
        parse_selector("device")


def test_the_cli_lists_the_feature_commands_without_importing_feast(capsys):
    import subprocess
    import sys

    from helpers import subprocess_env

    from face_sentiment.cli import build_parser
    parser = build_parser()
    args = parser.parse_args(["features", "training-set", "--dataset", "fer2013", "--dataset",
                              "lab", "--out", "t.parquet"])
    assert args.dataset == ["fer2013", "lab"] and args.handler.__name__ == "_training_set"
    args = parser.parse_args(["monitor", "x.jsonl", "--reference", "store:device=pi",
                              "--from-store"])
    assert args.reference == ["store:device=pi"] and args.from_store == ""
    code = ("import sys\nfrom face_sentiment.cli import build_parser\n"
            "build_parser().parse_args(['features', 'online'])\n"
            "assert 'feast' not in sys.modules and 'pandas' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env(), timeout=60)
    with pytest.raises(SystemExit):
        parser.parse_args(["features", "--help"])
    out = capsys.readouterr().out
    for action in ("apply", "ingest", "materialize", "training-set", "online"):
        assert action in out
