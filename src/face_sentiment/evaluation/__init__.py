"""Evaluation: every model the workbench compares, scored with intervals.

- `predictors`: the one model registry, `load_predictor(name)`: shipped, shipped-int8,
  shipped-<variant>[-int8], fer, fer-tflite or a path; flip test-time augmentation.
- `ensemble`: averaged models (flip / multi-crop TTA), their scores, the one-graph export,
  and the teachers' cached soft targets for distillation.
- `metrics`: FER2013 metrics with TFMA, calibration, slices.
- `ab_testing`: A/B comparison of two models and the promotion rule (its statistics, like
  every stage's, come from the top-level `face_sentiment.stats`).
- `cross_dataset`: scoring on labelled folder datasets through the Pi's detector and framing;
  held-out people and k-fold models of a photo split.
- `prior_shift`: EM re-estimation of class priors under label shift (a measurement).
- `robustness`: accuracy under controlled perturbations.
- `release`: from a training run to the shipped model (export, evaluate, ship the card).
- `plots`: the stage's figures: confusion matrices and the reliability diagram (notebook 05),
  other datasets' confusions, per-subject accuracy and the robustness curves (09).
"""

from face_sentiment._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Predictor": "predictors", "load_predictor": "predictors",
    "load_predictors": "predictors", "FlipAveraged": "predictors",
    "Ensemble": "ensemble", "load_ensemble": "ensemble", "teacher_targets": "ensemble",
    "MultiCropAveraged": "ensemble", "score_ensemble": "ensemble",
    "export_ensemble": "ensemble",
    "summary_metrics": "metrics", "plot_confusion": "plots",
    "plot_confusion_matrix": "plots",
    "compare": "ab_testing", "compare_pairs": "ab_testing",
    "bootstrap_difference": "ab_testing",
    "CrossValidatedModel": "cross_dataset", "held_out_subset": "cross_dataset",
    "estimate_priors": "prior_shift",
    "export_run": "release", "evaluate_run": "release", "ship": "release",
    "keep_run": "release",
})
