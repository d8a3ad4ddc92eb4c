"""The continual-training stages: ingest -> validate -> train -> evaluate -> decide -> ship ->
deploy, for one incoming batch, each resumable (record.RunState) and each reusing the stage of
the workbench that owns the work:

- ingest: the batch split by person (`pipeline.incoming`), people the champion already
  trained on (its photo sets' training folds, earlier batches' train people) kept out of the
  holdout, faces detected once; the batch written into the feature store (labels at their
  labelling time, part, face quality; `pipeline.feature_store`), FER2013 too on first use.
- validate: TFDV (`data.validation`: Beam statistics, the committed contract, the drift and
  skew comparators against Training). The batch's schema is the contract with two additions
  made here, in memory: the stored image's height and width must be at least the model's
  input size, and a face must be found in at least `1 - max_no_face_fraction` of the images
  (the crop features are missing where none was). Contract anomalies (an unknown label, a too
  small image, out-of-range features, too few faces) stop the run with the report; drift and
  skew against Training are measured and recorded, and stop it only with `block_on_drift`:
  new lab data differs from FER2013 by nature (the Taiwan batch's label distribution is 0.13
  from Training's in L-infinity, four times the contract's 0.03), which is why one retrains.
- train: fine-tune the champion (`model.training.train` with `init_model`) on a seeded subset
  of FER2013 Training plus the batch's train part (repeated `batch_repeats` times, augmented by
  the network's own layers), labelled as the feature store had them at the run's start
  (Feast's point-in-time join: a correction ingested before then counts), keeping the last
  epoch of the fixed schedule (`selection: last`; `best` picks it on a FER2013 Training slice
  outside the fine-tune), never selecting on a set that decides; export int8 (`model.export`).
- evaluate: champion and challenger int8 side by side on PublicTest, PrivateTest (reported)
  and the batch holdout (people never trained on; intervals by person); the paired
  predictions the rule reads go to predictions.npz.
- decide: the promotion rule (`pipeline.promotion`: a significant gain on the held-out people,
  PublicTest non-inferior within the margin, macro-F1 there not lower) -> decision.json.
- ship: only a promoted challenger: its card is written by `evaluation.release.ship` from
  measured files (int8 latency and accuracy, fer's baseline), then the model enters the
  registry and becomes current.
- deploy: the registry's current model to each deploy target (`pipeline.deploy`).

A stage that fails leaves the registry's current model, and so the champion, in place. Each
stage is a function of one `RetrainContext` (STAGE_FUNCTIONS); `retrain` opens the context and
runs them in order through `run_stage`, which records each in state.json.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.data.cache import Fer2013Dataset
from face_sentiment.labels import SPLITS
from face_sentiment.model_card import CARD_FILE, SHIPPED_KERAS, SHIPPED_MODEL, ModelCard
from face_sentiment.paths import atomic_target, data_dir, file_sha256, write_atomic
from face_sentiment.pipeline.feature_store import (
    MixLabels,
    mix_labels,
    ready_store,
    store_batch,
)
from face_sentiment.pipeline.incoming import (
    LABELS_FILE,
    Batch,
    batch_sha256,
    ingest,
    load_ingested,
    photo_training_files,
)
from face_sentiment.pipeline.promotion import (
    PREDICTIONS_FILE,
    Paired,
    PromotionRule,
    criteria,
    load_paired,
    save_paired,
)
from face_sentiment.pipeline.record import (
    STAGES,
    RunState,
    decision_record,
    format_decision,
    retrain_dir,
)
from face_sentiment.pipeline.registry import Registry, Version


@dataclass(frozen=True)
class RetrainSettings:
    """A profile's `retrain:` section (every key optional; these defaults otherwise)."""

    holdout_fraction: float = 0.3
    person_column: str | None = None
    detector: str = "blazeface-full"
    seed: int = 0
    max_no_face_fraction: float = 0.2
    block_on_drift: bool = False
    # Fine-tuning: FER2013 Training faces mixed in (so the model does not forget FER2013),
    # repeats of the batch's train part, epochs, learning rate (a tenth of full's peak).
    fer_train_images: int = 8000
    batch_repeats: int = 3
    epochs: int = 2
    learning_rate: float = 2e-4
    batch_size: int = 64
    # The challenger's checkpoint: the last epoch of the fixed schedule ("last"), or the best
    # on a FER2013 Training slice of max_val_images faces (default 1000) that the fine-tune
    # does not train on ("best"). Never PublicTest: that set decides (pipeline.promotion).
    selection: str = "last"
    max_val_images: int | None = None
    # Test sets cut to their first N faces (CI only: the decision is then on fewer faces).
    eval_images: int | None = None
    latency_runs: int = 100
    # Weight-space ensembling with the champion (WiSE-FT, Wortsman et al. 2022): the
    # challenger's weights are this share of the fine-tuned ones plus the rest of the
    # champion's (1.0: as fine-tuned). Halfway keeps most of what the champion knew of FER2013
    # for part of the batch's gain; the paper's default, not a value tuned on the sets that
    # decide (docs/continual-training.md).
    weight_interpolation: float = 0.5
    # The promotion rule (pipeline.promotion): PublicTest's non-inferiority margin in accuracy
    # points, the fewest held-out people that can show a gain, bootstrap resamples; defaults
    # are the rule's own.
    publictest_margin_points: float = PromotionRule.margin_points
    min_holdout_people: int = PromotionRule.min_holdout_people
    bootstrap_resamples: int = PromotionRule.resamples

    def __post_init__(self) -> None:
        if self.selection not in ("last", "best"):
            raise ValueError(f"profile retrain section: selection must be last or best, not "
                             f"{self.selection!r}")
        if not 0.0 <= self.weight_interpolation <= 1.0:
            raise ValueError("profile retrain section: weight_interpolation is a share of the "
                             f"fine-tuned weights (0..1), not {self.weight_interpolation}")
        if self.publictest_margin_points < 0:
            raise ValueError("profile retrain section: publictest_margin_points is a margin "
                             f"(>= 0 points), not {self.publictest_margin_points}")

    @classmethod
    def from_profile(cls, profile: dict) -> RetrainSettings:
        values = profile.get("retrain") or {}
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"profile retrain section: unknown key(s) {', '.join(sorted(unknown))}"
                             f"; known: {', '.join(sorted(known))}")
        return cls(**values)

    def rule(self) -> PromotionRule:
        return PromotionRule(margin_points=self.publictest_margin_points,
                             min_holdout_people=self.min_holdout_people,
                             resamples=self.bootstrap_resamples, seed=self.seed)


class BatchValidationError(RuntimeError):
    """The batch broke the data contract; `report` is the validation report (text)."""

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report


# --------------------------------------------------------------------------------------------
# validate


def batch_schema(contract, size: int, max_no_face_fraction: float):
    """The committed contract plus the batch's own constraints (module docstring)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    schema.CopyFrom(contract)
    for feature in schema.feature:
        if feature.name != "label":
            # crop features are empty where no face was found: a fixed shape would call any
            # such image an anomaly, so the presence rule holds them instead (one value each)
            feature.ClearField("shape")
            feature.value_count.min = feature.value_count.max = 1
            feature.presence.min_fraction = 1.0 - max_no_face_fraction
    for name in ("image_height", "image_width"):
        feature = schema.feature.add(name=name, type=schema_pb2.INT)
        feature.presence.min_fraction = 1.0
        feature.presence.min_count = 1
        feature.int_domain.min = size
        feature.int_domain.max = 100_000
    return schema


def batch_feature_table(batch: Batch) -> pd.DataFrame:
    """One row per image as TFDV sees it: the contract's columns (crop features empty where
    no face was found) and the stored image's size."""
    from face_sentiment.data.quality import duplicate_groups, quality_features

    found = batch.table["face_found"].to_numpy(bool)
    features = quality_features(batch.faces[found])
    duplicates = duplicate_groups(batch.faces[found]) >= 0
    table = pd.DataFrame({"label": batch.table["label"].astype(str)})
    for name in ("brightness", "contrast", "sharpness", "clipped_fraction"):
        table[name] = np.nan
        table.loc[found, name] = features[name].astype(float).to_numpy()
    for name, values in (("near_blank", features["near_blank"].astype(np.int64).to_numpy()),
                         ("duplicate", duplicates.astype(np.int64))):
        table[name] = pd.array([pd.NA] * len(table), dtype="Int64")
        table.loc[found, name] = values
    table["image_height"] = batch.table["image_height"].astype(np.int64)
    table["image_width"] = batch.table["image_width"].astype(np.int64)
    return table


def training_statistics(dataset: Fer2013Dataset, beam_args: str = ""):
    """TFDV statistics of FER2013 Training (the drift/skew reference), cached per data hash in
    data/processed/validation/."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from face_sentiment.data.validation import feature_table, split_statistics

    folder = data_dir("processed") / "validation"
    cached = folder / f"Training-{dataset.data_hash[:12]}.statistics.pb"
    if cached.exists():
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(cached.read_bytes())
    table = feature_table(dataset)
    path = folder / f"Training-{dataset.data_hash[:12]}.csv"
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as staging:
        table[table.split == "Training"].drop(columns="split").to_csv(staging, index=False)
    statistics = split_statistics({"Training": path}, beam_args)["Training"]
    path.unlink()
    write_atomic(cached, statistics.SerializeToString())
    return statistics


def _anomaly_rows(result, check: str, minus=None) -> list[dict]:
    from face_sentiment.data.validation import anomalies_table

    table = anomalies_table({check: result})
    if minus is not None:
        seen = set(map(tuple, anomalies_table({check: minus})[["feature", "anomaly"]].values))
        table = table[[(f, a) not in seen for f, a in table[["feature", "anomaly"]].values]]
    return table.to_dict(orient="records")


def row_problems(batch: Batch, schema, max_rows: int = 20) -> list[str]:
    """The images behind the contract's anomalies, by labels.csv row and file."""
    import tensorflow_data_validation as tfdv

    labels = set(tfdv.get_domain(schema, "label").value)
    size = tfdv.get_feature(schema, "image_height").int_domain.min
    problems = []
    for index, row in batch.table.iterrows():
        where = f"labels.csv row {index + 2} ({row['path']})"
        if row["label"] not in labels:
            problems.append(f"{where}: label {row['label']!r} is not one of the contract's "
                            f"classes ({', '.join(sorted(labels))})")
        if min(row["image_height"], row["image_width"]) < size:
            problems.append(f"{where}: image is {row['image_width']}x{row['image_height']}, "
                            f"smaller than the model's {size}x{size} input")
        elif not row["face_found"]:
            problems.append(f"{where}: no face found")
    return problems[:max_rows] + ([f"... and {len(problems) - max_rows} more"]
                                  if len(problems) > max_rows else [])


def validate_batch(batch: Batch, dataset: Fer2013Dataset, out: Path, size: int,
                   settings: RetrainSettings, beam_args: str = "") -> dict:
    """TFDV statistics of the batch against the contract (blocking) and Training (drift and
    skew, recorded); writes validation.json and .txt; BatchValidationError on anomalies."""
    import tensorflow_data_validation as tfdv

    from face_sentiment.data.validation import load_schema, split_statistics, statistics_table

    contract = load_schema()
    schema = batch_schema(contract, size, settings.max_no_face_fraction)
    path = out / "validation" / "batch.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as staging:
        batch_feature_table(batch).to_csv(staging, index=False)
    statistics = split_statistics({"batch": path}, beam_args)["batch"]
    training = training_statistics(dataset, beam_args)
    own = tfdv.validate_statistics(statistics, schema)
    drift = tfdv.validate_statistics(statistics, schema, previous_statistics=training)
    skew = tfdv.validate_statistics(training, contract, serving_statistics=statistics)
    training_alone = tfdv.validate_statistics(training, contract)
    report = {
        "batch": batch.name, "contract": "face_sentiment/data/fer2013_schema.pbtxt + image size "
        f">= {size} and faces found in >= {1 - settings.max_no_face_fraction:.0%} of images",
        "contract_anomalies": _anomaly_rows(own, "contract"),
        "drift": _anomaly_rows(drift, "drift vs Training", minus=own),
        "skew": _anomaly_rows(skew, "skew vs Training", minus=training_alone),
        "rows": row_problems(batch, schema),
        "statistics": statistics_table({"batch": statistics}).round(4).to_dict(orient="records"),
        "block_on_drift": settings.block_on_drift,
    }
    blocking = report["contract_anomalies"] + (
        report["drift"] + report["skew"] if settings.block_on_drift else [])
    report["ok"] = not blocking
    text = format_validation(report)
    write_atomic(out / "validation.json", json.dumps(report, indent=2, default=str) + "\n")
    write_atomic(out / "validation.txt", text + "\n")
    if blocking:
        raise BatchValidationError(text)
    return report


def format_validation(report: dict) -> str:
    head = "validation passed" if report["ok"] else "validation FAILED: the batch is not used"
    lines = [f"{head} ({report['batch']}; contract: {report['contract']})"]
    for title, key in (("contract anomalies", "contract_anomalies"),
                       ("drift vs FER2013 Training", "drift"),
                       ("skew vs FER2013 Training", "skew")):
        rows = report[key]
        lines.append(f"{title}: {len(rows) or 'none'}"
                     + ("" if key == "contract_anomalies" or report["block_on_drift"]
                        else " (recorded, not blocking)"))
        lines += [f"  - {row['feature']}: {row['anomaly']}: {row['detail']}" for row in rows]
    if report["rows"] and not report["ok"]:
        lines.append("images:")
        lines += [f"  - {problem}" for problem in report["rows"]]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# train


# FER2013 Training faces the challenger validates on when max_val_images is not set.
VALIDATION_IMAGES = 1000


def training_mix(dataset: Fer2013Dataset, batch: Batch, settings: RetrainSettings,
                 labels_then: MixLabels) -> Fer2013Dataset:
    """FER2013 Training (a seeded subset) + the batch's train part as 'Training', and a
    disjoint seeded slice of FER2013 Training as the split `model.training.train` validates
    on (it is named PublicTest in this mix because train() reads that name): the real
    PublicTest and the batch's holdout decide promotion, so neither trains or selects.
    Which FER2013 images are Training, and every label, are the feature store's as of the
    run's start (`labels_then`, `pipeline.feature_store.mix_labels`)."""
    images, labels = dataset.images[labels_then.fer_rows], labels_then.fer_labels
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(labels))
    keep = np.sort(order[:settings.fer_train_images])
    held = np.sort(order[settings.fer_train_images:][:settings.max_val_images
                                                     or VALIDATION_IMAGES])
    table, faces = batch.part("train")
    repeats = max(settings.batch_repeats, 1)
    all_images = np.concatenate([images[keep], *([faces] * repeats), images[held]])
    all_labels = np.concatenate([labels[keep], *([labels_then.batch_labels] * repeats),
                                 labels[held]]).astype(np.int8)
    splits = np.concatenate([np.zeros(len(keep) + repeats * len(faces), np.int8),
                             np.full(len(held), SPLITS.index("PublicTest"), np.int8)])
    mixed = hashlib.sha256(
        f"{dataset.data_hash}:{batch.sha256}:{settings}:{labels_then.digest}".encode())
    return Fer2013Dataset(
        images=all_images, labels=all_labels, splits=splits,
        source_ids=np.array([f"mix{i}" for i in range(len(all_labels))]),
        features=pd.DataFrame(index=range(len(all_labels))),
        manifest={"source_sha256": mixed.hexdigest(), "fer2013_sha256": dataset.data_hash,
                  "batch_sha256": batch.sha256, "labels_as_of": labels_then.as_of,
                  "validation": f"{len(held)} FER2013 Training faces outside the fine-tune"})


def challenger_config(champion: Version, profile: dict, run_name: str,
                      settings: RetrainSettings):
    """The champion's own training settings (its card), else the profile's, turned into a
    short fine-tune from the champion's weights."""
    from face_sentiment.model.config import TrainingConfig

    base = dict(champion.card.get("training") or profile["training"])
    if not champion.keras_file.is_file():
        raise FileNotFoundError(f"{champion.keras_file}: the champion's Keras model is needed "
                                "to fine-tune it (registry versions keep it)")
    if base.get("label_set", "fer2013") != "fer2013":
        raise ValueError("retrain fine-tunes FER2013-label models only (the champion is "
                         f"{base.get('label_set')!r})")
    known = {f.name for f in fields(TrainingConfig)}
    config = TrainingConfig.from_dict({k: v for k, v in base.items() if k in known})
    return replace(config, run_name=run_name, init_model=str(champion.keras_file),
                   epochs=settings.epochs, learning_rate=settings.learning_rate,
                   batch_size=settings.batch_size, warmup_epochs=0, ema_momentum=None,
                   early_stopping_patience=settings.epochs, teachers=(), votes_weight=0.0,
                   targets="labels", max_train_images=None, max_val_images=None,
                   selection=settings.selection)


def fine_tune_members(mix: Fer2013Dataset, config, champion: Version, keep: float = 1.0):
    """An ensemble champion's challenger: each member network fine-tuned like a single
    champion (from its own weights, with its own architecture), interpolated with its start
    (`keep`: the fine-tuned share, `interpolate_toward`), averaged again in one graph with the
    champion's views and weights."""
    from face_sentiment.model.architecture import (
        architecture_of,
        member_networks,
        spec_arguments,
        views_per_member,
    )
    from face_sentiment.model.ensemble_graph import (
        averaged_model,
        member_weights,
        write_members_history,
    )
    from face_sentiment.model.io import load_keras_model, load_trained
    from face_sentiment.model.training import train
    from face_sentiment.paths import runs_dir

    graph = load_keras_model(champion.keras_file)
    # Each member's shape from the champion's card; from its layer names for an older card.
    specs = (champion.card.architecture_spec or {}).get("members")
    write_atomic(runs_dir() / config.run_name / "config.json",  # the challenger's card stub
                 json.dumps({**config.to_dict(), "data_sha256": mix.data_hash}, indent=2))
    tuned = []
    for index, network in enumerate(member_networks(graph)):
        name = f"{config.run_name}-member{index}"
        start = runs_dir() / config.run_name / f"member{index}-start.keras"
        start.parent.mkdir(parents=True, exist_ok=True)
        network.save(start)
        arguments = spec_arguments(specs[index]) if specs else architecture_of(network)
        shape = {key: value for key, value in arguments.items()
                 if key not in ("num_classes", "input_size")}
        member = replace(config, run_name=name, init_model=str(start), members=(), **shape)
        tuned.append(interpolate_toward(load_trained(train(mix, member)), network, keep, mix,
                                        config))
    histories = [runs_dir() / f"{config.run_name}-member{index}" / "history.csv"
                 for index in range(len(tuned))]
    write_members_history(runs_dir() / config.run_name,
                          [path if path.is_file() else None for path in histories])
    return averaged_model(tuned, flip=views_per_member(graph) == 2,
                          weights=member_weights(graph), name=graph.name)


CALIBRATION_FACES = 2048  # BatchNorm statistics of interpolated weights (as for the EMA)


def interpolate_toward(model, start, keep: float, mix: Fer2013Dataset, config):
    """`model` with `keep` of its weights and the rest of `start`'s (WiSE-FT), BatchNorm
    statistics recomputed on the first faces of the fine-tune's own training mix (never a set
    that decides); `model` itself when keep is 1."""
    if keep >= 1.0:
        return model
    from face_sentiment.model.weight_averaging import interpolate_weights
    from face_sentiment.preprocessing import preprocess_faces

    images, _ = mix.select("Training")
    interpolate_weights(model, start, keep,
                        preprocess_faces(images[:CALIBRATION_FACES], config.preprocessing))
    return model


def train_challenger(dataset: Fer2013Dataset, batch: Batch, champion: Version, profile: dict,
                     settings: RetrainSettings, run_name: str, labels_then: MixLabels) -> Path:
    """Fine-tune on the labels the store had at the run's start, then export the int8 model
    (and the inference Keras model and a card stub) into runs/<run_name>/export/; returns
    that folder."""
    from face_sentiment.evaluation.release import card_stub
    from face_sentiment.model.export import export_variants
    from face_sentiment.model.io import load_trained
    from face_sentiment.model.training import train
    from face_sentiment.paths import runs_dir
    from face_sentiment.preprocessing import preprocess_faces

    mix = training_mix(dataset, batch, settings, labels_then)
    config = challenger_config(champion, profile, run_name, settings)
    out = runs_dir() / run_name / "export"
    keep = settings.weight_interpolation
    if config.members:
        model = fine_tune_members(mix, config, champion, keep)
    else:
        model = interpolate_toward(load_trained(train(mix, config)),
                                   load_trained(champion.keras_file), keep, mix, config)
    calibration, _ = mix.select("Training")
    export_variants(model, out, preprocess_faces(calibration[:5000], config.preprocessing),
                    variants=("int8",))
    model.save(out / SHIPPED_KERAS)
    card_stub(run_name, out)
    return out


# --------------------------------------------------------------------------------------------
# evaluate, decide


def test_sets(dataset: Fer2013Dataset, limit: int | None) -> dict:
    sets = {split: dataset.select(split) for split in ("PublicTest", "PrivateTest")}
    return {name: (images[:limit], labels[:limit]) if limit else (images, labels)
            for name, (images, labels) in sets.items()}


def holdout_name(batch: Batch) -> str:
    return f"batch holdout ({batch.name})"


def score_models(predictors: dict, dataset: Fer2013Dataset, batch: Batch,
                 limit: int | None) -> tuple[dict, dict, dict]:
    """Metrics of each predictor on PublicTest, PrivateTest and the batch holdout (intervals by
    person there), the (labels, predicted classes) per model and set for the A/B tests, and
    the person of each scored holdout image ({set: ids}; only with a person column)."""
    from face_sentiment.data.folder_dataset import FaceCrops
    from face_sentiment.evaluation.cross_dataset import score
    from face_sentiment.evaluation.release import metrics_with_ci

    holdout = batch.dataset("holdout")
    crops = FaceCrops(np.stack(holdout.images) if holdout.images else
                      np.zeros((0, 48, 48), np.uint8), np.ones(len(holdout.table), bool),
                      "ingested")
    metrics: dict = {}
    predictions: dict = {}
    people: dict = {}
    for model, predictor in predictors.items():
        for name, (images, labels) in test_sets(dataset, limit).items():
            probabilities = predictor.predict(images)
            metrics.setdefault(model, {})[name] = metrics_with_ci(labels, probabilities)
            predictions[(model, name)] = (labels, probabilities.argmax(1))
        if len(holdout.table):
            result = score(predictor, holdout, crops)
            clusters = result.table["person"].astype(str).to_numpy() \
                if batch.person_column else None
            if clusters is not None:
                people[holdout_name(batch)] = clusters
            metrics[model][holdout_name(batch)] = metrics_with_ci(
                result.labels, result.probabilities, clusters)
            predictions[(model, holdout_name(batch))] = (result.labels, result.predicted)
    return metrics, predictions, people


def evaluate_challenger(dataset: Fer2013Dataset, batch: Batch, champion: Version,
                        challenger: Path, settings: RetrainSettings
                        ) -> tuple[dict, dict[str, Paired]]:
    """Champion and challenger int8 side by side, with the A/B test on every set (resampling
    people on the holdout); and the paired predictions the promotion rule reads."""
    from face_sentiment.evaluation.ab_testing import compare
    from face_sentiment.evaluation.predictors import load_predictor

    predictors = {"champion": load_predictor(champion.model_file),
                  "challenger": load_predictor(challenger / SHIPPED_MODEL)}
    metrics, predictions, people = score_models(predictors, dataset, batch,
                                                settings.eval_images)
    ab, paired = {}, {}
    for name in metrics["champion"]:
        labels, champion_predicted = predictions[("champion", name)]
        _, challenger_predicted = predictions[("challenger", name)]
        # the old single-set verdict (promote_b) is not this pipeline's rule: left out
        ab[name] = {key: value for key, value in compare(
            labels, champion_predicted, challenger_predicted, "champion", "challenger",
            seed=settings.seed, clusters=people.get(name)).to_dict().items()
            if key != "promote_b"}
        paired[name] = Paired(name, np.asarray(labels), np.asarray(champion_predicted),
                              np.asarray(challenger_predicted), people.get(name))
    holdout = holdout_name(batch)
    paired.setdefault(holdout, Paired(holdout, *[np.zeros(0, np.int64)] * 3,
                                      np.zeros(0, str) if batch.person_column else None))
    evaluation = {"metrics": metrics, "ab": ab,
                  "rule_sets": {"holdout": holdout, "fer": "PublicTest"},
                  "holdout_by_person": batch.person_column is not None}
    return evaluation, {"holdout": paired[holdout], "fer": paired["PublicTest"]}


def decide(state: RunState, evaluation: dict, paired: dict[str, Paired], champion: Version,
           challenger: Path, validation: dict, settings: RetrainSettings) -> dict:
    """The promotion rule (pipeline.promotion) on the evaluation's paired predictions."""
    rule = settings.rule()
    checks = criteria(paired["holdout"], paired["fer"], rule, evaluation["holdout_by_person"])
    return decision_record(
        state.batch, state.sha256,
        {"version": champion.name, "fingerprint": champion.fingerprint,
         "model": str(champion.model_file)},
        {"model": str(challenger / SHIPPED_MODEL),
         "sha256": file_sha256(challenger / SHIPPED_MODEL)},
        evaluation, checks, rule.describe(), validation.get("drift", []))


# --------------------------------------------------------------------------------------------
# ship


def write_release_inputs(dataset: Fer2013Dataset, batch: Batch, run_name: str,
                         evaluation: dict, settings: RetrainSettings) -> None:
    """benchmark.json and evaluation.json as `release.ship` reads them, from measurements of
    the challenger: its int8 latency and PrivateTest accuracy, its float model's metrics,
    fer's on the sets it is scored on, and the A/B tests of the decision."""
    from face_sentiment.evaluation.predictors import TFLitePredictor, load_predictor
    from face_sentiment.live.interpreter import runtime_name
    from face_sentiment.model.export import benchmark_variants, fer_tflite_latency
    from face_sentiment.model_card import machine_description
    from face_sentiment.paths import runs_dir
    from face_sentiment.preprocessing import PreprocessingSpec, preprocess_faces

    out = runs_dir() / run_name / "export"
    card = ModelCard.load(out / CARD_FILE)
    images, labels = test_sets(dataset, settings.eval_images)["PrivateTest"]
    table = benchmark_variants({"int8": out / SHIPPED_MODEL}, images, labels,
                               lambda path, faces: TFLitePredictor(path).predict(faces),
                               preprocess_faces(images[:1], PreprocessingSpec.from_dict(
                                   card.preprocessing.to_dict())), runs=settings.latency_runs)
    benchmark = {"variants": table.to_dict(orient="records"),
                 "fer_tflite_latency": fer_tflite_latency(images, settings.latency_runs),
                 "runtime": runtime_name(), "runtimes": [], "machine": machine_description(),
                 "n": int(len(labels))}
    write_atomic(out / "benchmark.json", json.dumps(benchmark, indent=2) + "\n")
    extra, _, _ = score_models({"keras": load_predictor(out / SHIPPED_KERAS),
                                "fer": load_predictor("fer")}, dataset, batch,
                               settings.eval_images)
    metrics = {"int8": evaluation["metrics"]["challenger"], **extra}
    ab = {f"champion vs challenger on {name}": values for name, values in evaluation["ab"].items()}
    write_atomic(runs_dir() / run_name / "evaluation.json",
                 json.dumps({"metrics": metrics, "ab": ab}, indent=2) + "\n")


def trained_people(champion: Version, batch: Batch) -> list[str]:
    """The people a model fine-tuned from `champion` on `batch` has learnt from: the champion
    lineage's and the batch's train part (person ids; none without a person column)."""
    before = set((champion.card.get("lineage") or {}).get("trained_people") or [])
    if batch.person_column:
        before |= set(batch.table.loc[batch.table["part"] == "train", "person"].astype(str))
    return sorted(before)


def ship_challenger(dataset: Fer2013Dataset, batch: Batch, run_name: str, record: dict,
                    registry: Registry, champion: Version, profile_name: str, commit: str,
                    out: Path, trained: dict) -> Version:
    """The card by `release.ship` (into out/release), with the model's lineage and the
    labels it trained on (`trained`: the train stage's record); then the model enters the
    registry and becomes current."""
    from face_sentiment.evaluation.release import ship

    release = out / "release"
    ship(dataset, run_name, commit, release, profile_name)
    card = ModelCard.load(release / CARD_FILE).to_dict()
    card["name"] = f"{card['name']} (retrained on {batch.name})"
    card["reproduce"] = (f"face-sentiment retrain --incoming {batch.folder} --profile "
                         f"{profile_name} (commit {commit}; champion {champion.name} "
                         f"{champion.fingerprint}; batch sha256 {batch.sha256[:16]})")
    # trained_people: the next batch keeps these people out of its holdout (incoming.ingest)
    card["lineage"] = {"parent_version": champion.name,
                       "parent_fingerprint": champion.fingerprint,
                       "batch": batch.name, "batch_sha256": batch.sha256,
                       "decision": record["decision"], "decided": record["decided"],
                       "trained_people": trained_people(champion, batch)}
    card["data"] = {**card["data"], "incoming_batch_sha256": batch.sha256,
                    "labels": {"source": "feature store (point-in-time join)",
                               "as_of": trained.get("labels_as_of"),
                               "corrected": trained.get("labels_corrected")}}
    ModelCard.from_dict(card, "retrained card").write(release)
    version = registry.add(release, decision=record)
    return registry.promote(version, f"batch {batch.name}: {record['decision']}")


# --------------------------------------------------------------------------------------------
# the stages as functions of one context, and the driver


FerSource = Fer2013Dataset | Callable[[], Fer2013Dataset] | None


@dataclass
class RetrainContext:
    """Everything a stage reads: the batch folder and its run folder and state, the champion
    fixed when the run started, the profile and its settings, the registry, deploy targets and
    how to log. The FER2013 cache and the ingested batch are loaded on first use (a rerun whose
    stages are all done, or a batch that fails at ingest, never loads FER2013)."""

    folder: Path
    profile_name: str
    profile: dict
    settings: RetrainSettings
    registry: Registry
    champion: Version
    state: RunState
    targets: dict | None = None
    beam_args: str = ""
    commit: str | None = None
    log: Callable[[str], None] = print
    fer: FerSource = None
    ingested: Batch | None = None
    feature_repo: Path | None = None  # the Feast repository (default: features/)

    @property
    def out(self) -> Path:
        return retrain_dir(self.folder.name)

    @property
    def run_name(self) -> str:
        return f"retrain/{self.folder.name}/challenger"

    @property
    def challenger_dir(self) -> Path:
        from face_sentiment.paths import runs_dir
        return runs_dir() / self.run_name / "export"

    @property
    def size(self) -> int:
        return self.champion.card.preprocessing.size

    def dataset(self) -> Fer2013Dataset:
        if self.fer is None:
            from face_sentiment.data.cache import load_dataset
            self.fer = load_dataset()
        elif callable(self.fer):
            self.fer = self.fer()
        return self.fer

    def batch(self) -> Batch:
        if self.ingested is None:
            self.ingested = load_ingested(self.folder, self.out)
        return self.ingested

    def read(self, name: str) -> dict:
        return json.loads((self.out / name).read_text())

    def write(self, name: str, payload: dict) -> None:
        write_atomic(self.out / name, json.dumps(payload, indent=2) + "\n")

    def promoted(self) -> bool:
        return self.read("decision.json")["decision"] == "promote"


def stage_ingest(context: RetrainContext) -> dict:
    """Split the batch by person (keeping out of the holdout whom the champion trained on)
    and detect its faces once."""
    settings, champion = context.settings, context.champion
    seen_files, notes = photo_training_files(champion.card.get("training") or {})
    seen_people = set((champion.card.get("lineage") or {}).get("trained_people") or [])
    context.ingested = ingest(context.folder, context.out, settings.holdout_fraction,
                              settings.seed, settings.person_column, settings.detector,
                              context.size, seen_files, seen_people)
    for note in notes:
        context.log(f"warning: {note}")
    store = ready_store(context.dataset(), context.feature_repo, context.log)
    stored = store_batch(store, context.ingested)
    info = context.read("ingest.json")
    return {"images": info["images"], "faces_found": info["faces_found"],
            "split": info["split"], "parts": {k: v["images"] for k, v in info["parts"].items()},
            "seen_by_champion": info["seen_by_champion"], "notes": notes,
            "feature_store": {"repo": str(store.repo_path), **stored}}


def stage_validate(context: RetrainContext) -> dict:
    report = validate_batch(context.batch(), context.dataset(), context.out, context.size,
                            context.settings, context.beam_args)
    context.log(format_validation(report))
    return {"drift": len(report["drift"]), "skew": len(report["skew"])}


def stage_train(context: RetrainContext) -> dict:
    from face_sentiment.features.store import open_store
    labels_then = mix_labels(open_store(context.feature_repo), context.dataset(),
                             context.batch(), context.state.values["labels_as_of"])
    corrected = ", ".join(f"{k} {v}" for k, v in labels_then.corrected.items())
    context.log(f"[train] labels from the feature store as of {labels_then.as_of} "
                f"(corrected since the sources: {corrected})")
    started = time.perf_counter()
    train_challenger(context.dataset(), context.batch(), context.champion, context.profile,
                     context.settings, context.run_name, labels_then)
    return {"train_seconds": round(time.perf_counter() - started, 1),
            "selection": context.settings.selection, **labels_then.summary()}


def stage_evaluate(context: RetrainContext) -> dict:
    evaluation, paired = evaluate_challenger(context.dataset(), context.batch(),
                                             context.champion, context.challenger_dir,
                                             context.settings)
    save_paired(context.out / PREDICTIONS_FILE, paired)
    context.write("evaluation.json", evaluation)
    return {"sets": list(evaluation["ab"])}


def stage_decide(context: RetrainContext) -> dict:
    record = decide(context.state, context.read("evaluation.json"),
                    load_paired(context.out / PREDICTIONS_FILE), context.champion,
                    context.challenger_dir, context.read("validation.json"), context.settings)
    context.write("decision.json", record)
    context.log(format_decision(record))
    return {"decision": record["decision"], "failed": record["failed"]}


def stage_ship(context: RetrainContext) -> dict:
    if not context.promoted():
        return {"shipped": None, "note": "champion kept: nothing shipped"}
    from face_sentiment.reports import git_commit

    write_release_inputs(context.dataset(), context.batch(), context.run_name,
                         context.read("evaluation.json"), context.settings)
    version = ship_challenger(context.dataset(), context.batch(), context.run_name,
                              context.read("decision.json"), context.registry,
                              context.champion, context.profile_name,
                              context.commit or git_commit(), context.out,
                              context.state.stages["train"])
    context.log(f"registered {version.name} ({version.fingerprint}) in "
                f"{context.registry.folder}: current")
    return {"shipped": version.name, "fingerprint": version.fingerprint}


def stage_deploy(context: RetrainContext) -> dict:
    if not context.promoted():
        return {"deployed": [], "note": "champion kept: nothing deployed"}
    from face_sentiment.pipeline.deploy import deploy, load_targets

    version = context.registry.version(context.state.stages["ship"]["shipped"])
    records = [deploy(version, target)
               for target in (context.targets or load_targets()).values()]
    for record in records:
        context.log(f"deployed {record['version']} ({record['fingerprint']}) to "
                    f"{record['where']}")
    return {"deployed": records}


# In record.STAGES' order (a test holds them equal, and equal to the Airflow DAG's).
STAGE_FUNCTIONS: dict[str, Callable[[RetrainContext], dict]] = {
    "ingest": stage_ingest, "validate": stage_validate, "train": stage_train,
    "evaluate": stage_evaluate, "decide": stage_decide, "ship": stage_ship,
    "deploy": stage_deploy,
}


def run_stage(context: RetrainContext, name: str) -> dict | None:
    """Run one stage unless the state says it is done; record its outcome (done, stopped at
    validation, failed with the error) and time in state.json."""
    state = context.state
    if state.done(name):
        context.log(f"[{name}] done before: skipped")
        return None
    context.log(f"[{name}] ...")
    started = time.perf_counter()
    try:
        summary = STAGE_FUNCTIONS[name](context) or {}
    except BatchValidationError:
        state.mark(name, "stopped", time.perf_counter() - started)
        state.set(outcome="stopped at validation")
        raise
    except BaseException as error:
        state.mark(name, "failed", time.perf_counter() - started,
                   error=f"{type(error).__name__}: {error}")
        raise
    state.mark(name, "done", time.perf_counter() - started, **summary)
    context.log(f"[{name}] done in {time.perf_counter() - started:.1f} s")
    return summary


def open_context(batch_folder: Path, profile_name: str, *, dataset: FerSource = None,
                 registry: Registry | None = None, seed_from: Path | None = None,
                 targets: dict | None = None, beam_args: str = "", commit: str | None = None,
                 log: Callable[[str], None] = print, feature_repo: Path | None = None
                 ) -> RetrainContext:
    """The run's context: the registry seeded when empty, the state opened (a changed batch
    starts over), and the champion this run challenges fixed at its start."""
    from face_sentiment.paths import models_dir
    from face_sentiment.profiles import load_profile

    if not (batch_folder / LABELS_FILE).is_file():
        raise FileNotFoundError(f"batch {batch_folder}: no {LABELS_FILE} (a batch folder "
                                "holds images and labels.csv)")
    profile = load_profile(profile_name)
    settings = RetrainSettings.from_profile(profile)
    registry = registry or Registry()
    champion = registry.seed(seed_from or models_dir())
    state = RunState(retrain_dir(batch_folder.name), batch_folder.name,
                     batch_sha256(batch_folder))
    if "champion" not in state.values:
        # the run's start: the labels it trains on are the feature store's as of then
        state.set(champion=champion.name, profile=profile_name,
                  labels_as_of=datetime.now(UTC).isoformat())
    return RetrainContext(batch_folder, profile_name, profile, settings, registry,
                          registry.version(state.values["champion"]), state, targets,
                          beam_args, commit, log, dataset, feature_repo=feature_repo)


@dataclass
class RetrainResult:
    batch: str
    outcome: str  # "promoted", "kept", "stopped at validation", "stages up to S done"
    folder: Path
    decision: dict | None = None
    version: str | None = None
    deployed: list | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "folder": str(self.folder)}


def finish(context: RetrainContext, until: str) -> RetrainResult:
    """The run's result, recorded as the state's outcome. The outcome is final
    (triggers.FINAL_OUTCOMES: the batch is no longer pending) only once every stage is done;
    a run up to an earlier stage (an Airflow task) leaves it pending."""
    state = context.state
    result = RetrainResult(context.folder.name, f"stages up to {until} done", context.out)
    if state.done("decide"):
        result.decision = context.read("decision.json")
        result.version = state.stages.get("ship", {}).get("shipped")
        result.deployed = state.stages.get("deploy", {}).get("deployed")
        if state.done("deploy"):
            result.outcome = "promoted" if result.decision["decision"] == "promote" else "kept"
    state.set(outcome=result.outcome)
    return result


def retrain(batch_folder: Path, profile_name: str = "full", *, dataset: FerSource = None,
            registry: Registry | None = None, seed_from: Path | None = None,
            targets: dict | None = None, until: str = "deploy", beam_args: str = "",
            commit: str | None = None, log: Callable[[str], None] = print,
            feature_repo: Path | None = None) -> RetrainResult:
    """Run (or resume) every stage up to `until` for one batch; see the module docstring.

    `dataset`: the FER2013 cache, or a function returning it (default: load_dataset(), on
    first use); `registry`: default deploy/registry, seeded from `seed_from` (default
    models/, read only) when empty; `targets`: deploy targets (default:
    pipeline.deploy.load_targets()); `feature_repo`: the Feast repository the labels are read
    from (default: features/, or $FACE_SENTIMENT_FEATURE_REPO).
    """
    if until not in STAGES:
        raise ValueError(f"unknown stage {until!r}; stages: {', '.join(STAGES)}")
    context = open_context(batch_folder, profile_name, dataset=dataset, registry=registry,
                           seed_from=seed_from, targets=targets, beam_args=beam_args,
                           commit=commit, log=log, feature_repo=feature_repo)
    for name in STAGES[:STAGES.index(until) + 1]:
        run_stage(context, name)
    return finish(context, until)
