"""FER2013 readers: both download forms, source lookup, and every malformed-input message."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
from synthetic import FOLDER_IDS, FOLDER_ORDER, encode, folder_entries_for

from face_sentiment.data.fer2013 import (
    FER2013_ENV,
    DataError,
    locate_fer2013,
    read_fer2013,
    sha256_of,
    source_format,
)
from face_sentiment.labels import FER2013_CLASSES, SPLITS

BAD_ROW = 4  # data row 4 of the sample CSV is file line 6 (the header is line 1)
BAD_ROW_WHERE = "line 6 (data row 4)"


def raises_data_error(path):
    """Read `path`, expect a DataError naming it; return the message."""
    with pytest.raises(DataError) as info:
        read_fer2013(path)
    message = str(info.value)
    assert str(path) in message
    return message


# --- reading the CSV form --------------------------------------------------------------------

@pytest.mark.parametrize("source", ["fer2013_csv", "fer2013_csv_gz"])
def test_csv_reads_every_row_exactly(source, sample, request):
    raw = read_fer2013(request.getfixturevalue(source))
    assert raw.source_format == "csv"
    assert raw.images.shape == (9, 48, 48) and raw.images.dtype == np.uint8
    np.testing.assert_array_equal(raw.images, sample.images)
    assert raw.labels.dtype == np.int8 and raw.splits.dtype == np.int8
    np.testing.assert_array_equal(raw.labels, sample.labels)
    np.testing.assert_array_equal(raw.splits, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert list(raw.source_ids) == [f"row-{i}" for i in range(9)]


def test_csv_tolerates_whitespace_around_codes(write_csv, csv_rows, sample):
    csv_rows[0][0] = f" {csv_rows[0][0]} "
    csv_rows[0][2] = "Training "
    raw = read_fer2013(write_csv(csv_rows))
    assert raw.labels[0] == sample.labels[0] and raw.splits[0] == 0


def test_folder_holding_the_csv_is_read_as_csv(src_dir, fer2013_csv, sample):
    assert source_format(src_dir) == "csv"
    np.testing.assert_array_equal(read_fer2013(src_dir).labels, sample.labels)


# --- reading the image-folder form -----------------------------------------------------------

@pytest.mark.parametrize("source", ["image_folder_dir", "image_folder_zip"])
def test_image_folder_reads_and_orders_by_split_then_id(source, sample, request):
    raw = read_fer2013(request.getfixturevalue(source))
    order = list(FOLDER_ORDER)
    assert raw.source_format == "image-folder"
    assert raw.images.shape == (9, 48, 48) and raw.images.dtype == np.uint8
    np.testing.assert_array_equal(raw.images, sample.images[order])  # PNG is lossless
    np.testing.assert_array_equal(raw.labels, sample.labels[order])
    np.testing.assert_array_equal(raw.splits, sample.splits[order])
    assert raw.labels.dtype == np.int8 and raw.splits.dtype == np.int8
    assert list(raw.source_ids) == [
        f"{SPLITS[sample.splits[row]]}_{FOLDER_IDS[row]}" for row in order
    ]
    # PublicTest (split 1) sorts before PrivateTest (split 2) although 'Pri' < 'Pub'.
    assert list(raw.source_ids[3:]) == [
        "PublicTest_4", "PublicTest_9", "PublicTest_15",
        "PrivateTest_1", "PrivateTest_3", "PrivateTest_12",
    ]


@pytest.mark.parametrize("form", ["dir", "zip"])
def test_image_folder_reads_jpeg(form, sample, write_image_folder):
    raw = read_fer2013(write_image_folder(folder_entries_for(sample, ".jpg"), form))
    order = list(FOLDER_ORDER)
    assert raw.images.shape == (9, 48, 48) and raw.images.dtype == np.uint8
    np.testing.assert_array_equal(raw.labels, sample.labels[order])
    np.testing.assert_array_equal(raw.splits, sample.splits[order])
    assert raw.images[0].max() == 0  # the all-zero image survives JPEG as zeros


def test_zip_with_top_folder_and_macos_junk(folder_entries, write_image_folder, sample):
    entries = {f"fer2013/{name}": data for name, data in folder_entries.items()}
    entries["__MACOSX/fer2013/train/happy/._Training_30.png"] = b"resource fork, not an image"
    entries["fer2013/README.txt"] = b"not an image either"
    raw = read_fer2013(write_image_folder(entries, "zip"))
    np.testing.assert_array_equal(raw.labels, sample.labels[list(FOLDER_ORDER)])


# --- locating the source ---------------------------------------------------------------------

def test_locate_prefers_explicit_path_then_env_then_raw(src_dir, raw_dir, monkeypatch):
    in_raw = raw_dir / "fer2013.csv"
    from_env = src_dir / "env.csv"
    explicit = src_dir / "explicit.csv"
    for path in (in_raw, from_env, explicit):
        path.write_text("x")
    assert locate_fer2013() == in_raw
    monkeypatch.setenv(FER2013_ENV, str(from_env))
    assert locate_fer2013() == from_env
    assert locate_fer2013(explicit) == explicit
    assert locate_fer2013(str(explicit)) == explicit


@pytest.mark.parametrize("present, expected", [
    (["fer2013"], "fer2013"),
    (["fer2013", "fer2013.zip"], "fer2013.zip"),
    (["fer2013", "fer2013.zip", "fer2013.csv.gz"], "fer2013.csv.gz"),
    (["fer2013", "fer2013.zip", "fer2013.csv.gz", "fer2013.csv"], "fer2013.csv"),
])
def test_locate_raw_names_in_order(present, expected, raw_dir):
    for name in present:
        if name == "fer2013":
            (raw_dir / name).mkdir()
        else:
            (raw_dir / name).write_text("x")
    assert locate_fer2013() == raw_dir / expected


def test_locate_nothing_found_says_where_to_get_and_put_it():
    with pytest.raises(FileNotFoundError) as info:
        locate_fer2013()
    message = str(info.value)
    assert "kaggle.com" in message
    assert "data/raw/fer2013.csv" in message and "data/raw/fer2013.zip" in message
    assert FER2013_ENV in message


def test_locate_env_pointing_at_missing_path(src_dir, raw_dir, monkeypatch):
    (raw_dir / "fer2013.csv").write_text("x")  # present, but the env var wins and is wrong
    missing = src_dir / "nowhere.csv"
    monkeypatch.setenv(FER2013_ENV, str(missing))
    with pytest.raises(FileNotFoundError) as info:
        locate_fer2013()
    message = str(info.value)
    assert f"${FER2013_ENV} points to {missing}" in message
    assert "does not exist" in message and "kaggle.com" in message


def test_locate_explicit_missing_path(src_dir):
    with pytest.raises(FileNotFoundError, match="the path given points to .*nowhere.zip"):
        locate_fer2013(src_dir / "nowhere.zip")


# --- format detection and hashing ------------------------------------------------------------

def test_source_format_by_name(src_dir, image_folder_dir):
    assert source_format(src_dir / "a.csv") == "csv"
    assert source_format(src_dir / "a.CSV.GZ") == "csv"
    assert source_format(src_dir / "a.zip") == "image-folder"
    assert source_format(image_folder_dir) == "image-folder"
    with pytest.raises(DataError, match=r"fer2013\.parquet: not a FER2013 source"):
        source_format(src_dir / "fer2013.parquet")


def test_sha256_of_file_and_folder(fer2013_csv, image_folder_dir):
    assert sha256_of(fer2013_csv) == hashlib.sha256(fer2013_csv.read_bytes()).hexdigest()
    before = sha256_of(image_folder_dir)
    first = next(p for p in sorted(image_folder_dir.rglob("*.png")))
    first.rename(first.with_name("Training_999.png"))  # same bytes, new name
    assert sha256_of(image_folder_dir) != before


# --- malformed CSV ---------------------------------------------------------------------------

def test_csv_missing_column(write_csv, csv_rows):
    path = write_csv([row[:2] for row in csv_rows], header=("emotion", "pixels"))
    message = raises_data_error(path)
    assert "missing ['Usage']" in message and "unexpected none" in message


def test_csv_extra_column(write_csv, csv_rows):
    path = write_csv([[*row, "x"] for row in csv_rows], header=("emotion", "pixels", "Usage", "id"))
    message = raises_data_error(path)
    assert "missing none" in message and "unexpected ['id']" in message


def test_csv_row_with_stray_field(write_csv, csv_rows):
    csv_rows[BAD_ROW].append("stray")
    message = raises_data_error(write_csv(csv_rows))
    assert "cannot be read as CSV" in message and "line 6" in message


def test_csv_header_only(write_csv):
    assert "has a header but no rows" in raises_data_error(write_csv([]))


def test_csv_empty_file(src_dir):
    path = src_dir / "fer2013.csv"
    path.write_bytes(b"")
    raises_data_error(path)


def test_csv_truncated_gzip(fer2013_csv_gz):
    data = fer2013_csv_gz.read_bytes()
    fer2013_csv_gz.write_bytes(data[: len(data) // 2])
    assert "cannot be read as CSV" in raises_data_error(fer2013_csv_gz)


@pytest.mark.parametrize("count", [2303, 2305])
def test_csv_wrong_pixel_count(count, write_csv, csv_rows):
    csv_rows[BAD_ROW][1] = " ".join(["7"] * count)
    message = raises_data_error(write_csv(csv_rows))
    assert f"{BAD_ROW_WHERE}: pixels has {count} values, expected 2304" in message


def test_csv_empty_pixel_string(write_csv, csv_rows):
    csv_rows[BAD_ROW][1] = ""
    message = raises_data_error(write_csv(csv_rows))
    assert f"{BAD_ROW_WHERE}: pixels has 0 values" in message


def test_csv_non_integer_pixel_token(write_csv, csv_rows):
    tokens = csv_rows[BAD_ROW][1].split()
    tokens[10] = "abc"
    csv_rows[BAD_ROW][1] = " ".join(tokens)
    message = raises_data_error(write_csv(csv_rows))
    assert f"{BAD_ROW_WHERE}: pixel 10 is 'abc', not an integer" in message


@pytest.mark.parametrize("token", ["12.5", "1e2", "nan"])
def test_csv_float_like_pixel_token(token, write_csv, csv_rows):
    tokens = csv_rows[BAD_ROW][1].split()
    tokens[10] = token
    csv_rows[BAD_ROW][1] = " ".join(tokens)
    message = raises_data_error(write_csv(csv_rows))
    assert f"{BAD_ROW_WHERE}: pixel 10 is {token!r}, not an integer" in message


@pytest.mark.parametrize("value", [256, -1])
def test_csv_pixel_out_of_range(value, write_csv, csv_rows):
    tokens = csv_rows[BAD_ROW][1].split()
    tokens[100] = str(value)
    csv_rows[BAD_ROW][1] = " ".join(tokens)
    message = raises_data_error(write_csv(csv_rows))
    assert f"{BAD_ROW_WHERE}: pixel value {value} is outside 0..255" in message


@pytest.mark.parametrize("emotion", ["7", "x", ""])
def test_csv_unknown_emotion(emotion, write_csv, csv_rows):
    csv_rows[BAD_ROW][0] = emotion
    message = raises_data_error(write_csv(csv_rows))
    assert f"{BAD_ROW_WHERE}: emotion is {emotion!r}, expected one of" in message
    assert "(1 such rows)" in message


def test_csv_unknown_emotion_counts_all_bad_rows(write_csv, csv_rows):
    csv_rows[BAD_ROW][0] = "9"
    csv_rows[7][0] = "-1"
    message = raises_data_error(write_csv(csv_rows))
    assert BAD_ROW_WHERE in message and "(2 such rows)" in message


def test_csv_unknown_usage(write_csv, csv_rows):
    csv_rows[BAD_ROW][2] = "Validation"
    message = raises_data_error(write_csv(csv_rows))
    assert f"{BAD_ROW_WHERE}: Usage is 'Validation', expected one of" in message
    assert "PrivateTest" in message


@pytest.mark.parametrize("split", SPLITS)
def test_csv_empty_split(split, write_csv, csv_rows):
    other = next(s for s in SPLITS if s != split)
    rows = [[e, p, other if u == split else u] for e, p, u in csv_rows]
    message = raises_data_error(write_csv(rows))
    assert f"split(s) [{split!r}] have no rows" in message


# --- malformed image folder ------------------------------------------------------------------

BAD_ENTRIES = {
    "unreadable": ("train/happy/Training_99.png", b"these bytes are not an image",
                   "not a readable image"),
    "wrong size": ("train/happy/Training_99.png", encode(np.zeros((64, 64), np.uint8)),
                   "image is 64x64, expected 48x48"),
    "unknown class": ("train/excited/Training_99.png", encode(np.zeros((48, 48), np.uint8)),
                      "class folder 'excited' is not one of"),
    "bad prefix": ("test/sad/Validation_99.png", encode(np.zeros((48, 48), np.uint8)),
                   "file name must be <Usage>_<id>"),
    "no id": ("test/sad/PublicTest_.png", encode(np.zeros((48, 48), np.uint8)),
              "file name must be <Usage>_<id>"),
    "not under train/test": ("val/sad/PublicTest_99.png", encode(np.zeros((48, 48), np.uint8)),
                             "is not under train/<class>/ or test/<class>/"),
    "too shallow": ("Training_99.png", encode(np.zeros((48, 48), np.uint8)),
                    "is not under train/<class>/ or test/<class>/"),
    "Training under test": ("test/sad/Training_99.png", encode(np.zeros((48, 48), np.uint8)),
                            "Training images belong under train/<class>/, not test/"),
    "test under train": ("train/sad/PrivateTest_99.png", encode(np.zeros((48, 48), np.uint8)),
                         "PrivateTest images belong under test/<class>/, not train/"),
}


@pytest.mark.parametrize("form", ["dir", "zip"])
@pytest.mark.parametrize("case", BAD_ENTRIES)
def test_image_folder_bad_entry(case, form, folder_entries, write_image_folder):
    entry, data, problem = BAD_ENTRIES[case]
    path = write_image_folder({**folder_entries, entry: data}, form)
    message = raises_data_error(path)
    assert f"entry {entry}" in message and problem in message


@pytest.mark.parametrize("form", ["dir", "zip"])
def test_image_folder_image_in_two_class_folders(form, folder_entries, write_image_folder):
    entry = next(e for e in folder_entries if e.startswith("train/"))
    _, class_name, file_name = entry.split("/")
    other = next(c for c in FER2013_CLASSES if c != class_name)
    duplicate = f"train/{other}/{file_name}"
    message = raises_data_error(write_image_folder(
        {**folder_entries, duplicate: folder_entries[entry]}, form))
    assert Path(file_name).stem in message and "exactly one class folder" in message
    assert entry in message and duplicate in message


@pytest.mark.parametrize("form", ["dir", "zip"])
def test_image_folder_without_images(form, write_image_folder):
    path = write_image_folder({"train/happy/notes.txt": b"no images here"}, form)
    assert "no images found" in raises_data_error(path)


def test_image_folder_empty_split(folder_entries, write_image_folder):
    entries = {k: v for k, v in folder_entries.items() if "/PublicTest_" not in k}
    assert "split(s) ['PublicTest'] have no rows" in raises_data_error(
        write_image_folder(entries, "dir"))


def test_non_zip_file_with_zip_name(src_dir):
    path = src_dir / "fer2013.zip"
    path.write_bytes(b"<html>Kaggle login page</html>")
    assert "not a readable zip file" in raises_data_error(path)


def test_zip_with_corrupted_member(image_folder_zip):
    # writestr stores members uncompressed: overwrite bytes inside the first PNG's data.
    data = bytearray(image_folder_zip.read_bytes())
    marker = data.find(b"IDAT")
    data[marker + 20: marker + 24] = b"\x00\x01\x02\x03"
    image_folder_zip.write_bytes(bytes(data))
    message = raises_data_error(image_folder_zip)
    assert "entry" in message

