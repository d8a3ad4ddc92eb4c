#!/usr/bin/env python3
"""Entry point of the Pi runner: `python pi/run.py --source 0 --model models/...tflite`.

Works from a checkout without installing anything but the runtime packages (numpy, OpenCV, a
TFLite interpreter): when `face_sentiment` is not importable, `../src` is put on the path.
The runner itself is `face_sentiment.live.runner`; see pi/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import face_sentiment  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from face_sentiment.live.runner import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
