#!/usr/bin/env python3
"""Entry point of the Pi runner: `python pi/run.py --source 0 --model models/...tflite`.

Works from a checkout without installing anything but the runtime packages (numpy, OpenCV, a
TFLite interpreter): when `face_sentiment` is not importable, `../src` is put on the path.
The runner itself is `face_sentiment.live.runner`; see pi/README.md. `pi/run.py predict PATH...`
is `face-sentiment predict` (photos, folders, videos; TensorFlow-free), the runner image's way
to run it on mounted photos.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import face_sentiment  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

if __name__ == "__main__":
    if sys.argv[1:2] == ["predict"]:  # the runner takes no positional argument: no clash
        from face_sentiment.cli import main as cli_main
        raise SystemExit(cli_main(sys.argv[1:]))
    from face_sentiment.live.runner import main
    raise SystemExit(main())
