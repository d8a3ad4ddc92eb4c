"""Data validation with TensorFlow Data Validation: statistics, a data contract, drift and skew.

The validated table has one row per image: its label and the quality features computed when
the cache was built. Statistics come from `tfdv.generate_statistics_from_csv`, an Apache Beam
pipeline (DirectRunner unless Beam pipeline options say otherwise, so a larger corpus can run on
Flink, Spark or Dataflow). The schema inferred from Training, curated with explicit ranges and
domains, is committed as `fer2013_schema.pbtxt` (the data contract). PublicTest and
PrivateTest are validated against it, and checked for drift and skew against Training with
TFDV comparators.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow_data_validation as tfdv
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from face_sentiment.data.cache import Fer2013Dataset
from face_sentiment.labels import FER2013_CLASSES, SPLITS
from face_sentiment.paths import atomic_target, data_dir

SCHEMA_PATH = Path(__file__).with_name("fer2013_schema.pbtxt")
NUMERIC_FEATURES = ("brightness", "contrast", "sharpness", "clipped_fraction")
# Ranges every valid 48x48 uint8 face satisfies; values outside mean corrupted pixels.
FEATURE_RANGES = {
    "brightness": (0.0, 255.0),
    "contrast": (0.0, 127.5),
    "sharpness": (0.0, 1_040_400.0),  # (4 * 255) ** 2: the largest possible Laplacian variance
    "clipped_fraction": (0.0, 1.0),
}
# Drift/skew thresholds: Jensen-Shannon divergence for numeric features, L-infinity distance
# for the label distribution. The official splits are random draws from one pool; these bounds
# sit well above the divergences measured between them (see notebook 02) and flag a real shift.
# Measured between the official splits (full data, 20-bucket histograms): JSD up to 0.062
# (PrivateTest clipped_fraction), label L-infinity up to 0.014 (PublicTest, sad).
JS_DIVERGENCE_THRESHOLD = 0.1
LABEL_LINF_THRESHOLD = 0.03


@dataclass
class ValidationResult:
    statistics: dict[str, statistics_pb2.DatasetFeatureStatisticsList]
    anomalies: dict[str, anomalies_pb2.Anomalies]  # per check: "<split>", "drift:<split>", ...

    @property
    def ok(self) -> bool:
        return not any(a.anomaly_info or a.HasField("dataset_anomaly_info")
                       for a in self.anomalies.values())

    def table(self) -> pd.DataFrame:
        return anomalies_table(self.anomalies)

    def measurements(self) -> pd.DataFrame:
        return drift_skew_table(self.anomalies)


def feature_table(dataset: Fer2013Dataset) -> pd.DataFrame:
    """One row per image: split, label and quality features, as TFDV sees them."""
    features = dataset.features
    return pd.DataFrame({
        "split": np.asarray(SPLITS)[dataset.splits],
        "label": np.asarray(FER2013_CLASSES)[dataset.labels],
        **{name: features[name].astype(float) for name in NUMERIC_FEATURES},
        "near_blank": features["near_blank"].astype(np.int64),
        "duplicate": (features["duplicate_group"] >= 0).astype(np.int64),
    })


def write_split_tables(table: pd.DataFrame, folder: Path | None = None) -> dict[str, Path]:
    """Write each split's rows to CSV (the Beam pipeline's input); return the paths."""
    folder = folder or data_dir("processed") / "validation"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in SPLITS:
        path = folder / f"{split}.csv"
        with atomic_target(path) as staging:
            table[table.split == split].drop(columns="split").to_csv(staging, index=False)
        paths[split] = path
    return paths


def split_statistics(paths: dict[str, Path], beam_args: str | list[str] | None = None
                     ) -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """TFDV statistics of each split's CSV, each computed by a Beam pipeline."""
    flags = shlex.split(beam_args) if isinstance(beam_args, str) else list(beam_args or [])
    options = tfdv.StatsOptions(num_histogram_buckets=20, num_quantiles_histogram_buckets=20)
    return {
        split: tfdv.generate_statistics_from_csv(
            str(path), stats_options=options, pipeline_options=PipelineOptions(flags))
        for split, path in paths.items()
    }


def infer_curated_schema(training_stats: statistics_pb2.DatasetFeatureStatisticsList
                         ) -> schema_pb2.Schema:
    """Schema inferred from Training, then curated: every feature required, explicit ranges,
    the label's seven class names as its domain, flags as 0/1, and drift/skew comparators."""
    schema = tfdv.infer_schema(training_stats)
    for feature in schema.feature:
        feature.presence.min_fraction = 1.0
        feature.presence.min_count = 1
    for name, (low, high) in FEATURE_RANGES.items():
        feature = tfdv.get_feature(schema, name)
        feature.float_domain.min, feature.float_domain.max = low, high
        feature.drift_comparator.jensen_shannon_divergence.threshold = JS_DIVERGENCE_THRESHOLD
        feature.skew_comparator.jensen_shannon_divergence.threshold = JS_DIVERGENCE_THRESHOLD
    label = tfdv.get_feature(schema, "label")
    tfdv.get_domain(schema, "label").ClearField("value")
    tfdv.get_domain(schema, "label").value.extend(FER2013_CLASSES)
    label.drift_comparator.infinity_norm.threshold = LABEL_LINF_THRESHOLD
    label.skew_comparator.infinity_norm.threshold = LABEL_LINF_THRESHOLD
    for flag in ("near_blank", "duplicate"):
        feature = tfdv.get_feature(schema, flag)
        feature.int_domain.min, feature.int_domain.max = 0, 1
        feature.int_domain.is_categorical = True
    return schema


def schema_table(schema: schema_pb2.Schema) -> pd.DataFrame:
    """The contract for a reader: each feature's type, presence, allowed values and the
    drift/skew threshold it is held to."""
    kinds = {"BYTES": "string", "INT": "integer", "FLOAT": "float"}
    rows = {}
    for feature in schema.feature:
        if feature.HasField("float_domain") or feature.HasField("int_domain"):
            domain = feature.float_domain if feature.HasField("float_domain") \
                else feature.int_domain
            allowed = f"{domain.min:,.10g} to {domain.max:,.10g}"
        elif feature.HasField("domain"):
            allowed = ", ".join(tfdv.get_domain(schema, feature.name).value)
        else:
            allowed = "any"
        comparator = feature.drift_comparator
        threshold = (comparator.jensen_shannon_divergence.threshold
                     if comparator.HasField("jensen_shannon_divergence") else
                     comparator.infinity_norm.threshold
                     if comparator.HasField("infinity_norm") else None)
        rows[feature.name] = {
            "type": kinds.get(schema_pb2.FeatureType.Name(feature.type), "other"),
            "presence": "required" if feature.presence.min_fraction == 1.0 else "optional",
            "allowed values": allowed,
            "drift threshold": f"{threshold:g}" if threshold else "none"}
    return pd.DataFrame(rows).T.rename_axis("feature")


def load_schema(path: Path = SCHEMA_PATH) -> schema_pb2.Schema:
    if not path.exists():
        raise FileNotFoundError(f"no data contract at {path}; run `face-sentiment validate "
                                "--update-schema` to infer and curate one from Training")
    return tfdv.load_schema_text(str(path))


def save_schema(schema: schema_pb2.Schema, path: Path = SCHEMA_PATH) -> None:
    with atomic_target(path) as staging:
        tfdv.write_schema_text(schema, str(staging))


def validate(statistics: dict[str, statistics_pb2.DatasetFeatureStatisticsList],
             schema: schema_pb2.Schema) -> ValidationResult:
    """Validate every split against the contract, and each test split for drift (against
    Training as the previous span) and skew (Training as training data, the split as serving)."""
    anomalies = {split: tfdv.validate_statistics(stats, schema)
                 for split, stats in statistics.items()}
    training = statistics["Training"]
    for split in ("PublicTest", "PrivateTest"):
        anomalies[f"drift:{split}"] = tfdv.validate_statistics(
            statistics[split], schema, previous_statistics=training)
        anomalies[f"skew:{split}"] = tfdv.validate_statistics(
            training, schema, serving_statistics=statistics[split])
    return ValidationResult(statistics, anomalies)


def anomalies_table(anomalies: dict[str, anomalies_pb2.Anomalies]) -> pd.DataFrame:
    """Flatten TFDV anomalies into one table: check, feature, short and long description."""
    rows = []
    for check, result in anomalies.items():
        for feature, info in result.anomaly_info.items():
            rows.append({"check": check, "feature": feature,
                         "anomaly": info.short_description, "detail": info.description})
        if result.HasField("dataset_anomaly_info"):
            info = result.dataset_anomaly_info
            rows.append({"check": check, "feature": "(dataset)",
                         "anomaly": info.short_description, "detail": info.description})
    return pd.DataFrame(rows, columns=["check", "feature", "anomaly", "detail"])


MEASURES = {anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "JS divergence",
            anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L-infinity",
            anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE:
            "normalised absolute difference"}


def drift_skew_table(anomalies: dict[str, anomalies_pb2.Anomalies]) -> pd.DataFrame:
    """Every drift and skew distance TFDV measured (over its threshold or not), one row per
    check and feature: the measure, its value, the threshold and whether the value is over
    it. The evidence behind a pass, not only the failures."""
    rows = []
    for check, result in anomalies.items():
        for info in result.drift_skew_info:
            for measurement in (*info.drift_measurements, *info.skew_measurements):
                rows.append({"check": check, "feature": ".".join(info.path.step),
                             "measure": MEASURES.get(measurement.type, "other"),
                             "value": measurement.value, "threshold": measurement.threshold,
                             "over": measurement.value > measurement.threshold})
    return pd.DataFrame(rows, columns=["check", "feature", "measure", "value", "threshold",
                                       "over"])


def measurements_by_check(measurements: pd.DataFrame) -> pd.DataFrame:
    """`drift_skew_table` as one row per feature and measure, one column per check, and the
    threshold (a compact view for a report)."""
    if measurements.empty:
        return pd.DataFrame()
    table = measurements.pivot_table(index=["feature", "measure"], columns="check",
                                     values="value", sort=False)
    thresholds = measurements.groupby(["feature", "measure"], sort=False)["threshold"].first()
    table["threshold"] = thresholds
    table.columns.name = None
    return table


def statistics_table(statistics: dict[str, statistics_pb2.DatasetFeatureStatisticsList]
                     ) -> pd.DataFrame:
    """Count, mean, std, min, median and max of every numeric feature per split."""
    rows = []
    for split, stats in statistics.items():
        dataset = stats.datasets[0]
        for feature in dataset.features:
            if not feature.HasField("num_stats"):
                continue
            numeric = feature.num_stats
            rows.append({"split": split, "feature": feature.path.step[0],
                         "count": dataset.num_examples, "mean": numeric.mean,
                         "std": numeric.std_dev, "min": numeric.min,
                         "median": numeric.median, "max": numeric.max,
                         "zeros": numeric.num_zeros})
    return pd.DataFrame(rows)


def run_validation(dataset: Fer2013Dataset, beam_args: str | list[str] | None = None,
                   update_schema: bool = False) -> ValidationResult:
    """The whole gate: tables -> Beam statistics -> contract -> anomalies."""
    paths = write_split_tables(feature_table(dataset))
    statistics = split_statistics(paths, beam_args)
    if update_schema:
        save_schema(infer_curated_schema(statistics["Training"]))
    return validate(statistics, load_schema())


def corrupted_split_check(table: pd.DataFrame, statistics: dict, contract: schema_pb2.Schema,
                          folder: Path, beam_args: str | list[str] | None = None,
                          brightness_factor: float = 0.25) -> ValidationResult:
    """Does the gate catch a broken batch? Darken every other PrivateTest face's brightness
    feature by `brightness_factor`, recompute PrivateTest's statistics and validate again
    (PublicTest keeps its real statistics). The result should not be ok."""
    corrupted = table.copy()
    rows = corrupted.index[corrupted.split == "PrivateTest"][::2]
    corrupted.loc[rows, "brightness"] *= brightness_factor
    paths = write_split_tables(corrupted, folder)
    bad = split_statistics({"Training": paths["Training"], "PrivateTest": paths["PrivateTest"]},
                           beam_args)
    bad["PublicTest"] = statistics["PublicTest"]
    return validate(bad, contract)
