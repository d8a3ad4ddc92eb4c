"""FER+ relabelling: majority rule, vote distribution, and the row-by-row join checks."""

import numpy as np
import pytest
from synthetic import FERPLUS_DROPPED_ROW, FERPLUS_EXPECTED, FERPLUS_VOTES

from face_sentiment.data.fer2013 import DataError
from face_sentiment.data.ferplus import (
    FERPLUS_ENV,
    locate_ferplus,
    majority_labels,
    read_ferplus,
    reference_majority_labels,
    vote_distribution,
)
from face_sentiment.labels import FERPLUS_CLASSES, FERPLUS_VOTE_COLUMNS

# FER+ vote column -> FERPLUS_CLASSES name, spelled out independently of labels.py.
VOTE_COLUMN_TO_NAME = {
    "neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
    "anger": "angry", "disgust": "disgust", "fear": "fear", "contempt": "contempt",
}


def votes_row(**counts):
    row = np.zeros((1, len(FERPLUS_VOTE_COLUMNS)), dtype=np.int16)
    for column, count in counts.items():
        row[0, FERPLUS_VOTE_COLUMNS.index(column)] = count
    return row


def test_classes_order():
    assert FERPLUS_CLASSES == (
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")


@pytest.mark.parametrize("column", VOTE_COLUMN_TO_NAME)
def test_each_vote_column_maps_to_its_class(column):
    label = majority_labels(votes_row(**{column: 6, "unknown": 2, "NF": 2}))[0]
    assert FERPLUS_CLASSES[label] == VOTE_COLUMN_TO_NAME[column]


@pytest.mark.parametrize("counts, expected", [
    ({"happiness": 6, "neutral": 4}, 3),
    ({"happiness": 5, "neutral": 5}, -1),          # tie between emotions
    ({"anger": 4, "unknown": 4}, -1),              # tie with unknown
    ({"unknown": 7, "happiness": 3}, -1),          # unknown on top
    ({"NF": 10}, -1),                              # not a face
    ({}, -1),                                      # no votes at all
    ({"contempt": 1}, 7),                          # one vote is a majority
    ({"fear": 3, "sadness": 3, "surprise": 4}, 5),
])
def test_majority_labels(counts, expected):
    labels = majority_labels(votes_row(**counts))
    assert labels.dtype == np.int8
    assert labels.tolist() == [expected]


@pytest.mark.parametrize("counts, expected", [
    ({"happiness": 6, "neutral": 4}, 3),           # 6 of 10: more than half
    ({"happiness": 5, "neutral": 5}, -1),          # exactly half is not enough
    ({"anger": 4, "fear": 3, "sadness": 3}, -1),   # top vote, but no majority
    ({"anger": 4, "fear": 2, "sadness": 1, "surprise": 1, "disgust": 1, "NF": 1}, 0),
    ({"unknown": 6, "happiness": 4}, -1),          # unknown on top
    ({"contempt": 2, "anger": 1}, 7),              # the single vote is dropped first
    ({"contempt": 1}, -1),                         # nothing left after dropping singles
])
def test_reference_majority_labels(counts, expected):
    # Row 4: anger 4 of the 6 votes kept (fear 2 + anger 4): 4 > 3.
    labels = reference_majority_labels(votes_row(**counts))
    assert labels.dtype == np.int8 and labels.tolist() == [expected]


def test_reference_rule_is_stricter_than_the_majority_rule():
    strict = reference_majority_labels(FERPLUS_VOTES)
    plain = majority_labels(FERPLUS_VOTES)
    assert ((strict == plain) | (strict == -1)).all()
    # Row 0 (anger 8, neutral 2) and row 3 (disgust 6 vs anger 4) hold; row 2 is all NF.
    assert strict[[0, 3]].tolist() == [0, 1] and strict[2] == -1


def test_majority_labels_of_fixture_rows():
    np.testing.assert_array_equal(majority_labels(FERPLUS_VOTES), FERPLUS_EXPECTED)


def test_vote_distribution():
    votes = np.concatenate([
        votes_row(anger=3, neutral=1),
        votes_row(happiness=6, unknown=2, NF=2),
        votes_row(unknown=5, NF=5),
    ])
    dist = vote_distribution(votes)
    assert dist.shape == (3, len(FERPLUS_CLASSES)) and dist.dtype == np.float32
    expected = np.zeros((3, 8), np.float32)
    expected[0, FERPLUS_CLASSES.index("angry")] = 0.75
    expected[0, FERPLUS_CLASSES.index("neutral")] = 0.25
    expected[1, FERPLUS_CLASSES.index("happy")] = 1.0  # unknown/NF votes do not count
    np.testing.assert_allclose(dist, expected)
    assert not np.isnan(dist).any()


def test_vote_distribution_sums_to_one_where_there_are_emotion_votes():
    dist = vote_distribution(FERPLUS_VOTES)
    has_emotion = FERPLUS_VOTES[:, :8].sum(axis=1) > 0
    np.testing.assert_allclose(dist[has_emotion].sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(dist[~has_emotion], 0.0)


def test_dropping_single_votes_as_the_reference_code_does():
    votes = np.concatenate([
        votes_row(anger=6, neutral=3, fear=1),      # the lone fear vote is noise
        votes_row(happiness=1, surprise=1, NF=8),   # only single votes: keep them all
        votes_row(sadness=9, contempt=1),
    ])
    dist = vote_distribution(votes, drop_single_votes=True)
    expected = np.zeros((3, 8), np.float32)
    expected[0, [FERPLUS_CLASSES.index("angry"), FERPLUS_CLASSES.index("neutral")]] = [6 / 9,
                                                                                      3 / 9]
    expected[1, [FERPLUS_CLASSES.index("happy"), FERPLUS_CLASSES.index("surprise")]] = 0.5
    expected[2, FERPLUS_CLASSES.index("sad")] = 1.0
    np.testing.assert_allclose(dist, expected, rtol=1e-6)
    # Without the option every emotion vote counts.
    assert vote_distribution(votes)[0, FERPLUS_CLASSES.index("fear")] == pytest.approx(0.1)


# --- reading fer2013new.csv ------------------------------------------------------------------

def test_read_ferplus(ferplus_csv, sample):
    read = read_ferplus(ferplus_csv, sample.splits, "csv")
    assert read.votes.dtype == np.int16
    np.testing.assert_array_equal(read.votes, FERPLUS_VOTES)
    np.testing.assert_array_equal(read.labels, FERPLUS_EXPECTED)
    assert np.flatnonzero(read.dropped).tolist() == [FERPLUS_DROPPED_ROW]
    assert read.labels[FERPLUS_DROPPED_ROW] == -1


def test_dropped_row_is_invalid_even_with_emotion_votes(ferplus_table, write_ferplus, sample):
    ferplus_table.loc[FERPLUS_DROPPED_ROW, list(FERPLUS_VOTE_COLUMNS)] = 0
    ferplus_table.loc[FERPLUS_DROPPED_ROW, "happiness"] = 10
    read = read_ferplus(write_ferplus(ferplus_table), sample.splits, "csv")
    assert read.dropped[FERPLUS_DROPPED_ROW]
    assert read.labels[FERPLUS_DROPPED_ROW] == -1


def test_read_ferplus_wrong_row_count(ferplus_table, write_ferplus, sample):
    path = write_ferplus(ferplus_table.iloc[:-1])
    with pytest.raises(DataError, match="has 8 rows but FER2013 has 9") as info:
        read_ferplus(path, sample.splits, "csv")
    assert str(path) in str(info.value)


def test_read_ferplus_misaligned_usage(ferplus_table, write_ferplus, sample):
    ferplus_table.loc[5, "Usage"] = "PrivateTest"  # sample row 5 is PublicTest
    path = write_ferplus(ferplus_table)
    with pytest.raises(DataError) as info:
        read_ferplus(path, sample.splits, "csv")
    assert f"{path} line 7: Usage 'PrivateTest' differs from FER2013's 'PublicTest'" in str(
        info.value)


def test_read_ferplus_shifted_rows(ferplus_table, write_ferplus, sample):
    # A FER+ file joined against a FER2013 whose first row is missing: Usage drifts at the seam.
    path = write_ferplus(ferplus_table)
    with pytest.raises(DataError, match="line 4: Usage 'Training' differs"):
        read_ferplus(path, np.roll(sample.splits, -1), "csv")


@pytest.mark.parametrize("value", ["-1", "x", ""])
def test_read_ferplus_bad_votes(value, ferplus_table, write_ferplus, sample):
    ferplus_table = ferplus_table.astype({"fear": str})
    ferplus_table.loc[6, "fear"] = value
    path = write_ferplus(ferplus_table)
    with pytest.raises(DataError) as info:
        read_ferplus(path, sample.splits, "csv")
    assert f"{path} line 8: votes must be whole numbers from 0 to 1000" in str(info.value)


def test_read_ferplus_fractional_vote(ferplus_table, write_ferplus, sample):
    ferplus_table = ferplus_table.astype({"fear": str})
    ferplus_table.loc[6, "fear"] = "2.5"
    with pytest.raises(DataError, match="line 8: votes must be whole numbers from 0 to 1000"):
        read_ferplus(write_ferplus(ferplus_table), sample.splits, "csv")


def test_read_ferplus_wrong_columns(ferplus_table, write_ferplus, sample):
    path = write_ferplus(ferplus_table.drop(columns="NF"))
    with pytest.raises(DataError, match="expected columns"):
        read_ferplus(path, sample.splits, "csv")


def test_read_ferplus_rejects_image_folder_source(ferplus_csv, sample):
    with pytest.raises(DataError, match="image-folder release has no row order") as info:
        read_ferplus(ferplus_csv, sample.splits, "image-folder")
    assert "fer2013.csv" in str(info.value)


# --- locating fer2013new.csv -----------------------------------------------------------------

def test_locate_ferplus(raw_dir, ferplus_csv, monkeypatch):
    assert locate_ferplus() is None
    default = raw_dir / "fer2013new.csv"
    default.write_bytes(ferplus_csv.read_bytes())
    assert locate_ferplus() == default
    monkeypatch.setenv(FERPLUS_ENV, str(ferplus_csv))
    assert locate_ferplus() == ferplus_csv


def test_locate_ferplus_missing_file(src_dir, monkeypatch):
    missing = src_dir / "nowhere.csv"
    monkeypatch.setenv(FERPLUS_ENV, str(missing))
    with pytest.raises(FileNotFoundError) as info:
        locate_ferplus()
    message = str(info.value)
    assert str(missing) in message and "github.com/microsoft/FERPlus" in message
