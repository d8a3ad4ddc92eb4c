"""EM re-estimation of class priors under label shift (face_sentiment.evaluation.prior_shift),
against a case solved by hand."""

from __future__ import annotations

import numpy as np
import pytest

from face_sentiment.evaluation.prior_shift import estimate_priors, reweight


def test_em_finds_the_hand_computed_priors():
    # Two kinds of faces under source priors (1/2, 1/2): kind A has posterior (0.8, 0.2), so a
    # likelihood ratio of 4 for class 0; kind B (0.2, 0.8), ratio 1/4. With 7 A and 3 B the
    # likelihood of the prior p of class 0 is 0.7 log(1 + 3p) + 0.3 log(1 - 0.75 p), whose
    # maximum solves 2.1 (1 - 0.75 p) = 0.225 (1 + 3 p): p = 1.875 / 2.25 = 5/6.
    probabilities = np.array([[0.8, 0.2]] * 7 + [[0.2, 0.8]] * 3)
    shift = estimate_priors(probabilities, np.array([0.5, 0.5]), tolerance=1e-10,
                            max_iterations=10_000)
    assert shift.converged
    assert shift.priors == pytest.approx([5 / 6, 1 / 6], abs=1e-6)
    # A face of kind A under those priors: 0.8 * 5/3 / (0.8 * 5/3 + 0.2 * 1/3) = 20/21.
    assert shift.probabilities[0] == pytest.approx([20 / 21, 1 / 21], abs=1e-6)
    # A face of kind B: 0.2 * 5/3 against 0.8 * 1/3, that is 5/9 against 4/9.
    assert shift.probabilities[-1] == pytest.approx([5 / 9, 4 / 9], abs=1e-6)


def test_unchanged_priors_leave_the_probabilities_alone():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(7), 50)
    source = probabilities.mean(axis=0)  # the faces already have the model's priors
    shift = estimate_priors(probabilities, source)
    assert shift.converged and shift.iterations == 1
    assert np.allclose(shift.probabilities, probabilities)
    assert np.allclose(reweight(probabilities, source, source), probabilities)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="do not match 3 source priors"):
        estimate_priors(np.ones((4, 2)) / 2, np.ones(3) / 3)
    with pytest.raises(ValueError, match="sum to 1"):
        estimate_priors(np.ones((4, 2)) / 2, np.array([0.7, 0.7]))
    with pytest.raises(ValueError, match="no faces"):
        estimate_priors(np.zeros((0, 2)), np.array([0.5, 0.5]))
