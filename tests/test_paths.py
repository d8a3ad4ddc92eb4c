"""Shared file helpers: atomic writes and the data locator."""

from __future__ import annotations

import pytest

from face_sentiment.paths import (
    DataNotFoundError,
    atomic_target,
    copy_atomic,
    locate_input,
    write_atomic,
)


def test_write_atomic_replaces_and_leaves_no_staging_file(tmp_path):
    target = tmp_path / "out" / "model.tflite"
    target.parent.mkdir()
    target.write_bytes(b"old")
    assert write_atomic(target, b"new content") == target
    assert target.read_bytes() == b"new content"
    assert write_atomic(tmp_path / "out" / "x.json", "{}").read_text() == "{}"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.tflite", "x.json"]


def test_a_failed_write_keeps_the_old_file_and_no_staging_file(tmp_path):
    target = tmp_path / "models" / "card.json"
    target.parent.mkdir()
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_target(target) as staging:
        staging.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["card.json"]


def test_written_files_get_a_normal_mode(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    mode = stat.S_IMODE(write_atomic(tmp_path / "a.json", "{}").stat().st_mode)
    assert mode == 0o666 & ~mask


def test_copy_atomic(tmp_path):
    source = tmp_path / "a.bin"
    source.write_bytes(b"\x00\x01")
    assert copy_atomic(source, tmp_path / "sub" / "b.bin").read_bytes() == b"\x00\x01"


def test_locate_input_order_and_errors(project_root, monkeypatch):
    raw = project_root / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    monkeypatch.delenv("SOME_DATA_PATH", raising=False)
    args = ("SOME_DATA_PATH", ("some.csv", "some.zip"), "Some data", "Get it at example.org.")
    with pytest.raises(DataNotFoundError) as info:
        locate_input(*args)
    message = str(info.value)
    assert "SOME_DATA_PATH" in message and "some.csv or some.zip" in message
    assert str(raw) in message and "example.org" in message
    assert locate_input(*args, required=False) is None
    (raw / "some.zip").write_text("x")
    assert locate_input(*args) == raw / "some.zip"
    elsewhere = project_root / "elsewhere.csv"
    elsewhere.write_text("x")
    monkeypatch.setenv("SOME_DATA_PATH", str(elsewhere))
    assert locate_input(*args) == elsewhere
    monkeypatch.setenv("SOME_DATA_PATH", str(project_root / "gone.csv"))
    with pytest.raises(FileNotFoundError, match=r"\$SOME_DATA_PATH points to .*gone.csv"):
        locate_input(*args)
    explicit = project_root / "given.csv"
    with pytest.raises(FileNotFoundError, match="the path given points to .*given.csv"):
        locate_input(*args, explicit=explicit)
