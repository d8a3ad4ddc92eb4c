"""Responsible AI: who the model works for, and why it says what it says.

- `bias_audit`: fairlearn per-group metrics, gap tests with bootstrap intervals and
  permutation p-values, FER2013's predicted demographics, and mitigation by reweighting.
- `explainability`: SHAP and Grad-CAM maps with sanity checks (randomised weights).
"""

from face_sentiment._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "audit": "bias_audit", "audit_models": "bias_audit", "report": "bias_audit",
    "shap_values": "explainability", "grad_cam": "explainability",
})
