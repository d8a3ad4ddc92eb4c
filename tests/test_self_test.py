"""The start-up self-test (face_sentiment.live.self_test) and the emulated-Pi comparison.

A runtime that computes the model wrongly is simulated by wrapping the interpreter the
classifier opens with its default kernels so that its outputs come back scrambled; the built-in
kernels stay right (the qemu `max` case), or are scrambled too (a machine to refuse).
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
from helpers import ROOT

from face_sentiment.live import classifier as classifier_module
from face_sentiment.live.classifier import ExpressionClassifier, write_self_test
from face_sentiment.live.self_test import (
    REFERENCE_COUNT,
    TOLERANCE_STEPS,
    reference_faces,
)
from face_sentiment.model_card import ModelCard, ModelFileError

# The tests on int8_model are marked tensorflow: the tiny test model is built with it.


def test_reference_faces_are_fixed_patterns():
    faces = reference_faces(48)
    assert faces.shape == (REFERENCE_COUNT, 48, 48) and faces.dtype == np.uint8
    assert np.array_equal(faces, reference_faces(48))
    assert not np.array_equal(faces, reference_faces(48, seed=1))
    assert faces.std() > 40  # contrast the network responds to, not a flat grey
    assert reference_faces(64, count=3).shape == (3, 64, 64)


class Scrambled:
    """An interpreter whose output tensor comes back as confident garbage: all of the
    probability on the class after the real top one."""

    def __init__(self, interpreter):
        self._interpreter = interpreter
        self._output = interpreter.get_output_details()[0]["index"]

    def __getattr__(self, name):
        return getattr(self._interpreter, name)

    def get_tensor(self, index):
        values = self._interpreter.get_tensor(index)
        if index != self._output:
            return values
        info = np.iinfo(values.dtype)
        garbage = np.full_like(values, info.min)
        wrong = (values.argmax(-1) + 1) % values.shape[-1]
        garbage[np.arange(len(values)), wrong] = info.max
        return garbage


def scramble(monkeypatch, kernels: set[str]) -> None:
    real = classifier_module.load_interpreter

    def load(*args, kernels_used: set[str] = kernels, **kwargs):
        interpreter = real(*args, **kwargs)
        return Scrambled(interpreter) if kwargs.get("kernels") in kernels_used else interpreter

    monkeypatch.setattr(classifier_module, "load_interpreter", load)


@pytest.mark.tensorflow
def test_the_dev_models_card_carries_reference_outputs(int8_model):
    entry = ModelCard.beside(int8_model)["self_test"]
    assert len(entry["outputs"]) == entry["count"] == REFERENCE_COUNT
    scale = ExpressionClassifier(int8_model, self_test=False)._output["quantization"][0]
    assert entry["tolerance"] == pytest.approx(TOLERANCE_STEPS * scale, abs=1e-6)
    classifier = ExpressionClassifier(int8_model)
    assert classifier.self_test.status == "passed" and classifier.kernels == "default"


@pytest.mark.tensorflow
def test_a_miscomputing_delegate_falls_back_to_the_builtin_kernels(int8_model, monkeypatch,
                                                                    caplog):
    faces = reference_faces(48, count=5, seed=7)
    expected = ExpressionClassifier(int8_model).predict(faces)
    scramble(monkeypatch, {"default"})
    with caplog.at_level("WARNING"):
        classifier = ExpressionClassifier(int8_model)
    assert classifier.self_test.status == "fell back"
    assert classifier.kernels == "builtin"
    assert "built-in kernels" in caplog.text and int8_model.name in caplog.text
    np.testing.assert_allclose(classifier.predict(faces), expected, atol=0.05)


@pytest.mark.tensorflow
def test_a_machine_where_both_kernels_miscompute_is_refused(int8_model, monkeypatch):
    scramble(monkeypatch, {"default", "builtin"})
    with pytest.raises(ModelFileError, match="self-test failed.*computes the model wrongly"):
        ExpressionClassifier(int8_model)


@pytest.mark.tensorflow
def test_cards_without_matching_reference_outputs_skip_the_test(int8_model, tmp_path):
    card = json.loads(int8_model.with_name("model_card.json").read_text())
    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copy(int8_model, folder)
    (folder / "model_card.json").write_text(
        json.dumps({k: v for k, v in card.items() if k != "self_test"}))
    result = ExpressionClassifier(folder / int8_model.name).self_test
    assert result.status == "skipped" and "no reference outputs" in result.reason
    card["self_test"]["model_sha256"] = "0" * 64
    (folder / "model_card.json").write_text(json.dumps(card))
    result = ExpressionClassifier(folder / int8_model.name).self_test
    assert result.status == "skipped" and "another model file" in result.reason
    write_self_test(folder / int8_model.name)  # what ship and ensemble builds call
    assert ExpressionClassifier(folder / int8_model.name).self_test.status == "passed"


@pytest.mark.real_data  # the shipped model
def test_the_shipped_model_passes_its_self_test_here():
    model = ROOT / "models" / "face_sentiment_int8.tflite"
    classifier = ExpressionClassifier(model, verify=False)
    assert classifier.self_test.status == "passed", classifier.self_test.describe()


# ------------------------------------------------------------------------------------------
# pi/tools/emulated_check.py: the host-versus-Pi comparison of `make pi-emulated`

def _emulated_check():
    spec = importlib.util.spec_from_file_location("emulated_check",
                                                  ROOT / "pi" / "tools" / "emulated_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(frame: int, faces: list[tuple[list[float], list[float]]]) -> str:
    classes = ["angry", "happy", "neutral"]
    return json.dumps({"frame": frame, "faces": [
        {"box": box, "probabilities": dict(zip(classes, p, strict=True))} for box, p in faces]})


def test_video_faces_are_matched_by_frame_and_box(tmp_path):
    check = _emulated_check()
    host = tmp_path / "host.jsonl"
    other = tmp_path / "other.jsonl"
    a, b = [0, 0, 10, 10], [50, 50, 70, 70]
    host.write_text(_record(0, [(a, [0.1, 0.8, 0.1]), (b, [0.6, 0.2, 0.2])]) + "\n"
                    + _record(1, [(a, [0.1, 0.7, 0.2])]) + "\n")
    # listed in another order, one box moved a little, one face not found on frame 1
    other.write_text(_record(0, [([51, 50, 71, 70], [0.58, 0.22, 0.2]), (a, [0.1, 0.8, 0.1])])
                     + "\n" + _record(1, []) + "\n")
    host_p, other_p, unmatched = check.matched_faces(check.read_frames(host),
                                                     check.read_frames(other))
    assert unmatched == 1 and host_p.shape == (2, 3)
    found = check.agreement(host_p, other_p, tolerance=0.05)
    assert found["same"] == 1.0 and found["decided"] == 2
    assert found["difference"] == pytest.approx(0.02, abs=1e-6)


def test_near_ties_do_not_count_as_disagreement():
    check = _emulated_check()
    host = np.array([[0.50, 0.48, 0.02], [0.9, 0.05, 0.05]], np.float32)
    other = np.array([[0.48, 0.50, 0.02], [0.9, 0.05, 0.05]], np.float32)
    found = check.agreement(host, other, tolerance=0.05)
    assert found["same"] == 0.5 and found["decided"] == 1 and found["same_decided"] == 1.0


def test_comparisons_fail_on_disagreement(tmp_path, capsys):
    check = _emulated_check()
    labels = np.zeros(100, int)
    host = np.tile([0.9, 0.05, 0.05], (100, 1)).astype(np.float32)
    wrong = host.copy()
    wrong[:2] = [0.05, 0.9, 0.05]  # 98% agreement: below the 99% the check asks for
    for name, probabilities in (("host", host), ("wrong", wrong)):
        np.savez(tmp_path / f"{name}.npz", probabilities=probabilities, labels=labels,
                 self_test="self-test passed", kernels="default", tolerance=0.05)
    assert check.compare_faces(tmp_path / "host.npz", tmp_path / "host.npz", "same") == 0
    assert check.compare_faces(tmp_path / "host.npz", tmp_path / "wrong.npz", "wrong") == 1
    assert "agrees on 98.0% of the 100 faces the host decided" in capsys.readouterr().out
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(SystemExit, match="bad.jsonl line 1: not JSON"):
        check.read_frames(tmp_path / "bad.jsonl")
