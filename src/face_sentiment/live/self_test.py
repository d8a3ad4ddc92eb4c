"""Start-up self-test: the model on a few built-in reference inputs, against the card's outputs.

A TFLite runtime can compute a model wrongly on a CPU nobody tested and still return confident
probabilities: under qemu's `max` CPU model, LiteRT's XNNPACK path gave 15.7% accuracy on
FER2013 PrivateTest faces (69.0% on x86) while its built-in kernels stayed right. So the card
written with the model (`make ship`, `dev_model`) carries its int8 outputs on REFERENCE_COUNT
inputs made here from a seed (integer arithmetic only: the same bytes on every platform; no
image from any dataset), computed with the runtime's built-in kernels, and every
`ExpressionClassifier` (runner, `predict`, the API) runs them before its first face. Outputs
within `tolerance` of the card's pass; otherwise the classifier is reopened on the built-in
kernels and checked again (one warning line), and if those disagree too it refuses to start.
A card without reference outputs, or whose outputs are for another file, skips the test.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

REFERENCE_COUNT = 8
REFERENCE_SEED = 20261206
# Output steps of an int8 softmax (1/256 each) allowed between two right computations: on x86,
# XNNPACK and the built-in kernels differ by up to 5 steps on 600 PrivateTest faces (the
# ensemble graph requantises between its members), a miscomputing path by tenths.
TOLERANCE_STEPS = 12
FLOAT_TOLERANCE = 0.01  # float32 models: probabilities, absolute


def reference_faces(size: int, count: int = REFERENCE_COUNT,
                    seed: int = REFERENCE_SEED) -> np.ndarray:
    """(count, size, size) uint8 test patterns: coarse random blocks (contrast the network
    responds to) plus fine noise, from numpy's PCG64 stream, which is the same everywhere."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, 6, 6), dtype=np.int32)
    cells = np.arange(size) * 6 // size
    blocks = coarse[:, cells][:, :, cells]
    noise = rng.integers(-24, 25, (count, size, size), dtype=np.int32)
    return np.clip(blocks + noise, 0, 255).astype(np.uint8)


def file_sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def tolerance_for(output_detail: dict) -> float:
    """The allowed absolute difference of one output: TOLERANCE_STEPS quantisation steps of an
    integer output tensor, FLOAT_TOLERANCE for a float one."""
    scale = (output_detail.get("quantization") or (0.0, 0))[0]
    return TOLERANCE_STEPS * float(scale) if scale else FLOAT_TOLERANCE


def card_entry(probabilities: np.ndarray, model_sha256: str, tolerance: float) -> dict:
    """The card's `self_test` object for a model's outputs on `reference_faces`."""
    return {"seed": REFERENCE_SEED, "count": int(len(probabilities)),
            "model_sha256": model_sha256, "tolerance": round(float(tolerance), 6),
            "outputs": np.round(probabilities.astype(float), 6).tolist()}


@dataclass(frozen=True)
class SelfTestResult:
    """What the start-up check found: status is 'passed', 'fell back' or 'skipped'."""

    status: str
    kernels: str  # 'default' (the runtime's delegate, XNNPACK on LiteRT) or 'builtin'
    difference: float | None = None
    reason: str = ""
    ms: float = 0.0  # what the check cost at start

    def describe(self) -> str:
        if self.status == "skipped":
            return f"self-test skipped ({self.reason})"
        text = (f"self-test {self.status} in {self.ms:.0f} ms: largest difference "
                f"{self.difference:.4f}")
        return text + (f" ({self.reason})" if self.reason else "")


def largest_difference(probabilities: np.ndarray, expected: dict) -> float:
    reference = np.asarray(expected["outputs"], np.float32)
    if probabilities.shape != reference.shape:
        return float("inf")
    return float(np.max(np.abs(probabilities - reference)))


def usable_entry(card_values: dict, model_sha256: str) -> tuple[dict | None, str]:
    """The card's `self_test` entry if it describes this model file, else (None, why not)."""
    entry = card_values.get("self_test")
    if not isinstance(entry, dict) or "outputs" not in entry:
        return None, "the model card has no reference outputs"
    if entry.get("model_sha256") != model_sha256:
        return None, "the card's reference outputs are for another model file"
    return entry, ""
