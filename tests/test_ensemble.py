"""Ensembles: averaging agrees with the members' outputs, class mapping by name, multi-crop
TTA, the teachers' cached targets, and the one-graph TFLite export against its members."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import tiny_keras_model

from face_sentiment.evaluation.ensemble import (
    Ensemble,
    MultiCropAveraged,
    map_classes,
    teacher_targets,
    with_tta,
)
from face_sentiment.labels import FER2013_CLASSES, FERPLUS_CLASSES


class FixedPredictor:
    """Probabilities that depend on the face's mean brightness, so views differ."""

    def __init__(self, classes, seed):
        self.classes, self.name = tuple(classes), f"fixed{seed}"
        self.table = np.random.default_rng(seed).dirichlet(np.ones(len(classes)), 256)
        self.calls = 0

    def predict(self, faces):
        self.calls += 1
        return self.table[faces.reshape(len(faces), -1).mean(axis=1).astype(int)]


FACES = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)


def test_ensemble_is_the_weighted_mean_of_its_members():
    a, b = FixedPredictor(FER2013_CLASSES, 1), FixedPredictor(FER2013_CLASSES, 2)
    got = Ensemble([a, b], weights=[3, 1]).predict(FACES)
    np.testing.assert_allclose(got, 0.75 * a.predict(FACES) + 0.25 * b.predict(FACES),
                               rtol=1e-6)


def test_a_ferplus_member_is_mapped_by_name_and_renormalised():
    ferplus = FixedPredictor(FERPLUS_CLASSES, 3)
    raw = ferplus.predict(FACES)
    mapped = Ensemble([ferplus]).predict(FACES)
    np.testing.assert_allclose(mapped, raw[:, :7] / raw[:, :7].sum(1, keepdims=True), rtol=1e-5)
    shuffled = tuple(reversed(FER2013_CLASSES))
    np.testing.assert_allclose(map_classes(raw[:, :7][:, ::-1], shuffled, FER2013_CLASSES),
                               mapped, rtol=1e-5)
    with pytest.raises(ValueError, match="no class"):
        map_classes(raw, FERPLUS_CLASSES, FER2013_CLASSES + ("pride",))


def test_ensemble_rejects_bad_weights():
    with pytest.raises(ValueError, match="weight"):
        Ensemble([FixedPredictor(FER2013_CLASSES, 1)], weights=[1, 2])
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])


def test_multi_crop_views_and_average():
    inner = FixedPredictor(FER2013_CLASSES, 4)
    tta = MultiCropAveraged(inner, crops=10, crop_size=44)
    views = tta.views(FACES)
    assert len(views) == 10 and all(view.shape == FACES.shape for view in views)
    np.testing.assert_array_equal(views[5], views[0][:, :, ::-1])  # mirrors follow the crops
    expected = np.mean([inner.predict(view) for view in views], axis=0)
    np.testing.assert_allclose(tta.predict(FACES), expected)
    assert with_tta(inner, "crop5").crops == 5 and with_tta(inner, "none") is inner
    with pytest.raises(ValueError, match="tta"):
        with_tta(inner, "crop7")


def test_teacher_targets_are_cached_per_teacher(tmp_path, monkeypatch):
    from face_sentiment.evaluation import ensemble

    made = []

    def fake_load(reference):
        made.append(reference)
        return FixedPredictor(FER2013_CLASSES, len(reference))

    monkeypatch.setattr(ensemble, "load_predictor", fake_load)
    cache = tmp_path / "teacher_targets"
    first = teacher_targets(["fer", "fer-tflite"], FACES, cache, "hash", tta="flip")
    assert len(list(cache.glob("*.npz"))) == 2 and made == ["fer", "fer-tflite"]
    again = teacher_targets(["fer", "fer-tflite"], FACES, cache, "hash", tta="flip")
    np.testing.assert_array_equal(first, again)
    assert len(made) == 2  # read from the cache
    teacher_targets(["fer-tflite", "fer@crop5"], FACES, cache, "hash", tta="flip")
    assert made[2:] == ["fer"]  # only the new teacher (fer under crop5) is computed
    teacher_targets(["fer"], FACES, cache, "other-data", tta="flip")
    assert made[3:] == ["fer"]  # other data, other key
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-5)
    mirrored = FACES[:, :, ::-1]
    expected = np.mean([(teacher.predict(FACES) + teacher.predict(mirrored)) / 2 for teacher in
                        (FixedPredictor(FER2013_CLASSES, 3), FixedPredictor(FER2013_CLASSES, 10))],
                       axis=0)
    np.testing.assert_allclose(first, expected, rtol=1e-5)


@pytest.mark.tensorflow
@pytest.mark.slow
def test_one_graph_export_agrees_with_averaging_the_members(tmp_path):
    from face_sentiment.live.interpreter import load_interpreter
    from face_sentiment.model.ensemble_graph import averaged_model
    from face_sentiment.model.export import convert, representative_dataset

    members = [tiny_keras_model(seed) for seed in (1, 2, 3)]
    inputs = np.random.default_rng(5).normal(size=(16, 48, 48, 1)).astype(np.float32)
    mirrored = inputs[:, :, ::-1]
    expected = np.mean([member.predict(view, verbose=0) for member in members
                        for view in (inputs, mirrored)], axis=0)
    graph = averaged_model(members, flip=True)
    np.testing.assert_allclose(graph.predict(inputs, verbose=0), expected, atol=1e-6)

    float_file = tmp_path / "ensemble.tflite"
    float_file.write_bytes(convert(graph, "float32"))
    int8_file = tmp_path / "ensemble_int8.tflite"
    int8_file.write_bytes(convert(graph, "int8", representative_dataset(inputs, count=16)))
    for path, tolerance in ((float_file, 1e-5), (int8_file, 0.05)):
        interpreter = load_interpreter(path, num_threads=1)
        detail_in = interpreter.get_input_details()[0]
        detail_out = interpreter.get_output_details()[0]
        outputs = []
        for face in inputs:
            x = face[None]
            if detail_in["dtype"] == np.int8:
                scale, zero = detail_in["quantization"]
                x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
            interpreter.set_tensor(detail_in["index"], x)
            interpreter.invoke()  # one invoke per face: every member runs inside
            y = interpreter.get_tensor(detail_out["index"])[0].astype(np.float32)
            if detail_out["dtype"] == np.int8:
                scale, zero = detail_out["quantization"]
                y = (y - zero) * scale
            outputs.append(y)
        np.testing.assert_allclose(np.array(outputs), expected, atol=tolerance)


@pytest.mark.tensorflow
def test_one_graph_ensemble_rejects_members_that_differ():
    from face_sentiment.model.ensemble_graph import averaged_model

    with pytest.raises(ValueError, match="share"):
        averaged_model([tiny_keras_model(1), tiny_keras_model(2, num_classes=8)])


def test_runs_per_face_count_members_and_views():
    from face_sentiment.evaluation.ensemble import score_ensemble, views_per_face

    a, b = FixedPredictor(FER2013_CLASSES, 1), FixedPredictor(FER2013_CLASSES, 2)
    assert views_per_face(with_tta(a, "crop10")) == 10
    assert views_per_face(with_tta(a, "flip")) == 2
    labels = np.zeros(len(FACES), int)
    table = score_ensemble(Ensemble([with_tta(a, "flip"), b]), FACES, labels, resamples=200)
    assert table["runs_per_face"].tolist() == [2, 1, 3]
    assert table.attrs["ab"].n == len(FACES)


def test_a_member_may_name_its_own_tta(monkeypatch):
    from face_sentiment.evaluation import ensemble

    assert ensemble.split_tta("runs/a/best.keras@crop10") == ("runs/a/best.keras", "crop10")
    assert ensemble.split_tta("fer", "flip") == ("fer", "flip")
    assert ensemble.split_tta("odd@name.keras") == ("odd@name.keras", "none")
    monkeypatch.setattr(ensemble, "load_predictor",
                        lambda reference: FixedPredictor(FER2013_CLASSES, len(reference)))
    built = ensemble.load_ensemble(["a@crop5", "b"], tta="flip")
    assert isinstance(built.members[0], MultiCropAveraged)
    assert built.members[1].name.endswith("+flip")


def test_the_cli_offers_the_tta_names_the_ensemble_knows():
    from face_sentiment.cli import TTA_CHOICES
    from face_sentiment.evaluation.ensemble import TTA_NAMES

    assert TTA_CHOICES == TTA_NAMES
