"""Training building blocks without training: class weights, config round trip, run profiles.

TrainingConfig and the profiles are TensorFlow-free (face_sentiment.model.config); the tests of
face_sentiment.model.training's helpers import TensorFlow with it and are marked so.
"""

import ast
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml

from face_sentiment.model.config import TrainingConfig
from face_sentiment.preprocessing import PreprocessingSpec
from face_sentiment.profiles import load_profile, profile_path

REAL_PROFILES = ("ci", "full", "ferplus")

# Counts 6, 3, 1 over ten training labels.
LABELS = np.array([0] * 6 + [1] * 3 + [2], dtype=np.int64)
COUNTS = np.array([6, 3, 1])


def weighted_mean(weights: dict[int, float], labels: np.ndarray) -> float:
    return float(np.mean([weights[label] for label in labels]))


# --- class weights ---------------------------------------------------------------------------

@pytest.mark.tensorflow
def test_no_weighting_is_none():
    from face_sentiment.model.training import class_weights

    assert class_weights(LABELS, 3, "none") is None


@pytest.mark.tensorflow
def test_balanced_weights_are_inverse_frequency():
    from face_sentiment.model.training import class_weights

    weights = class_weights(LABELS, 3, "balanced")
    assert list(weights) == [0, 1, 2]
    assert all(isinstance(w, float) for w in weights.values())
    # N / (K * count): 10 / 18, 10 / 9, 10 / 3.
    assert [weights[i] for i in range(3)] == pytest.approx([5 / 9, 10 / 9, 10 / 3])
    assert weighted_mean(weights, LABELS) == pytest.approx(1.0)
    # Each class then carries the same total weight.
    assert [weights[i] * COUNTS[i] for i in range(3)] == pytest.approx([10 / 3] * 3)


@pytest.mark.tensorflow
def test_sqrt_weights_soften_inverse_frequency():
    from face_sentiment.model.training import class_weights

    weights = class_weights(LABELS, 3, "sqrt")
    assert weighted_mean(weights, LABELS) == pytest.approx(1.0)
    assert weights[0] < weights[1] < weights[2]  # rarer class, larger weight
    # Proportional to 1 / sqrt(count), scaled to mean 1 over the ten labels.
    scale = len(LABELS) / np.sqrt(COUNTS).sum()
    assert [weights[i] for i in range(3)] == pytest.approx(list(scale / np.sqrt(COUNTS)))
    balanced = class_weights(LABELS, 3, "balanced")
    assert weights[2] / weights[0] == pytest.approx(np.sqrt(balanced[2] / balanced[0]))


@pytest.mark.parametrize("scheme", ["balanced", "sqrt"])
@pytest.mark.tensorflow
def test_balanced_data_gets_unit_weights(scheme):
    from face_sentiment.model.training import class_weights

    weights = class_weights(np.repeat(np.arange(7), 5), 7, scheme)
    assert list(weights.values()) == pytest.approx([1.0] * 7)


@pytest.mark.parametrize("scheme", ["balanced", "sqrt"])
@pytest.mark.tensorflow
def test_a_class_absent_from_training_keeps_the_mean_at_one(scheme):
    from face_sentiment.model.training import class_weights

    weights = class_weights(LABELS, 4, scheme)
    assert list(weights) == [0, 1, 2, 3]
    assert weighted_mean(weights, LABELS) == pytest.approx(1.0)
    assert np.isfinite(list(weights.values())).all()
    assert weights[0] < weights[1] < weights[2]
    # The present classes keep the weights they get when the empty class is not counted.
    assert [weights[i] for i in range(3)] == pytest.approx(
        [class_weights(LABELS, 3, scheme)[i] for i in range(3)])


@pytest.mark.tensorflow
def test_unknown_weighting_scheme_is_rejected():
    from face_sentiment.model.training import class_weights

    with pytest.raises(ValueError):
        class_weights(LABELS, 3, "sqrtt")


# --- training targets ------------------------------------------------------------------------

@pytest.mark.tensorflow
def test_label_targets_are_one_hot(fer2013_csv, ferplus_csv):
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.model.training import training_targets

    dataset = load_dataset(fer2013_csv, ferplus_csv)
    for label_set, classes in (("fer2013", 7), ("ferplus", 8)):
        images, targets, labels = training_targets(dataset, TrainingConfig(label_set=label_set))
        assert images.shape == (len(labels), 48, 48, 1) and images.dtype == np.float32
        np.testing.assert_array_equal(targets, np.eye(classes, dtype=np.float32)[labels])
        np.testing.assert_array_equal(labels, dataset.select("Training", label_set)[1])


@pytest.mark.tensorflow
def test_vote_targets_are_ferplus_distributions(fer2013_csv, ferplus_csv):
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.model.training import training_targets

    dataset = load_dataset(fer2013_csv, ferplus_csv)
    config = TrainingConfig(label_set="ferplus", targets="votes")
    _, targets, labels = training_targets(dataset, config)
    np.testing.assert_array_equal(targets, dataset.select_vote_targets("Training"))
    assert labels.tolist() == [0, 3]
    # A limit keeps the same rows of images, targets and labels.
    images, targets, labels = training_targets(dataset, TrainingConfig(
        label_set="ferplus", targets="votes", max_train_images=1, seed=3))
    assert len(images) == len(targets) == len(labels) == 1
    assert targets[0].argmax() == labels[0]


@pytest.mark.tensorflow
def test_bad_targets_are_rejected(fer2013_csv, ferplus_csv):
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.model.training import training_targets

    dataset = load_dataset(fer2013_csv, ferplus_csv)
    with pytest.raises(ValueError, match="targets: votes needs label_set: ferplus"):
        training_targets(dataset, TrainingConfig(targets="votes"))
    with pytest.raises(ValueError, match="unknown targets 'soft'; use labels or votes"):
        training_targets(dataset, TrainingConfig(targets="soft"))


# --- TrainingConfig --------------------------------------------------------------------------

def test_training_config_round_trips_through_a_dict_and_json():
    config = TrainingConfig(
        run_name="probe", label_set="ferplus", epochs=3, class_weighting="balanced",
        max_train_images=100, max_val_images=None, stem_strides=2, stage_filters=(8, 16, 24, 32),
        deterministic=False,
        preprocessing=PreprocessingSpec(method="clahe", clahe_clip_limit=3.5, clahe_tile_grid=6),
    )
    values = config.to_dict()
    assert values["preprocessing"] == {"method": "clahe", "size": 48, "clahe_clip_limit": 3.5,
                                       "clahe_tile_grid": 6}
    copy = dict(values)
    assert TrainingConfig.from_dict(values) == config
    assert values == copy  # from_dict does not modify its argument
    # runs/<name>/config.json is JSON: the round trip survives it too.
    restored = TrainingConfig.from_dict(json.loads(json.dumps(values)))
    assert restored == config
    assert isinstance(restored.preprocessing, PreprocessingSpec)
    assert restored.stage_filters == (8, 16, 24, 32)  # a JSON/YAML list becomes a tuple again


def test_training_config_defaults_are_the_full_profiles_training(real_root):
    """A bare TrainingConfig() (and so any key a profile leaves out) means the full run."""
    assert TrainingConfig() == TrainingConfig.from_dict(load_profile("full")["training"])


def test_training_config_defaults_and_partial_dicts():
    assert TrainingConfig.from_dict({}) == TrainingConfig()
    config = TrainingConfig.from_dict({"epochs": 2, "preprocessing": {"method": "histeq"}})
    assert config.epochs == 2 and config.preprocessing == PreprocessingSpec(method="histeq")
    assert TrainingConfig().preprocessing == PreprocessingSpec()
    with pytest.raises(TypeError):
        TrainingConfig.from_dict({"epoch": 2})  # a misspelt key is not ignored
    with pytest.raises(ValueError, match="unknown preprocessing method"):
        TrainingConfig.from_dict({"preprocessing": {"method": "sharpen"}})


# --- profiles --------------------------------------------------------------------------------

def parameter_names(notebook: Path) -> set[str]:
    """Names assigned in a notebook's `parameters` cell."""
    cells = [c for c in nbformat.read(notebook, as_version=4).cells
             if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, notebook
    return {target.id for node in ast.parse(cells[0].source).body
            if isinstance(node, ast.Assign) for target in node.targets}


@pytest.mark.parametrize("name", REAL_PROFILES)
def test_real_profiles_load_and_parse(name, real_root):
    written = yaml.safe_load((real_root / "profiles" / f"{name}.yaml").read_text())
    assert profile_path(name) == real_root / "profiles" / f"{name}.yaml"
    values = load_profile(name)
    assert "base" not in values
    # What the file writes is what it gets; a child inherits the rest from full.
    assert written.get("base") == (None if name == "full" else "full")
    assert values["training"] == {**load_profile("full")["training"], **written["training"]}
    config = TrainingConfig.from_dict(values["training"])
    assert config.run_name.startswith(name)  # full-v2: a new generation keeps the old run
    assert config.class_weighting in {"none", "sqrt", "balanced"}
    assert config.preprocessing == PreprocessingSpec(method="standardize", size=48)
    assert TrainingConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("name", sorted(p.stem for p in (
    Path(__file__).resolve().parents[1] / "profiles").glob("*.yaml")))
def test_every_profile_resolves_to_a_training_config_named_after_it(name, real_root):
    """Screens and students too (distill-v3, camera-screen...): a typo in a key fails here,
    not an hour into a run."""
    config = TrainingConfig.from_dict(load_profile(name)["training"])
    assert config.run_name.startswith(name)
    assert TrainingConfig.from_dict(config.to_dict()) == config


def test_ci_profile_is_a_small_slice_of_full(real_root):
    full, ci = (TrainingConfig.from_dict(load_profile(n)["training"]) for n in ("full", "ci"))
    assert full.max_train_images is None and full.max_val_images is None
    assert ci.max_train_images == 512 and ci.max_val_images == 256
    assert ci.epochs < full.epochs
    # Apart from size and run length, ci takes the code paths full takes.
    for field in ("label_set", "class_weighting", "preprocessing", "seed", "dropout",
                  "stem_filters", "stem_strides", "stage_filters"):
        assert getattr(ci, field) == getattr(full, field), field


@pytest.mark.parametrize("name", REAL_PROFILES)
def test_real_profiles_only_set_declared_notebook_parameters(name, real_root):
    sections = load_profile(name).get("notebooks") or {}
    notebooks = sorted((real_root / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    assert notebooks
    for notebook in notebooks:
        section = sections.get(notebook.stem) or {}
        declared = parameter_names(notebook)
        assert "profile" in declared, notebook.name
        assert set(section) <= declared, (notebook.name, set(section) - declared)


def test_ferplus_profile_is_full_with_ferplus_vote_targets(real_root):
    from face_sentiment.profiles import ship_folder

    full, ferplus = (load_profile(name) for name in ("full", "ferplus"))
    full_config, ferplus_config = (TrainingConfig.from_dict(p["training"]) for p in (full, ferplus))
    assert ferplus_config.label_set == "ferplus" and ferplus_config.targets == "votes"
    for field in ("stem_filters", "stem_strides", "stage_filters", "dropout", "preprocessing"):
        assert getattr(ferplus_config, field) == getattr(full_config, field), field
    # The variant ships beside, not over, the FER2013 model.
    assert ship_folder(ferplus) == real_root / "models" / "ferplus"
    assert ship_folder(full) == real_root / "models"


def test_missing_profile_lists_the_available_ones(project_root):
    profiles = project_root / "profiles"
    profiles.mkdir()
    (profiles / "quick.yaml").write_text("training: {epochs: 1}\n")
    (profiles / "slow.yaml").write_text("training: {epochs: 99}\n")
    (profiles / "empty.yaml").write_text("")
    with pytest.raises(FileNotFoundError) as error:
        load_profile("full")
    message = str(error.value)
    assert str(profiles.resolve() / "full.yaml") in message
    assert "available: ['empty', 'quick', 'slow']" in message
    assert load_profile("quick") == {"training": {"epochs": 1}}
    assert load_profile("empty") == {}


@pytest.mark.tensorflow
def test_class_weight_table_follows_the_label_set():
    from face_sentiment.model.training import TrainingConfig, class_weight_table

    labels = np.array([0, 0, 1, 7, 7, 7])
    table = class_weight_table(labels, TrainingConfig(label_set="ferplus",
                                                      class_weighting="balanced"))
    assert list(table.index)[-1] == "contempt" and table["images"].tolist() == [2, 1, 0, 0, 0,
                                                                              0, 0, 3]
    assert (table["weight"] * table["images"]).sum() == pytest.approx(len(labels))


@pytest.mark.tensorflow
def test_photographs_join_training_at_their_share_with_their_own_class_weights(monkeypatch):
    from face_sentiment.model import training as training_module

    photos = np.stack([np.full((48, 48), value, np.uint8) for value in (60, 120, 180)])
    photo_labels = np.array([3, 3, 6])  # happy, happy, neutral
    monkeypatch.setattr(training_module, "photo_training_faces",
                        lambda config: (photos, photo_labels))
    config = TrainingConfig(photo_sets=("lfw_expressions",), photo_share=0.5,
                            class_weighting="none", photo_class_weighting="balanced")
    fer_labels = np.array([0, 1, 2, 3, 4, 5, 6, 0, 0])
    inputs = np.zeros((9, 48, 48, 1), np.float32)  # preprocess_faces: a channel axis
    targets = np.eye(7, dtype=np.float32)[fer_labels]
    x, t, y, weights = training_module.mix_photographs(inputs, targets, fer_labels, config)
    assert len(x) == len(t) == len(y) == len(weights) == 18  # photographs: half of the whole
    assert np.array_equal(y[:9], fer_labels) and sorted(y[9:]) == [3] * 6 + [6] * 3
    assert np.array_equal(t[9:].argmax(1), y[9:]) and np.allclose(t.sum(1), 1)
    assert np.all(weights[:9] == 1)  # FER2013 keeps its own weighting (none here)
    # Balanced on the photographs' labels alone: 2 happy to 1 neutral, mean weight 1.
    assert weights[9:][y[9:] == 3] == pytest.approx(0.75)
    assert weights[9:][y[9:] == 6] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="photo_share"):
        training_module.mix_photographs(inputs, targets, fer_labels,
                                        TrainingConfig(photo_sets=("x",), photo_share=1.0))


@pytest.mark.tensorflow
def test_photographs_join_distillation_with_their_labels_in_both_halves(monkeypatch):
    from face_sentiment.model import training as training_module
    from face_sentiment.model.distillation import pack_targets

    monkeypatch.setattr(training_module, "photo_training_faces",
                        lambda config: (np.full((2, 48, 48), 90, np.uint8), np.array([5, 6])))
    config = TrainingConfig(photo_sets=("lfw_expressions",), photo_share=0.5,
                            teachers=("models/teachers/ensemble-v1/face_sentiment_int8.tflite",))
    hard = np.eye(7, dtype=np.float32)[[0, 3]]
    soft = np.full((2, 7), 1 / 7, np.float32)
    _, targets, labels, _ = training_module.mix_photographs(
        np.zeros((2, 48, 48, 1), np.float32), pack_targets(hard, soft), np.array([0, 3]), config)
    assert targets.shape == (4, 14) and labels.tolist() == [0, 3, 5, 6]
    assert np.array_equal(targets[:2], pack_targets(hard, soft))  # FER2013: the teachers
    photos = np.eye(7, dtype=np.float32)[[5, 6]]
    assert np.array_equal(targets[2:], pack_targets(photos, photos))  # photographs: labels


# --- notebook 04's and 03's tables -----------------------------------------------------------

@pytest.mark.tensorflow
def test_screen_verdict_names_a_method_only_when_it_learnt_and_stands_clear():
    import pandas as pd

    from face_sentiment.model.training import screen_table, screen_verdict

    def screen(rows):
        return pd.DataFrame(rows, columns=["PublicTest accuracy", "PublicTest accuracy_ci_low",
                                           "PublicTest accuracy_ci_high"],
                            index=["standardize", "clahe"][:len(rows)]).assign(
            **{"commonest answer": "happy", "commonest answer share": 0.5,
               "train images": 256, "epochs": 1, "seconds": 1.0})

    below = screen([[0.20, 0.19, 0.21], [0.249, 0.235, 0.263]])
    assert screen_verdict(below, 0.249) == (None, "no run's accuracy is above the "
                                                  "majority-class rate")
    overlapping = screen([[0.40, 0.38, 0.42], [0.41, 0.39, 0.43]])
    winner, reason = screen_verdict(overlapping, 0.249)
    assert winner is None and "overlaps standardize" in reason
    clear = screen([[0.40, 0.38, 0.42], [0.46, 0.44, 0.48]])
    assert screen_verdict(clear, 0.249)[0] == "clahe"
    assert screen_verdict(screen([[0.40, 0.38, 0.42]]), 0.249)[0] == "standardize"
    table = screen_table(below, 0.249)
    assert table.loc["clahe", "accuracy %"] == pytest.approx(24.9)
    assert table.loc["clahe", "accuracy %_ci_low"] == pytest.approx(23.5)
    assert table["above the majority rate (24.9%)"].tolist() == ["no", "no"]
    assert table.loc["clahe", "its share %"] == pytest.approx(50.0)


@pytest.mark.tensorflow
def test_history_summary_per_run_and_per_member():
    import pandas as pd

    from face_sentiment.model.training import history_summary

    run = pd.DataFrame({"epoch": [0, 1, 2], "accuracy": [0.3, 0.4, 0.5],
                        "val_accuracy": [0.30, 0.45, 0.40]})
    table = history_summary(run)
    assert list(table.index) == ["this run"]
    assert table.loc["this run", "best epoch"] == 2
    assert table.loc["this run", "last PublicTest %"] == pytest.approx(40.0)
    members = pd.concat([run.assign(member=0), run.assign(member=1)])
    assert list(history_summary(members).index) == ["member 0", "member 1"]


@pytest.mark.tensorflow
def test_config_table_shows_what_differs_from_the_full_profile():
    from face_sentiment.model.training import config_table

    table = config_table(TrainingConfig(run_name="ci", epochs=1, max_train_images=512))
    assert table.loc["epochs", "this profile"] == 1
    assert table.loc["epochs", "full profile"] == 70
    assert table.loc["label_set", "full profile"] == ""  # the same
    assert table.loc["stage_filters", "this profile"] == "24, 48, 96, 192"
    assert table.loc["max_train_images", "full profile"] == "none"
    assert table.loc["preprocessing", "this profile"] == "standardize"
    assert "teachers" not in table.index  # neither sets any


@pytest.mark.tensorflow
def test_card_tables_read_the_card(tmp_path):
    from face_sentiment.model.training import card_metrics_table, members_table

    member = tmp_path / "models" / "teachers" / "a"
    member.mkdir(parents=True)
    (member / "model_card.json").write_text(json.dumps(
        {"training": {"init_model": "models/teachers/base/face_sentiment.keras",
                      "selection": "last"}}))
    card = {"metrics": {"PrivateTest": {"n": 10, "accuracy": 0.6, "macro_f1": 0.5,
                                        "top2_accuracy": 0.8, "accuracy_ci": [0.5, 0.7]}},
            "members": {"members": [{"teacher": "models/teachers/a/face_sentiment.keras",
                                     "run_name": "a", "epochs": 8,
                                     "publictest_accuracy": 0.66,
                                     "compute": {"wall_hours": 0.1,
                                                 "process_cpu_hours": 0.2}}]}}
    metrics = card_metrics_table(card)
    assert metrics.loc["PrivateTest", "accuracy %"] == pytest.approx(60.0)
    assert metrics.loc["PrivateTest", "accuracy %_ci_high"] == pytest.approx(70.0)
    members = members_table(card, tmp_path)
    assert members.loc["a", "fine-tuned from"] == "base"
    assert members.loc["a", "epoch kept"] == "last"
    assert members.loc["a", "PublicTest accuracy %"] == pytest.approx(66.0)
