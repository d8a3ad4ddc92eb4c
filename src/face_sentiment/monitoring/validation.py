"""Checks on read logs before they are monitored: values that are not numbers, missing fields.

`logs.read_log` is lenient on purpose: it skips the damage a Pi leaves (a line cut off by a
power loss) and reads a field it cannot use as NaN, left out of that column's test. That is
wrong for two kinds of input, which would give a verdict on data that is not there:

- text (or a list, an object, true/false) in a numeric face field, e.g. `"brightness":
  "dark"`: NaN, silently. `check_values` re-reads the lines where a numeric column is NaN
  (only those: a null or missing value is NaN too) and raises `LogValueError` naming the file,
  line, face and field of each such value. A number written as a string ("96.2") reads as the
  number and is accepted.
- a log without the monitoring fields (a runner from before `live.observations`, or another
  program's JSON-lines): no column can be tested, and "no drift" would be reported on nothing.
  `check_fields` raises `LogFieldsError` naming the fields no face of a file has.

`validated(data)` runs both; the monitor calls it on the logs it monitors and on reference
logs. Both errors are `logs.LogError`s: one line on stderr and exit 2 from the command line.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from face_sentiment.live.observations import QUALITY_FIELDS
from face_sentiment.monitoring.logs import NUMERIC_FACE_FIELDS, LogData, LogError

# Fields every face of a monitored log carries (live.observations): `top` can be taken from
# the probabilities and `face_px` from the box, `eye_angle` is null without eye keypoints
# and `score` without a detector (a dataset's crops), so those four are not required.
REQUIRED_FIELDS = (*QUALITY_FIELDS, "top_confidence", "entropy")
MAX_NAMED = 5


class LogValueError(LogError):
    """A face field that must be a number holds something else (named by file and line)."""


class LogFieldsError(LogError):
    """A log's faces lack the fields monitoring tests (named, with the file)."""


def raw_lines(path: Path, wanted: set[int]) -> Iterator[tuple[int, bytes]]:
    """(number, bytes) of the `wanted` lines of a log (numbered as `logs.read_log` does)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        for number, raw in enumerate(stream, start=1):
            if number in wanted:
                yield number, raw


def _not_a_number(value) -> bool:
    """A value `read_log` turns into NaN that is not null: text, true/false, a list, an
    object. (A JSON NaN or a number in a string is a number.)"""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return False
    if isinstance(value, str):
        try:
            float(value)
            return False
        except ValueError:
            return True
    return True


def _bad_values(record: dict) -> Iterable[tuple[int, str, object]]:
    """(face, field, value) of the non-numbers in one frame record's observed faces."""
    faces = record.get("faces")
    if not isinstance(faces, list):
        return
    observed = [f for f in faces if not (isinstance(f, dict) and f.get("held") is True)]
    for index, face in enumerate(observed):  # indexed as read_log indexes them
        if not isinstance(face, dict):
            continue
        for key in NUMERIC_FACE_FIELDS:
            if _not_a_number(face.get(key)):
                yield index, key, face[key]
        probabilities = face.get("probabilities")
        if isinstance(probabilities, dict):
            for cls, value in probabilities.items():
                if _not_a_number(value):
                    yield index, f"probabilities.{cls}", value


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_values(data: LogData) -> None:
    """Raise `LogValueError` if a numeric face field of the logs holds a non-number."""
    faces = data.faces
    columns = [c for c in (*NUMERIC_FACE_FIELDS, *(c for c in faces if str(c).startswith("p_")))
               if c in faces]
    if not len(faces) or not columns:
        return
    suspect = faces.loc[faces[columns].isna().any(axis=1), ["file", "line"]]
    found: list[str] = []
    total = 0
    for name, group in suspect.groupby("file", sort=False):
        wanted = {int(line) for line in group["line"]}
        for number, raw in raw_lines(Path(name), wanted):
            try:
                record = json.loads(raw.decode("utf-8", errors="replace"))
            except json.JSONDecodeError:
                continue  # read_log reported it already
            if not isinstance(record, dict):
                continue
            for face, key, value in _bad_values(record):
                total += 1
                if len(found) < MAX_NAMED:
                    found.append(f"{name}: line {number}, face {face}: field {key!r} is "
                                 f"{_shown(value)}, not a number")
    if found:
        more = f" (and {total - len(found)} more)" if total > len(found) else ""
        raise LogValueError("; ".join(found) + more + ": a numeric field holds text or "
                            "another non-number, which would be read as missing; fix or "
                            "remove those lines (the log is not changed here)")


def check_fields(data: LogData) -> None:
    """Raise `LogFieldsError` if no face of a file has one of `REQUIRED_FIELDS` (a value in
    some of its faces is enough: `read_log` names faces that lack one)."""
    faces = data.faces
    problems = []
    for name, group in faces.groupby("file", sort=False):
        missing = [f for f in REQUIRED_FIELDS if f not in group or group[f].isna().all()]
        if missing:
            lines = f"lines {int(group['line'].min())}-{int(group['line'].max())}"
            problems.append(f"{name}: none of its {len(group)} faces ({lines}) has "
                            f"{'the field' if len(missing) == 1 else 'the fields'} "
                            f"{', '.join(map(repr, missing))}")
    if problems:
        raise LogFieldsError(
            "; ".join(problems) + ": monitoring tests those fields (the Pi runner logs them "
            "for each face, live.observations); a log from an older runner or another program "
            "cannot be monitored: record a new one (pi/run.py --log)")


def validated(data: LogData) -> LogData:
    """`data`, after `check_values` and `check_fields` (which raise on a bad log)."""
    check_values(data)
    check_fields(data)
    return data

