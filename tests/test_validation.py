"""TFDV data contract: feature table, split CSVs, curated schema, drift/skew and label checks.

Beam pipelines are slow (seconds each even on tiny data), so one module-scoped statistics run
covers every check: the three official splits drawn from one distribution, plus an altered
copy of PrivateTest (brightness shifted, an unknown label) validated in its place.
"""

import numpy as np
import pandas as pd
import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from face_sentiment.data.cache import Fer2013Dataset, load_dataset
from face_sentiment.data.quality import duplicate_groups, quality_features
from face_sentiment.data.validation import (
    FEATURE_RANGES,
    JS_DIVERGENCE_THRESHOLD,
    LABEL_LINF_THRESHOLD,
    NUMERIC_FEATURES,
    SCHEMA_PATH,
    ValidationResult,
    anomalies_table,
    drift_skew_table,
    feature_table,
    infer_curated_schema,
    load_schema,
    save_schema,
    schema_table,
    split_statistics,
    statistics_table,
    validate,
    write_split_tables,
)
from face_sentiment.labels import FER2013_CLASSES, SPLITS

pytestmark = pytest.mark.tensorflow  # TFDV

PER_SPLIT = 700  # 100 images per class: enough for sampling noise far below the thresholds
TABLE_COLUMNS = ["split", "label", *NUMERIC_FEATURES, "near_blank", "duplicate"]
SCHEMA_FEATURES = {"label", *NUMERIC_FEATURES, "near_blank", "duplicate"}


def synthetic_dataset(per_split: int = PER_SPLIT, seed: int = 0) -> Fer2013Dataset:
    """Three splits drawn independently from one distribution, with the same label counts in
    every split (as in the official split). Per image: a uniform brightness and noise level,
    and a uniform share (0-20 %) of pixels saturated to 0 or 255, so every feature is spread
    smoothly and sampling noise stays far below the drift thresholds."""
    rng = np.random.default_rng(seed)
    images, labels, splits = [], [], []
    for split in range(len(SPLITS)):
        shape = (per_split, 48, 48)
        levels = rng.uniform(60, 190, per_split)[:, None, None]
        noise = rng.uniform(4, 16, per_split)[:, None, None]
        pixels = np.clip(levels + rng.normal(size=shape) * noise, 1, 254)
        saturated = rng.random(shape) < rng.uniform(0, 0.2, per_split)[:, None, None]
        pixels[saturated] = rng.choice([0.0, 255.0], size=saturated.sum())
        images.append(pixels.round().astype(np.uint8))
        labels.append(np.arange(per_split) % len(FER2013_CLASSES))
        splits.append(np.full(per_split, split))
    images = np.concatenate(images)
    features = quality_features(images)
    features["duplicate_group"] = duplicate_groups(images)
    return Fer2013Dataset(
        images=images,
        labels=np.concatenate(labels).astype(np.int8),
        splits=np.concatenate(splits).astype(np.int8),
        source_ids=np.array([f"row-{i}" for i in range(len(images))]),
        features=features,
        manifest={"source_sha256": "synthetic"},
    )


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """The split CSVs, plus an altered PrivateTest: far darker (brightness / 4, still inside
    0..255) and with five rows labelled 'contempt', which FER2013 does not have."""
    folder = tmp_path_factory.mktemp("validation")
    table = feature_table(synthetic_dataset())
    paths = write_split_tables(table, folder)
    altered = table[table.split == "PrivateTest"].drop(columns="split")
    altered["brightness"] = altered["brightness"] / 4
    altered.iloc[:5, altered.columns.get_loc("label")] = "contempt"
    paths["Altered"] = folder / "Altered.csv"
    altered.to_csv(paths["Altered"], index=False)
    return paths


@pytest.fixture(scope="module")
def statistics(tables):
    """One Beam statistics run over all four tables (a beam_args string is parsed too); about
    6 s, so the tests using it are marked slow."""
    return split_statistics(tables, beam_args="--direct_num_workers=1")


@pytest.fixture(scope="module")
def schema(statistics):
    return infer_curated_schema(statistics["Training"])


def official(statistics, **replace):
    """The three official splits' statistics, some replaced by an altered table's."""
    return {split: statistics[replace.get(split, split)] for split in SPLITS}


def checks_flagging(result: ValidationResult, feature: str) -> set[str]:
    return {check for check, anomalies in result.anomalies.items()
            if feature in anomalies.anomaly_info}


# --- feature table and split CSVs ------------------------------------------------------------

def test_feature_table_of_the_synthetic_cache(fer2013_csv, sample):
    dataset = load_dataset(source=fer2013_csv)
    table = feature_table(dataset)
    assert list(table.columns) == TABLE_COLUMNS
    assert table.split.tolist() == [SPLITS[s] for s in sample.splits]
    assert table.label.tolist() == [FER2013_CLASSES[c] for c in sample.labels]
    # Row 2 is all zeros: near blank, fully clipped, black; rows 0 and 4 are twins.
    assert table.near_blank.tolist() == [int(i == 2) for i in range(9)]
    assert table.duplicate.tolist() == [int(i in (0, 4)) for i in range(9)]
    assert table.loc[2, "brightness"] == 0 and table.loc[2, "clipped_fraction"] == 1.0
    for name in NUMERIC_FEATURES:
        assert table[name].dtype == np.float64
        np.testing.assert_allclose(table[name], dataset.features[name])
    assert table.near_blank.dtype == np.int64 and table.duplicate.dtype == np.int64


def test_feature_table_stays_inside_the_contract_ranges():
    table = feature_table(synthetic_dataset(per_split=14))
    assert len(table) == 3 * 14
    assert table.split.value_counts().to_dict() == dict.fromkeys(SPLITS, 14)
    for name, (low, high) in FEATURE_RANGES.items():
        assert table[name].between(low, high).all(), name


def test_write_split_tables_one_csv_per_split_atomically(project_root):
    table = feature_table(synthetic_dataset(per_split=14))
    paths = write_split_tables(table)  # default folder: data/processed/validation
    folder = project_root.resolve() / "data" / "processed" / "validation"
    assert set(paths) == set(SPLITS)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.csv" for s in SPLITS)
    assert not list(folder.glob("*.tmp"))
    for split, path in paths.items():
        assert path == folder / f"{split}.csv"
        written = pd.read_csv(path)
        assert list(written.columns) == TABLE_COLUMNS[1:]  # no split column
        expected = table[table.split == split].drop(columns="split").reset_index(drop=True)
        pd.testing.assert_frame_equal(written, expected, check_exact=False)
    # A rewrite replaces the files in place, still leaving no staging file behind.
    write_split_tables(table.assign(brightness=1.0))
    assert pd.read_csv(paths["Training"]).brightness.eq(1.0).all()
    assert not list(folder.glob("*.tmp"))


# --- statistics and the curated schema -------------------------------------------------------

@pytest.mark.slow
def test_split_statistics_one_dataset_per_table(statistics, tables):
    assert set(statistics) == set(tables)
    for name, stats in statistics.items():
        assert len(stats.datasets) == 1
        dataset = stats.datasets[0]
        assert dataset.num_examples == PER_SPLIT, name
        assert {f.path.step[0] for f in dataset.features} == SCHEMA_FEATURES
    summary = statistics_table(official(statistics))
    assert set(summary.split) == set(SPLITS)
    assert set(summary.feature) >= set(NUMERIC_FEATURES)
    assert (summary["count"] == PER_SPLIT).all()


@pytest.mark.slow
def test_curated_schema_ranges_domain_presence_and_thresholds(schema):
    features = {f.name: f for f in schema.feature}
    assert set(features) == SCHEMA_FEATURES
    for feature in features.values():
        assert feature.presence.min_fraction == 1.0 and feature.presence.min_count == 1
    for name, (low, high) in FEATURE_RANGES.items():
        feature = features[name]
        assert (feature.float_domain.min, feature.float_domain.max) == (low, high)
        assert feature.drift_comparator.jensen_shannon_divergence.threshold == \
            pytest.approx(JS_DIVERGENCE_THRESHOLD)
        assert feature.skew_comparator.jensen_shannon_divergence.threshold == \
            pytest.approx(JS_DIVERGENCE_THRESHOLD)
    label = features["label"]
    domains = {d.name: list(d.value) for d in schema.string_domain}
    assert domains[label.domain] == list(FER2013_CLASSES)
    assert label.drift_comparator.infinity_norm.threshold == pytest.approx(LABEL_LINF_THRESHOLD)
    assert label.skew_comparator.infinity_norm.threshold == pytest.approx(LABEL_LINF_THRESHOLD)
    for flag in ("near_blank", "duplicate"):
        domain = features[flag].int_domain
        assert (domain.min, domain.max, domain.is_categorical) == (0, 1, True)


@pytest.mark.slow
def test_curated_schema_reproduces_the_committed_contract(schema):
    """`validate --update-schema` on any FER2013-shaped table yields the committed file."""
    assert schema == load_schema()


@pytest.mark.slow
def test_save_schema_round_trips_atomically(schema, tmp_path):
    folder = tmp_path / "contract"
    folder.mkdir()
    save_schema(schema, folder / "schema.pbtxt")
    assert load_schema(folder / "schema.pbtxt") == schema
    assert [p.name for p in folder.iterdir()] == ["schema.pbtxt"]  # no staging file left


# --- validation ------------------------------------------------------------------------------

@pytest.mark.slow
def test_splits_from_one_distribution_pass(statistics, schema):
    result = validate(official(statistics), schema)
    assert set(result.anomalies) == {*SPLITS, "drift:PublicTest", "drift:PrivateTest",
                                     "skew:PublicTest", "skew:PrivateTest"}
    assert result.table().empty, result.table().to_string()
    assert result.ok
    # Sampling noise is far below the thresholds, so this is no near miss.
    for check in ("drift:PublicTest", "drift:PrivateTest"):
        for info in result.anomalies[check].drift_skew_info:
            for measurement in info.drift_measurements:
                assert measurement.value < measurement.threshold / 2, (check, info)
    # The committed contract accepts them as well.
    assert validate(official(statistics), load_schema()).ok


@pytest.mark.slow
def test_measurements_show_every_drift_and_skew_distance(statistics, schema):
    passing = validate(official(statistics), schema).measurements()
    # brightness, contrast, sharpness, clipped_fraction and the label, in each of the four
    # drift/skew checks, and none over its threshold
    assert set(passing.check) == {"drift:PublicTest", "drift:PrivateTest", "skew:PublicTest",
                                  "skew:PrivateTest"}
    assert set(passing.feature) == {*NUMERIC_FEATURES, "label"}
    assert len(passing) == 4 * 5 and not passing.over.any()
    label = passing[passing.feature == "label"]
    assert (label.measure == "L-infinity").all()
    assert np.allclose(label.threshold, LABEL_LINF_THRESHOLD)
    altered = validate(official(statistics, PrivateTest="Altered"), schema).measurements()
    over = altered[altered.over]
    assert set(zip(over.check, over.feature, strict=True)) == {
        ("drift:PrivateTest", "brightness"), ("skew:PrivateTest", "brightness")}
    assert drift_skew_table({}).empty


def test_schema_table_reads_the_committed_contract():
    table = schema_table(load_schema())
    assert set(table.index) == SCHEMA_FEATURES
    assert table.loc["brightness", "allowed values"] == "0 to 255"
    assert table.loc["label", "allowed values"] == ", ".join(FER2013_CLASSES)
    assert table.loc["label", "drift threshold"] == str(LABEL_LINF_THRESHOLD)
    assert (table.presence == "required").all()


@pytest.fixture(scope="module")
def altered_result(statistics, schema):
    return validate(official(statistics, PrivateTest="Altered"), schema)


@pytest.mark.slow
def test_shifted_brightness_is_flagged_as_drift_and_skew(altered_result):
    assert not altered_result.ok
    assert checks_flagging(altered_result, "brightness") == {"drift:PrivateTest",
                                                             "skew:PrivateTest"}
    table = altered_result.table()
    rows = table[table.feature == "brightness"]
    assert rows.detail.str.contains("Jensen-Shannon", case=False).all(), rows.to_string()
    # Only PrivateTest was altered: PublicTest raises nothing.
    assert not table.check.str.contains("PublicTest").any(), table.to_string()


@pytest.mark.slow
def test_label_outside_the_domain_is_flagged(altered_result):
    assert not altered_result.ok
    # The contract check flags it, and so does the drift check (which validates the current
    # statistics against the schema too); training-side skew does not see the new value.
    assert checks_flagging(altered_result, "label") == {"PrivateTest", "drift:PrivateTest"}
    for check in ("PrivateTest", "drift:PrivateTest"):
        info = altered_result.anomalies[check].anomaly_info["label"]
        assert "contempt" in info.description
        # 5 rows in 700 move no class share past 0.03: an unexpected value, not label drift.
        assert {reason.type for reason in info.reason} == {
            anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES}


# --- anomalies table, ok, schema loading -----------------------------------------------------

def test_anomalies_table_flattens_feature_and_dataset_anomalies():
    feature_level = anomalies_pb2.Anomalies()
    info = feature_level.anomaly_info["brightness"]
    info.short_description, info.description = "High divergence", "JSD 0.4 above 0.1"
    dataset_level = anomalies_pb2.Anomalies()
    dataset_level.dataset_anomaly_info.short_description = "Low count"
    dataset_level.dataset_anomaly_info.description = "Too few examples"
    table = anomalies_table({"drift:PrivateTest": feature_level, "Training": dataset_level,
                             "PublicTest": anomalies_pb2.Anomalies()})
    assert list(table.columns) == ["check", "feature", "anomaly", "detail"]
    assert table.to_dict("records") == [
        {"check": "drift:PrivateTest", "feature": "brightness", "anomaly": "High divergence",
         "detail": "JSD 0.4 above 0.1"},
        {"check": "Training", "feature": "(dataset)", "anomaly": "Low count",
         "detail": "Too few examples"},
    ]
    empty = anomalies_table({"Training": anomalies_pb2.Anomalies()})
    assert empty.empty and list(empty.columns) == ["check", "feature", "anomaly", "detail"]


def test_validation_result_ok():
    clean = {"Training": anomalies_pb2.Anomalies(), "skew:PublicTest": anomalies_pb2.Anomalies()}
    assert ValidationResult({}, clean).ok
    feature_level = anomalies_pb2.Anomalies()
    feature_level.anomaly_info["label"].short_description = "Unexpected string values"
    assert not ValidationResult({}, {**clean, "PublicTest": feature_level}).ok
    dataset_level = anomalies_pb2.Anomalies()
    dataset_level.dataset_anomaly_info.short_description = "Low count"
    result = ValidationResult({}, {**clean, "PrivateTest": dataset_level})
    assert not result.ok
    assert result.table().feature.tolist() == ["(dataset)"]


def test_load_schema_of_a_missing_file_says_how_to_make_one(tmp_path):
    missing = tmp_path / "nowhere.pbtxt"
    with pytest.raises(FileNotFoundError, match="--update-schema") as error:
        load_schema(missing)
    assert str(missing) in str(error.value)


def test_committed_schema_has_the_curated_thresholds():
    assert SCHEMA_PATH.name == "fer2013_schema.pbtxt" and SCHEMA_PATH.exists()
    schema = load_schema()
    features = {f.name: f for f in schema.feature}
    assert set(features) == SCHEMA_FEATURES
    for name in NUMERIC_FEATURES:
        assert features[name].drift_comparator.jensen_shannon_divergence.threshold == \
            pytest.approx(0.1)
        assert features[name].skew_comparator.jensen_shannon_divergence.threshold == \
            pytest.approx(0.1)
        assert (features[name].float_domain.min, features[name].float_domain.max) == \
            FEATURE_RANGES[name]
    assert features["label"].drift_comparator.infinity_norm.threshold == pytest.approx(0.03)
    assert features["label"].skew_comparator.infinity_norm.threshold == pytest.approx(0.03)
    domains = {d.name: list(d.value) for d in schema.string_domain}
    assert domains[features["label"].domain] == list(FER2013_CLASSES)
    assert all(f.presence.min_fraction == 1.0 for f in schema.feature)
    # The module constants are the ones the committed contract carries.
    assert (JS_DIVERGENCE_THRESHOLD, LABEL_LINF_THRESHOLD) == (0.1, 0.03)
