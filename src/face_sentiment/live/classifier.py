"""The exported expression model on a TFLite interpreter: model card, quantisation, batching.

The model travels with `model_card.json` (`classes`, `preprocessing`, `model_file`); the class
names and the preprocessing are read from it, never restated here, and the crops go through
`preprocessing.preprocess_faces`, the one definition training used. Float32 and int8 models are
both handled: inputs are quantised and outputs dequantised with the tensors' own parameters.
All faces of a frame run as one batch when the model's batch dimension is dynamic (the Keras
SavedModel export gives -1), one invoke per face otherwise. numpy, OpenCV and a TFLite
interpreter only: this runs on the Pi.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from face_sentiment.live.interpreter import load_interpreter
from face_sentiment.live.self_test import (
    REFERENCE_COUNT,
    REFERENCE_SEED,
    SelfTestResult,
    card_entry,
    file_sha256,
    largest_difference,
    reference_faces,
    tolerance_for,
    usable_entry,
)
from face_sentiment.model_card import ModelCard, ModelFileError
from face_sentiment.preprocessing import preprocess_faces

log = logging.getLogger(__name__)


class ExpressionClassifier:
    """Face crops -> class probabilities with the exported TFLite model.

    `self_test` (default on) checks the runtime against the card's reference outputs before
    the first face (live.self_test): `self.self_test` says what it found and `self.kernels`
    which kernels run the model."""

    def __init__(self, model_path: str | Path, card_path: str | Path | None = None,
                 num_threads: int | None = 1, verify: bool = True,
                 self_test: bool = True) -> None:
        self.model_path = Path(model_path)
        self.num_threads = num_threads
        # verify: a copied model can be truncated, and the runtime would crash on it.
        self._open("default", verify)
        self.card = ModelCard.load(card_path) if card_path else ModelCard.beside(self.model_path)
        shape = tuple(int(v) for v in self._input["shape"])
        size = self.card.preprocessing.size
        if len(shape) != 4 or shape[1:] != (size, size, 1):
            raise ModelFileError(
                f"{self.model_path}: input shape {shape} does not match the model card's "
                f"preprocessing size {size} (expected (N, {size}, {size}, 1))")
        outputs = int(self._output["shape"][-1])
        if outputs != len(self.card.classes):
            raise ModelFileError(
                f"{self.model_path}: {outputs} outputs but the model card names "
                f"{len(self.card.classes)} classes")
        self.self_test = (self._run_self_test() if self_test else
                          SelfTestResult("skipped", self.kernels, reason="not asked for"))

    def _open(self, kernels: str, verify: bool = False) -> None:
        self.interpreter = load_interpreter(self.model_path, self.num_threads, verify=verify,
                                            kernels=kernels)
        self.kernels = kernels
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        signature = self._input.get("shape_signature", self._input["shape"])
        self.dynamic_batch = int(signature[0]) == -1
        self._batch = int(self._input["shape"][0])

    def reference_outputs(self, count: int = REFERENCE_COUNT,
                          seed: int = REFERENCE_SEED) -> np.ndarray:
        """Probabilities on the self-test's reference faces (live.self_test)."""
        return self.predict(reference_faces(self.card.preprocessing.size, count, seed))

    def self_test_entry(self) -> dict:
        """The card's `self_test` object for this model, computed on the built-in kernels
        (the reference implementation; `make ship` and `dev_model` write it)."""
        if self.kernels != "builtin":
            self._open("builtin")
        return card_entry(self.reference_outputs(), file_sha256(self.model_path.read_bytes()),
                          tolerance_for(self._output))

    def _run_self_test(self) -> SelfTestResult:
        started = time.perf_counter()
        entry, why = usable_entry(self.card.values, file_sha256(self.model_path.read_bytes()))
        if entry is None:
            return SelfTestResult("skipped", self.kernels, reason=why)
        tolerance = float(entry["tolerance"])
        count, seed = int(entry["count"]), int(entry["seed"])
        first = largest_difference(self.reference_outputs(count, seed), entry)
        if first <= tolerance:
            return SelfTestResult("passed", self.kernels, first,
                                  ms=(time.perf_counter() - started) * 1000)
        self._open("builtin")
        second = largest_difference(self.reference_outputs(count, seed), entry)
        if second > tolerance:
            raise ModelFileError(
                f"{self.model_path}: start-up self-test failed: outputs on the reference inputs "
                f"differ from the model card's by {first:.3f} with the runtime's default "
                f"kernels and {second:.3f} with its built-in ones (tolerance {tolerance:.3f}); "
                "this runtime computes the model wrongly on this machine")
        result = SelfTestResult(
            "fell back", "builtin", second,
            f"the default kernels differed by {first:.3f} (tolerance {tolerance:.3f}) on this "
            "CPU; running on the built-in kernels, slower but right",
            (time.perf_counter() - started) * 1000)
        log.warning("%s: %s", self.model_path.name, result.describe())
        return result

    @property
    def classes(self) -> tuple[str, ...]:
        return self.card.classes

    @property
    def model_id(self) -> str:
        """The model card's fingerprint: the model id the runner's log names."""
        return self.card.fingerprint

    @property
    def input_dtype(self) -> str:
        return np.dtype(self._input["dtype"]).name

    def preprocess(self, crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """uint8 crops -> (N, S, S, 1) float32 model input, exactly as in training."""
        return preprocess_faces(crops, self.card.preprocessing)

    def predict(self, crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """(N, C) float32 probabilities for N uint8 face crops (N may be 0)."""
        return self.predict_inputs(self.preprocess(crops))

    def predict_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """(N, C) probabilities for already preprocessed (N, S, S, 1) float32 inputs."""
        count = len(inputs)
        if count == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        if self.dynamic_batch:
            return self._invoke(inputs)
        return np.concatenate([self._invoke(inputs[i:i + 1]) for i in range(count)])

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self._batch:
            shape = [len(batch), *self._input["shape"][1:]]
            self.interpreter.resize_tensor_input(self._input["index"], shape)
            self.interpreter.allocate_tensors()
            self._batch = len(batch)
        self.interpreter.set_tensor(self._input["index"], quantize(batch, self._input))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self._output["index"]), self._output)


def quantize(values: np.ndarray, detail: dict) -> np.ndarray:
    """Float inputs -> the tensor's dtype, with its own quantization parameters."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return values.astype(dtype, copy=False)
    scale, zero_point = detail["quantization"]
    if not scale:
        raise ModelFileError(f"integer input tensor {detail['name']!r} has no quantization scale")
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]).kind == "f":
        return values.astype(np.float32, copy=True)
    scale, zero_point = detail["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def write_self_test(model_path: str | Path) -> Path:
    """Add the start-up self-test's reference outputs for `model_path` to the card beside it;
    whatever writes a model and its card (`make ship`, ensemble builds, dev models) calls this
    last, once the file is final."""
    classifier = ExpressionClassifier(model_path, verify=False, self_test=False)
    values = {**classifier.card.values, "self_test": classifier.self_test_entry()}
    return ModelCard.from_dict(values, "model card").write(Path(model_path).parent)
