"""Test-time correction for label shift: a new room's class priors, re-estimated by EM.

A model's probabilities carry the class balance of the data it was fitted to. A lab's room or a
photo folder has another balance (news photos: half neutral, a third happy; FER2013: a quarter
happy and few neutral), and Bayes' rule says how posteriors move when only the priors change:
p'(y|x) is proportional to p(y|x) * pi'(y) / pi(y). Saerens, Latinne & Decaestecker (2002,
"Adjusting the outputs of a classifier to new a priori probabilities", Neural Computation 14)
estimate the unknown pi' from unlabelled faces by EM: posteriors under the current guess, then
the guess as their mean, until it stops moving. The model's own prior pi is the mean of its
probabilities on data of the kind it was selected on (FER2013 PublicTest), which, unlike the
raw class counts, includes the effect of class weighting and label smoothing.

An opt-in measurement (`face-sentiment evaluate --dataset ... --adapt-priors`), kept only where
it helps on held-out people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PriorShift:
    """The result of `estimate_priors`: new priors, adjusted probabilities, iterations run."""

    priors: np.ndarray  # (C,)
    probabilities: np.ndarray  # (N, C), rows sum to 1
    iterations: int
    converged: bool


def reweight(probabilities: np.ndarray, source_priors: np.ndarray,
             target_priors: np.ndarray) -> np.ndarray:
    """Posteriors moved from `source_priors` to `target_priors` by Bayes' rule."""
    ratio = np.asarray(target_priors, float) / np.asarray(source_priors, float)
    weighted = np.asarray(probabilities, float) * ratio
    return weighted / weighted.sum(axis=1, keepdims=True)


def estimate_priors(probabilities: np.ndarray, source_priors: np.ndarray,
                    max_iterations: int = 100, tolerance: float = 1e-6,
                    floor: float = 1e-6) -> PriorShift:
    """Saerens et al.'s EM: the class priors of the faces behind `probabilities` (N, C), and
    their posteriors under those priors. `source_priors` are the priors the model's outputs
    assume; `floor` keeps a class the EM drives to zero recoverable."""
    probabilities = np.asarray(probabilities, float)
    source = np.asarray(source_priors, float)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(source):
        raise ValueError(f"probabilities {probabilities.shape} do not match "
                         f"{len(source)} source priors")
    if len(probabilities) == 0:
        raise ValueError("no faces to estimate priors from")
    if (source <= 0).any() or not np.isclose(source.sum(), 1.0, atol=1e-4):
        raise ValueError(f"source priors must be positive and sum to 1, got {source}")
    priors = source.copy()
    adjusted = probabilities
    for iteration in range(1, max_iterations + 1):
        adjusted = reweight(probabilities, source, priors)
        updated = np.maximum(adjusted.mean(axis=0), floor)
        updated /= updated.sum()
        moved = float(np.abs(updated - priors).max())
        priors = updated
        if moved < tolerance:
            return PriorShift(priors, reweight(probabilities, source, priors), iteration, True)
    return PriorShift(priors, reweight(probabilities, source, priors), max_iterations, False)
