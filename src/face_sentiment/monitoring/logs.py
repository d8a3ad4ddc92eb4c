"""The Pi runner's JSON-lines logs, read for monitoring: one row per face, damage reported.

A log line is one frame record (`live.runner.frame_record`): `frame`, `time` (seconds since
the epoch), `source`, `device`, `model` and `faces`, each face with box, detector `score`,
smoothed `label`/`confidence`, raw `probabilities` and the monitoring fields of
`live.observations` (quality of the aligned crop, `face_px`, `eye_angle`, `top`,
`top_confidence`, `entropy`). Rotated copies (`results.jsonl.1`, `.2.gz`) read the same.

Damage never stops the reading; each kind is reported once per file with its line numbers
(`LogProblem`), and the lines that can be used are: a truncated last line (a Pi that lost
power mid-write) is skipped; a line that is not JSON, or not a JSON object, is skipped; a frame
without `time` or `faces` is skipped; a face without one of the monitored fields keeps the
others (the missing one is NaN and left out of that column's test). Files are opened read-only
and never modified.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.live.observations import FACE_FIELDS

FRAME_FIELDS = ("time", "faces")
# Face fields a log must carry for monitoring (`eye_angle` may be null: no keypoints).
NUMERIC_FACE_FIELDS = tuple(f for f in (*FACE_FIELDS, "score") if f != "top")
MAX_LINES_NAMED = 5


@dataclass(frozen=True)
class LogProblem:
    """One kind of damage in one file: the lines it was found on."""

    path: str
    kind: str
    detail: str
    lines: tuple[int, ...]
    consequence: str

    def message(self) -> str:
        lines = ", ".join(map(str, self.lines[:MAX_LINES_NAMED]))
        more = f" and {len(self.lines) - MAX_LINES_NAMED} more" \
            if len(self.lines) > MAX_LINES_NAMED else ""
        where = f"line {lines}" if len(self.lines) == 1 else f"lines {lines}{more}"
        return f"{self.path}: {where}: {self.detail}; {self.consequence}"


@dataclass
class LogData:
    """Faces (one row each) and frames read from logs, and what was wrong with them."""

    faces: pd.DataFrame
    frames: pd.DataFrame
    problems: list[LogProblem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    classes: tuple[str, ...] = ()

    def messages(self) -> list[str]:
        return [problem.message() for problem in self.problems]

    @property
    def models(self) -> list[str]:
        return sorted(self.frames["model"].dropna().unique()) if len(self.frames) else []

    @property
    def devices(self) -> list[str]:
        return sorted(self.frames["device"].dropna().unique()) if len(self.frames) else []


class LogError(ValueError):
    """No usable record in the logs given (the message names the files and why)."""


def _open_lines(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        yield from stream


class _Problems:
    def __init__(self, path: str) -> None:
        self.path = path
        self.found: dict[tuple[str, str], tuple[list[int], str]] = {}

    def add(self, kind: str, detail: str, line: int, consequence: str) -> None:
        lines = self.found.setdefault((kind, detail), ([], consequence))[0]
        if not lines or lines[-1] != line:  # several faces of one line: name it once
            lines.append(line)

    def list(self) -> list[LogProblem]:
        return [LogProblem(self.path, kind, detail, tuple(lines), consequence)
                for (kind, detail), (lines, consequence) in self.found.items()]


def _number(value) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _frame_record(raw: bytes, number: int, last: bool, problems: _Problems) -> dict | None:
    """One log line's frame record, or None (with the problem noted) when it cannot be used."""
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        if last and not raw.endswith(b"\n"):
            problems.add("truncated", "the last line is cut off (no newline at the end: "
                         "the writer stopped mid-line, e.g. a power loss)", number,
                         "skipped it")
        else:
            problems.add("not-json", f"not JSON ({error.msg})", number, "skipped")
        return None
    if not isinstance(record, dict):
        problems.add("not-object", f"not a JSON object (a {type(record).__name__})",
                     number, "skipped")
        return None
    missing = [f for f in FRAME_FIELDS if f not in record]
    if missing:
        problems.add("missing-frame-field", f"missing field {', '.join(map(repr, missing))}"
                     " in the frame record", number, "skipped those frames")
        return None
    if math.isnan(_number(record["time"])) or not isinstance(record["faces"], list):
        problems.add("bad-frame-field", "'time' is not a number or 'faces' not a list",
                     number, "skipped those frames")
        return None
    return record


def _face_row(face: dict, index: int, frame_row: dict, record: dict, number: int,
              problems: _Problems) -> dict:
    """One observed face's row: its frame's fields, its label, probabilities (`p_<class>`) and
    monitored fields (NaN where missing, the problem noted)."""
    row = {**{k: frame_row[k] for k in ("file", "line", "frame", "time", "source",
                                        "device", "model")},
           "face": index, "track": face.get("track"), "label": face.get("label"),
           "true_label": record.get("true_label")}  # monitoring.record's datasets
    probabilities = face.get("probabilities")
    if isinstance(probabilities, dict) and probabilities:
        for cls, value in probabilities.items():
            row[f"p_{cls}"] = _number(value)
    absent = [key for key in (*NUMERIC_FACE_FIELDS, "top") if key not in face]
    if absent:
        problems.add("missing-face-field",
                     f"missing field{'s' if len(absent) > 1 else ''} "
                     f"{', '.join(map(repr, absent))} in a face", number,
                     "left out of those columns' tests for those faces"
                     + ("; 'top' taken as the argmax of 'probabilities'"
                        if "top" in absent else ""))
    for key in NUMERIC_FACE_FIELDS:
        row[key] = _number(face.get(key))  # missing or null (eye_angle): NaN
    top = face.get("top")
    if top is None and isinstance(probabilities, dict) and probabilities:
        top = max(probabilities, key=lambda c: _number(probabilities[c]))
    row["top"] = top
    box = face.get("box")
    if math.isnan(row.get("face_px", math.nan)) and isinstance(box, list) and len(box) == 4:
        # older records: the box (x1, y1, x2, y2) still gives the size
        width, height = _number(box[2]) - _number(box[0]), _number(box[3]) - _number(box[1])
        if width > 0 and height > 0:
            row["face_px"] = math.sqrt(width * height)
    return row


def read_log(path: str | os.PathLike) -> tuple[list[dict], list[dict], list[LogProblem],
                                                 tuple[str, ...]]:
    """(face rows, frame rows, problems, class names) of one log file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"log {path} does not exist")
    name = str(path)
    problems = _Problems(name)
    faces: list[dict] = []
    frames: list[dict] = []
    classes: tuple[str, ...] = ()
    raw_lines = list(_open_lines(path))
    for number, raw in enumerate(raw_lines, start=1):
        record = _frame_record(raw, number, number == len(raw_lines), problems)
        if record is None:
            continue
        # A held face (the runner's tracker showing a face the detector just missed) repeats
        # its last output: no new observation, so it is left out of the faces and their count.
        observed = [face for face in record["faces"]
                    if not (isinstance(face, dict) and face.get("held") is True)]
        frame_row = {"file": name, "line": number, "frame": record.get("frame"),
                     "time": _number(record["time"]), "source": record.get("source"),
                     "device": record.get("device"), "model": record.get("model"),
                     "faces": len(observed)}
        frames.append(frame_row)
        for index, face in enumerate(observed):
            if not isinstance(face, dict):
                problems.add("bad-face", "a face entry is not a JSON object", number,
                             "skipped those faces")
                continue
            probabilities = face.get("probabilities")
            if not classes and isinstance(probabilities, dict) and probabilities:
                classes = tuple(probabilities)
            faces.append(_face_row(face, index, frame_row, record, number, problems))
    return faces, frames, problems.list(), classes


FACE_COLUMNS = ("file", "line", "frame", "time", "source", "device", "model", "face", "track",
                "label", "true_label", *NUMERIC_FACE_FIELDS, "top")
FRAME_COLUMNS = ("file", "line", "frame", "time", "source", "device", "model", "faces")


def load_logs(paths: list[str | os.PathLike] | str | os.PathLike) -> LogData:
    """Read one or more logs (plain or .gz) into one table of faces, sorted by time."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise LogError("no log given")
    faces: list[dict] = []
    frames: list[dict] = []
    problems: list[LogProblem] = []
    classes: tuple[str, ...] = ()
    for path in paths:
        f, fr, p, c = read_log(path)
        faces += f
        frames += fr
        problems += p
        classes = classes or c
    face_table = pd.DataFrame(faces)
    for column in FACE_COLUMNS:
        if column not in face_table:
            face_table[column] = np.nan
    frame_table = pd.DataFrame(frames, columns=list(FRAME_COLUMNS))
    if len(frame_table) == 0:
        detail = "; ".join(p.message() for p in problems) or "the files are empty"
        raise LogError(f"no usable frame record in {', '.join(map(str, paths))}: {detail}")
    face_table = face_table.sort_values(["time", "file", "line", "face"], kind="stable")
    frame_table = frame_table.sort_values(["time", "file", "line"], kind="stable")
    return LogData(face_table.reset_index(drop=True), frame_table.reset_index(drop=True),
                   problems, [str(p) for p in paths], classes)
