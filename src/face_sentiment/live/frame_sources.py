"""Where the live runner's frames come from: a V4L2/USB camera, the Pi camera, a video or images.

`open_source("0" | "picam" | "clip.mp4" | "folder/" | "demo")` returns an iterator of
`Frame`s (BGR uint8). Failures are explicit: a camera that cannot be opened raises
`SourceError` with what to check; a camera that stops delivering is reopened with exponential
backoff (each attempt is logged) before giving up; an undecodable or malformed frame is skipped
and counted in `skipped`. With `reuse_buffers` (the runner, which is done with a frame before
it reads the next) video files, cameras and in-memory clips decode every frame into the same
array, instead of allocating ~1 MB per 640x480 frame: a frame's image is then valid only until
the next frame is read. numpy and OpenCV only; picamera2 is imported only for `picam`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger("face_sentiment.live.frame_sources")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


class SourceError(RuntimeError):
    """A frame source cannot be opened, or was lost and could not be reopened."""


@dataclass
class Frame:
    """One captured frame: running index, BGR image, capture wall-clock time, origin;
    `restarted`: the first frame of a looped file or folder's next pass (a scene cut)."""

    index: int
    image: np.ndarray
    time: float
    origin: str = ""
    restarted: bool = False


def valid_frame(image: Any, expected_shape: tuple[int, ...] | None = None) -> bool:
    """True for a non-empty uint8 (H, W, 3) array (of `expected_shape` when given)."""
    return (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3 and image.shape[0] > 1 and image.shape[1] > 1
            and (expected_shape is None or image.shape == expected_shape))


def read_video_frames(path: str | Path) -> list[np.ndarray]:
    """Every frame of a video file, in order (for offline evaluation and tests)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return frames
            frames.append(frame)
    finally:
        capture.release()


class FrameSource:
    """Base class: iterate to get frames; `close()` releases the device or file.

    `live` sources (cameras) deliver frames at their own rate, so their capture time includes
    waiting for the sensor; `fps` is the source's frame rate when known (None otherwise).
    """

    name = "source"
    live = False
    fps: float | None = None

    def __init__(self) -> None:
        self.skipped = 0      # corrupt or malformed frames dropped
        self.reconnects = 0   # successful reopenings after a lost camera
        self._index = 0
        self._restarting = False  # the next frame starts a loop's new pass

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _frame(self, image: np.ndarray, origin: str = "") -> Frame:
        frame = Frame(self._index, image, time.time(), origin, self._restarting)
        self._index += 1
        self._restarting = False
        return frame

    def _skip(self, what: str) -> None:
        self.skipped += 1
        log.warning("skipped a corrupt frame from %s: %s", self.name, what)


class VideoFileSource(FrameSource):
    """A video file read with OpenCV; `loop` restarts it at the end (benchmarks)."""

    def __init__(self, path: str | Path, loop: bool = False, max_bad_reads: int = 30,
                 reuse_buffer: bool = False) -> None:
        super().__init__()
        self.reuse_buffer = reuse_buffer
        self.path = Path(path)
        self.name = str(self.path)
        self.loop, self.max_bad_reads = loop, max_bad_reads
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        self._capture = self._open()
        rate = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = rate if 0 < rate < 1000 else None

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot decode video file {self.path} (unsupported or corrupt)")
        return capture

    @property
    def frame_count(self) -> int:
        return int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))

    def frames(self) -> Iterator[Frame]:
        shape = None
        buffer = None
        while True:
            ok, image = self._capture.read(buffer) if buffer is not None else \
                self._capture.read()
            if ok and valid_frame(image, shape):
                shape = image.shape
                if self.reuse_buffer:
                    buffer = image
                yield self._frame(image, f"{self.path.name}#{self._index}")
                continue
            buffer = None
            position = self._capture.get(cv2.CAP_PROP_POS_FRAMES)
            if ok or position < self.frame_count - 1:
                # A frame that decodes to garbage, or a read failure before the end: skip it.
                self._skip(f"frame {int(position)}")
                if self.skipped > self.max_bad_reads:
                    raise SourceError(f"{self.path}: more than {self.max_bad_reads} bad frames")
                if not ok:
                    self._capture.set(cv2.CAP_PROP_POS_FRAMES, position + 1)
                continue
            if not self.loop or self._index == 0:
                return
            self._capture.release()
            self._capture = self._open()
            self._restarting = True

    def close(self) -> None:
        self._capture.release()


class ImageFolderSource(FrameSource):
    """Every image in a folder (sorted by name); unreadable files are skipped."""

    def __init__(self, folder: str | Path, loop: bool = False) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.name = str(self.folder)
        self.loop = loop
        if not self.folder.is_dir():
            raise SourceError(f"image folder not found: {self.folder}")
        self.files = sorted(p for p in self.folder.iterdir()
                            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {self.folder}")

    def frames(self) -> Iterator[Frame]:
        while True:
            produced = False
            for path in self.files:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if not valid_frame(image):
                    self._skip(path.name)
                    continue
                produced = True
                yield self._frame(image, path.name)
            if not (self.loop and produced):
                return
            self._restarting = True


class CameraSource(FrameSource):
    """A V4L2/USB camera by index or device path, reopened with backoff when it drops out.

    `opener` builds the capture object (tests pass a fake); it defaults to cv2.VideoCapture.
    `sleep` waits between reconnect attempts (the runner's keeps the systemd watchdog fed).
    """

    live = True

    def __init__(self, device: int | str = 0, width: int = 640, height: int = 480,
                 fps: float | None = None, retries: int = 5, backoff_s: float = 0.5,
                 max_backoff_s: float = 8.0,
                 opener: Callable[[int | str], Any] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 reuse_buffer: bool = False) -> None:
        super().__init__()
        self.reuse_buffer = reuse_buffer
        self.device = device
        self.name = f"camera {device}"
        self.width, self.height, self.fps = width, height, fps
        self.retries, self.backoff_s, self.max_backoff_s = retries, backoff_s, max_backoff_s
        self._opener = opener or self._default_opener
        self._sleep = sleep
        self._pending: np.ndarray | None = None  # first frame read after a reconnect
        self._capture = self._open()
        if self._capture is None:
            raise SourceError(
                f"camera {device!r} could not be opened: is it connected (`ls /dev/video*`, "
                f"`v4l2-ctl --list-devices`), not used by another program, and is this user in "
                f"the 'video' group? For the Pi camera module use --source picam."
            )

    def _default_opener(self, device: int | str) -> Any:
        backend = cv2.CAP_V4L2 if hasattr(cv2, "CAP_V4L2") and Path("/dev").exists() else 0
        return cv2.VideoCapture(device, backend)

    def _open(self) -> Any:
        try:
            capture = self._opener(self.device)
        except Exception as error:  # noqa: BLE001 - any driver error means "not opened"
            log.warning("opening %s failed: %s", self.name, error)
            return None
        if capture is None or not capture.isOpened():
            return None
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            capture.set(cv2.CAP_PROP_FPS, self.fps)
        getter = getattr(capture, "get", None)
        try:
            rate = float(getter(cv2.CAP_PROP_FPS)) if getter else 0.0
        except (TypeError, ValueError, cv2.error):
            rate = 0.0
        if 0 < rate < 1000:
            self.fps = rate
        return capture

    def _reconnect(self) -> bool:
        if self._capture is not None:
            self._capture.release()
        delay = self.backoff_s
        for attempt in range(1, self.retries + 1):
            log.warning("%s lost; reconnect attempt %d/%d in %.1f s",
                        self.name, attempt, self.retries, delay)
            self._sleep(delay)
            self._capture = self._open()
            if self._capture is not None:
                ok, image = self._capture.read()
                if ok and valid_frame(image):
                    self.reconnects += 1
                    log.warning("%s reconnected after %d attempt(s)", self.name, attempt)
                    self._pending = image
                    return True
                self._capture.release()
                self._capture = None
            delay = min(delay * 2, self.max_backoff_s)
        return False

    def frames(self) -> Iterator[Frame]:
        bad_in_row = 0
        buffer = None
        while True:
            if self._pending is not None:
                image, self._pending = self._pending, None
                yield self._frame(image, self.name)
                continue
            ok, image = self._capture.read(buffer) if buffer is not None else \
                self._capture.read()
            if ok and valid_frame(image):
                bad_in_row = 0
                if self.reuse_buffer:
                    buffer = image
                yield self._frame(image, self.name)
                continue
            buffer = None
            if ok:  # delivered something that is not a frame
                self._skip(f"malformed frame {getattr(image, 'shape', type(image).__name__)}")
                bad_in_row += 1
                if bad_in_row < 5:
                    continue
            if not self._reconnect():
                raise SourceError(f"{self.name} lost and not back after {self.retries} attempts")
            bad_in_row = 0

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()


class PiCameraSource(FrameSource):
    """The Raspberry Pi camera module through picamera2 (Debian package python3-picamera2)."""

    name = "picam"
    live = True
    fps = 30.0  # picamera2's default video frame rate

    def __init__(self, width: int = 640, height: int = 480, retries: int = 5,
                 backoff_s: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        try:
            from picamera2 import Picamera2
        except ImportError as error:
            raise SourceError(
                "picamera2 is not importable: on Raspberry Pi OS run `sudo apt install "
                "python3-picamera2` and create the venv with --system-site-packages "
                f"(see pi/README.md). ({error})"
            ) from error
        self._camera_type = Picamera2
        self.size, self.retries, self.backoff_s, self._sleep = (width, height), retries, \
            backoff_s, sleep
        self._camera = self._start()

    def _start(self) -> Any:
        try:
            camera = self._camera_type()
            # "RGB888" is B, G, R byte order in memory: what OpenCV expects.
            camera.configure(camera.create_video_configuration(
                main={"size": self.size, "format": "RGB888"}))
            camera.start()
            return camera
        except Exception as error:  # noqa: BLE001 - libcamera raises many types
            raise SourceError(f"Pi camera could not be started: {error} (is it connected and "
                              "enabled? `rpicam-hello --list-cameras`)") from error

    def frames(self) -> Iterator[Frame]:
        while True:
            try:
                image = self._camera.capture_array("main")
            except Exception as error:  # noqa: BLE001
                log.warning("Pi camera capture failed: %s", error)
                image = None
            if valid_frame(image):
                yield self._frame(image, self.name)
                continue
            if image is not None:
                self._skip("malformed frame")
                continue
            delay = self.backoff_s
            for attempt in range(1, self.retries + 1):
                log.warning("Pi camera lost; restart attempt %d/%d in %.1f s", attempt,
                            self.retries, delay)
                self._sleep(delay)
                self.close()
                try:
                    self._camera = self._start()
                    self.reconnects += 1
                    break
                except SourceError as error:
                    log.warning("%s", error)
                    delay *= 2
            else:
                raise SourceError(f"Pi camera lost and not back after {self.retries} attempts")

    def close(self) -> None:
        try:
            self._camera.stop()
            self._camera.close()
        except Exception:  # noqa: BLE001 - closing a dead camera may fail; nothing to do
            pass


class ArraySource(FrameSource):
    """Frames already in memory (the synthetic demo clip); `loop` repeats them."""

    def __init__(self, images: list[np.ndarray], name: str = "frames", loop: bool = False,
                 reuse_buffer: bool = False) -> None:
        super().__init__()
        if not images:
            raise SourceError(f"{name}: no frames")
        self.images, self.name, self.loop = images, name, loop
        self.reuse_buffer = reuse_buffer

    def frames(self) -> Iterator[Frame]:
        buffer = None
        while True:
            for number, image in enumerate(self.images):
                if not valid_frame(image):
                    self._skip(f"frame {number}")
                    continue
                if self.reuse_buffer and buffer is not None and buffer.shape == image.shape:
                    np.copyto(buffer, image)
                else:
                    buffer = image.copy()
                yield self._frame(buffer, f"{self.name}#{number}")
            if not self.loop:
                return
            self._restarting = True


def open_source(spec: str, *, loop: bool = False, width: int = 640, height: int = 480,
                retries: int = 5, sleep: Callable[[float], None] = time.sleep,
                reuse_buffers: bool = False) -> FrameSource:
    """Source from a CLI string: camera index or /dev/videoN, 'picam', a video file, a folder,
    or 'demo' (a synthetic clip with known faces, from an image shipped in scikit-image).
    `sleep` is how cameras wait between reconnect attempts; `reuse_buffers` decodes every
    frame into one array (see the module docstring)."""
    spec = str(spec).strip()
    if spec == "demo":
        from face_sentiment.live.demo_clip import demo_frames
        try:
            return ArraySource(demo_frames(90, width, height), "demo", loop=loop,
                               reuse_buffer=reuse_buffers)
        except FileNotFoundError as error:
            raise SourceError(str(error)) from error
    if spec.isdigit():
        return CameraSource(int(spec), width, height, retries=retries, sleep=sleep,
                            reuse_buffer=reuse_buffers)
    if spec.startswith("/dev/video"):
        return CameraSource(spec, width, height, retries=retries, sleep=sleep,
                            reuse_buffer=reuse_buffers)
    if spec.lower() in ("picam", "picamera", "picamera2"):
        return PiCameraSource(width, height, retries=retries, sleep=sleep)
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path, loop=loop)
    if path.is_file():
        return VideoFileSource(path, loop=loop, reuse_buffer=reuse_buffers)
    raise SourceError(f"source {spec!r} is neither a camera index, 'picam', a video file nor "
                      "an image folder (no such file or folder)")
