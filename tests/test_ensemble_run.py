"""Ensemble runs: a profile whose members are trained networks becomes one saved graph that
export, evaluate, ship and retrain treat like any run (face_sentiment.model.ensemble_graph)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers import tiny_keras_model

pytestmark = pytest.mark.tensorflow


def _member_folder(tmp_path, name: str, seed: int, **architecture):
    """A member as shipped beside a card: face_sentiment.keras, model_card.json, history."""
    folder = tmp_path / name
    folder.mkdir()
    tiny_keras_model(seed, augment=True, **architecture).save(folder / "face_sentiment.keras")
    (folder / "model_card.json").write_text(json.dumps(
        {"training": {"run_name": name, "epochs": 3, "teachers": ["fer"]}}))
    pd.DataFrame({"epoch": [0, 1, 2], "loss": [2.0, 1.5, 1.2], "accuracy": [0.3, 0.4, 0.5],
                  "val_loss": [1.9, 1.6, 1.4], "val_accuracy": [0.3, 0.35, 0.4 + seed / 100]}
                 ).to_csv(folder / "training_history.csv", index=False)
    return folder / "face_sentiment.keras"


@pytest.fixture
def ensemble_run(tmp_path, monkeypatch):
    from face_sentiment.model.training import TrainingConfig, train

    monkeypatch.setenv("FACE_SENTIMENT_ROOT", str(tmp_path / "project"))
    members = (_member_folder(tmp_path, "a", 1),  # two families: VGG and residual
               _member_folder(tmp_path, "b", 2, dropout=0.2, family="resnet", blocks_per_stage=1))
    config = TrainingConfig(run_name="ensemble-test", members=tuple(map(str, members)),
                            member_tta="flip")
    best = train(SimpleNamespace(data_hash="abc"), config)  # an ensemble trains nothing
    return best, members, config


def test_an_ensemble_run_saves_one_graph_that_averages_its_members(ensemble_run):
    import keras

    from face_sentiment.model.architecture import (
        describe,
        inference_copy,
        member_networks,
        multiply_adds,
        views_per_member,
    )
    from face_sentiment.model.ensemble_graph import member_weights
    from face_sentiment.model.export import load_trained

    best, members, _ = ensemble_run
    graph = load_trained(best)  # reloads with its Mirror layer; already an inference graph
    assert inference_copy(graph) is graph
    assert len(member_networks(graph)) == 2 and views_per_member(graph) == 2
    assert member_weights(graph) == pytest.approx([0.5, 0.5])
    faces = np.random.default_rng(0).normal(size=(8, 48, 48, 1)).astype(np.float32)
    singles = [inference_copy(keras.models.load_model(path, compile=False)) for path in members]
    expected = np.mean([net.predict(view, verbose=0) for net in singles
                        for view in (faces, faces[:, :, ::-1])], axis=0)
    np.testing.assert_allclose(graph.predict(faces, verbose=0), expected, atol=1e-6)
    assert multiply_adds(graph) == 2 * sum(multiply_adds(net) for net in singles)
    assert describe(graph).startswith("2 networks averaged in one graph")
    assert "VGG-style CNN" in describe(graph) and "residual CNN" in describe(graph)
    assert "dropout=0.2" in describe(graph) and "mirror image" in describe(graph)


def test_an_ensemble_run_records_its_members_hashes_cards_and_curves(ensemble_run):
    from face_sentiment.model.plots import plot_history
    from face_sentiment.model.training import read_history
    from face_sentiment.paths import file_sha256

    best, members, _ = ensemble_run
    config = json.loads((best.parent / "config.json").read_text())
    assert config["member_sha256"] == [file_sha256(path) for path in members]
    assert config["data_sha256"] == "abc"
    cards = json.loads((best.parent / "members.json").read_text())
    assert [card["card"]["training"]["run_name"] for card in cards] == ["a", "b"]
    history = read_history(best.parent / "history.csv")
    assert sorted(history["member"].unique()) == [0, 1] and len(history) == 6
    figure = plot_history(history)
    assert [len(ax.get_lines()) for ax in figure.axes] == [2, 2]  # one curve per member
    assert not list(best.parent.glob(".*"))  # no staging file left behind


def test_an_ensemble_profile_names_missing_members_and_unknown_views(tmp_path, monkeypatch):
    from face_sentiment.model.training import TrainingConfig, train

    monkeypatch.setenv("FACE_SENTIMENT_ROOT", str(tmp_path))
    data = SimpleNamespace(data_hash="abc")
    with pytest.raises(FileNotFoundError, match="nowhere.keras: ensemble member not found"):
        train(data, TrainingConfig(run_name="e", members=(str(tmp_path / "nowhere.keras"),)))
    member = _member_folder(tmp_path, "a", 1)
    with pytest.raises(ValueError, match="member_tta must be one of"):
        train(data, TrainingConfig(run_name="e", members=(str(member),), member_tta="crop10"))
    assert not (tmp_path / "runs" / "e" / "best.keras").exists()


def test_fine_tuning_an_ensemble_champion_tunes_each_member_and_keeps_the_views(
        ensemble_run, monkeypatch):
    """The continual-training challenger of an ensemble champion: every member fine-tuned from
    its own weights with its own architecture, averaged again with the same views."""
    from face_sentiment.model.architecture import (
        architecture_of,
        member_networks,
        views_per_member,
    )
    from face_sentiment.model.ensemble_graph import member_weights
    from face_sentiment.pipeline import stages

    best, _, config = ensemble_run
    calls = []

    def fake_train(mix, member_config):  # records what each member's fine-tune is given
        calls.append(member_config)
        return member_config.init_model

    monkeypatch.setattr("face_sentiment.model.training.train", fake_train)
    from face_sentiment.model.architecture import architecture_spec
    from face_sentiment.model.io import load_keras_model

    spec = architecture_spec(load_keras_model(best))
    # Each member's shape from the champion card's architecture_spec, and from its layer
    # names for an older card without one: the same fine-tunes either way.
    for card_spec in (spec, None):
        calls.clear()
        champion = SimpleNamespace(keras_file=best,
                                   card=SimpleNamespace(architecture_spec=card_spec))
        graph = stages.fine_tune_members(SimpleNamespace(data_hash="abc"), config, champion)
        assert [c.run_name for c in calls] == ["ensemble-test-member0", "ensemble-test-member1"]
        assert [c.dropout for c in calls] == [0.4, 0.2] and all(not c.members for c in calls)
        assert [(c.family, c.blocks_per_stage) for c in calls] == [("vgg", 2), ("resnet", 1)]
        assert views_per_member(graph) == 2
        assert member_weights(graph) == pytest.approx([0.5, 0.5])
        assert [architecture_of(m)["dropout"] for m in member_networks(graph)] == [0.4, 0.2]


def test_grad_cam_of_an_ensemble_is_its_members_maps_averaged(ensemble_run):
    from face_sentiment.model.architecture import member_networks
    from face_sentiment.model.export import load_trained
    from face_sentiment.responsible.explainability import grad_cam

    graph = load_trained(ensemble_run[0])
    faces = np.random.default_rng(1).normal(size=(3, 48, 48, 1)).astype(np.float32)
    classes = [0, 3, 6]
    expected = sum(0.5 * (grad_cam(m, faces, classes)
                          + grad_cam(m, faces[:, :, ::-1], classes)[:, :, ::-1]) / 2
                   for m in member_networks(graph))
    expected /= np.maximum(expected.max(axis=(1, 2), keepdims=True), 1e-12)
    np.testing.assert_allclose(grad_cam(graph, faces, classes), expected, atol=1e-6)


def test_penultimate_features_of_an_ensemble_are_its_members_features_side_by_side(
        ensemble_run):
    """The bias audit's head refit (notebook 06) on an ensemble graph: one softmax layer over
    every member's features, each averaged over the member's two views."""
    import keras

    from face_sentiment.model.architecture import member_networks
    from face_sentiment.model.export import load_trained
    from face_sentiment.preprocessing import PreprocessingSpec, preprocess_faces
    from face_sentiment.responsible.bias_audit import penultimate_features

    graph = load_trained(ensemble_run[0])
    faces = np.random.default_rng(2).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    spec = PreprocessingSpec()
    features = penultimate_features(SimpleNamespace(model=graph, spec=spec), faces)
    inputs = preprocess_faces(faces, spec)
    expected = []
    for member in member_networks(graph):
        head_input = keras.Model(member.inputs, member.layers[-1].input)
        expected.append((head_input.predict(inputs, verbose=0)
                         + head_input.predict(inputs[:, :, ::-1], verbose=0)) / 2)
    assert features.shape == (5, sum(e.shape[1] for e in expected))
    np.testing.assert_allclose(features, np.concatenate(expected, axis=1), atol=1e-5)
