"""Camera-domain augmentation (face_sentiment.model.camera): off means the cache's preprocessed
faces exactly, on means degraded raw faces normalised like inference inputs, and a run trains
with it."""

import json

import numpy as np
import pandas as pd
import pytest

# Camera augmentation is a TensorFlow input map: its tests are marked; the robustness command's
# argument check is not.


def _faces(count=6, seed=0):
    """Textured 48x48 uint8 faces: a smooth gradient with a random pattern on top."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 200, 48)[None, :] + np.linspace(-20, 20, 48)[:, None]
    return np.clip(ramp + rng.normal(0, 25, (count, 48, 48)), 0, 255).astype(np.uint8)


def _batch(apply, faces):
    import tensorflow as tf

    return np.asarray(apply(tf.constant(faces), tf.constant(np.zeros(len(faces))))[0])


@pytest.mark.tensorflow
def test_rate_zero_gives_exactly_the_preprocessed_faces():
    from face_sentiment.model.camera import training_map
    from face_sentiment.preprocessing import PreprocessingSpec, preprocess_faces

    faces = _faces()
    for method in ("standardize", "scale"):
        spec = PreprocessingSpec(method=method)
        np.testing.assert_allclose(_batch(training_map(spec, 0.0), faces),
                                   preprocess_faces(faces, spec), atol=1e-5)


@pytest.mark.tensorflow
def test_degradations_are_the_robustness_curves_own_and_repeat_with_the_seed():
    from face_sentiment.degradations import blur, jpeg
    from face_sentiment.evaluation import robustness
    from face_sentiment.model.camera import CAMERA_DEGRADATIONS, degrade_faces

    assert robustness.PERTURBATIONS["blur"][0] is blur  # one definition of each
    assert robustness.PERTURBATIONS["jpeg"][0] is jpeg
    assert {name for name, _ in CAMERA_DEGRADATIONS} <= {
        function.__name__ for function, _, _ in robustness.PERTURBATIONS.values()}
    faces = _faces(8)
    first = degrade_faces(faces, 0.5, np.random.default_rng(7))
    np.testing.assert_array_equal(first, degrade_faces(faces, 0.5, np.random.default_rng(7)))
    np.testing.assert_array_equal(degrade_faces(faces, 0.0, np.random.default_rng(7)), faces)
    only_blur = degrade_faces(faces, 1.0, np.random.default_rng(1))
    assert not np.array_equal(only_blur, faces) and only_blur.dtype == np.uint8


@pytest.mark.tensorflow
def test_degraded_faces_change_and_are_normalised_for_the_model():
    from face_sentiment.model.camera import degraded_examples, training_map
    from face_sentiment.preprocessing import PreprocessingSpec

    faces = _faces(4)
    degraded = degraded_examples(faces, variants=5, rate=1.0, seed=3)
    assert degraded.shape == (4, 5, 48, 48) and degraded.dtype == np.uint8
    differences = np.abs(degraded.astype(int) - faces[:, None].astype(int)).mean(axis=(2, 3))
    assert (differences > 1.0).all()  # every copy was degraded
    assert len({v.tobytes() for v in degraded[0]}) == 5  # and each differently
    # detail (mean horizontal gradient) drops: resolution, blur and JPEG remove it
    detail = np.abs(np.diff(faces.astype(int), axis=2)).mean()
    assert np.abs(np.diff(degraded.astype(int), axis=3)).mean() < detail
    inputs = _batch(training_map(PreprocessingSpec(), 1.0, seed=0), faces)
    assert inputs.shape == (4, 48, 48, 1)
    np.testing.assert_allclose(inputs.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(inputs.std(axis=(1, 2, 3)), 1.0, atol=1e-3)


@pytest.mark.tensorflow
def test_camera_augmentation_is_checked(fer2013_csv, ferplus_csv):
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.model.training import TrainingConfig, train

    dataset = load_dataset(fer2013_csv, ferplus_csv)
    with pytest.raises(ValueError, match="probability"):
        train(dataset, TrainingConfig(camera_augmentation=1.5))
    with pytest.raises(ValueError, match="data: cache"):
        train(dataset, TrainingConfig(camera_augmentation=0.5, data="processed"))
    with pytest.raises(ValueError, match="no TensorFlow version"):
        train(dataset, TrainingConfig.from_dict({"camera_augmentation": 0.5,
                                                 "preprocessing": {"method": "clahe"}}))


@pytest.mark.slow
@pytest.mark.tensorflow
def test_a_run_trains_with_camera_augmentation(fer2013_csv, ferplus_csv, project_root):
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.model.export import load_trained
    from face_sentiment.model.training import TrainingConfig, train

    config = TrainingConfig(run_name="camera-toy", epochs=1, batch_size=2, warmup_epochs=0,
                            stem_filters=4, stage_filters=(8, 8, 8, 8), ema_momentum=0.9,
                            camera_augmentation=0.5)
    best = train(load_dataset(fer2013_csv, ferplus_csv), config)
    run = project_root / "runs" / "camera-toy"
    assert json.loads((run / "config.json").read_text())["camera_augmentation"] == 0.5
    assert load_trained(best).output_shape == (None, 7)
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 1 and np.isfinite(history["loss"]).all()


@pytest.mark.tensorflow
def test_robustness_command_prints_each_level_and_names_an_unknown_perturbation(
        capsys, fer2013_csv, monkeypatch, int8_model):
    from face_sentiment.cli import main

    monkeypatch.setenv("FER2013_PATH", str(fer2013_csv))
    assert main(["robustness", str(int8_model), "--perturbation", "jpeg"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PublicTest") and "jpeg" in out and "100.0" in out and "5.0" in out
    assert main(["robustness", str(int8_model), "--perturbation", "fog"]) == 2
    assert "unknown perturbation(s) fog" in capsys.readouterr().err


def test_the_robustness_command_names_an_unknown_perturbation_before_loading_anything(
        capsys, monkeypatch):
    from face_sentiment.cli import main
    from face_sentiment.data import cache
    from face_sentiment.evaluation.robustness import PERTURBATIONS

    def no_loading(*args, **kwargs):
        raise AssertionError("data loaded before the perturbations were checked")

    monkeypatch.setattr(cache, "load_dataset", no_loading)
    assert main(["robustness", "shipped", "--perturbation", "jpeg", "--perturbation", "fog",
                 "--perturbation", "rain"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"error: unknown perturbation(s) fog, rain; use "
                                 f"{', '.join(PERTURBATIONS)}\n")
