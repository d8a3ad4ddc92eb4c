"""Responsible AI: who the model works for, and why it says what it says.

- `bias_audit`: the audit (`audit_tables`, the CLI's `report`), importing every name of its
  parts: `groups` (fairlearn per-group metrics), `gaps` (gap tests with bootstrap intervals and
  permutation p-values), `inputs` (what an audit scores), `demographics` (FER2013's predicted
  demographics), `mitigation` (reweighted head refits) and `presentation` (reader tables).
- `explainability`: SHAP and Grad-CAM maps with sanity checks (randomised weights).
- `plots`: the stage's figures: a metric by group (notebook 06), SHAP and Grad-CAM maps (07).
"""

from face_sentiment._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "audit": "gaps", "audit_models": "gaps", "report": "bias_audit",
    "shap_values": "explainability", "grad_cam": "explainability",
})
