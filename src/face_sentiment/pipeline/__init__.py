"""Continual training and deployment: a new labelled batch -> validated -> a challenger
fine-tuned from the champion -> A/B-tested -> promoted into the model registry -> deployed.

- `incoming`: find batches in data/raw/incoming/, fingerprint them, split them by person,
  detect and align their faces once.
- `stages`: validate (TFDV, the committed contract), train, evaluate, decide, ship, each a
  function of one `RetrainContext`, and `retrain`, which runs them resumably
  (`face-sentiment retrain`).
- `promotion`: the promotion rule (a gain on the batch's held-out people, FER2013 PublicTest
  non-inferior within a margin, macro-F1 not lower).
- `record`: the per-batch state file and the decision record.
- `registry`: versioned models with their cards, the `current` pointer, rollback.
- `deploy`: deploy targets from a config file (a directory, or a Pi over rsync/scp).
- `triggers`: what starts a run: a new batch, a schedule, the monitor's drift verdict, and the
  Airflow DAG's branch.
- `continual`: the scheduled loop's one entry point (`make continual`, the workflow, Airflow).
The last stage: it may import every stage before it; nothing imports it but the CLI.
"""

from face_sentiment._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "batch_folders": "incoming", "batch_sha256": "incoming", "ingest": "incoming",
    "split_by_person": "incoming", "Batch": "incoming",
    "retrain": "stages", "RetrainSettings": "stages", "RetrainResult": "stages",
    "RetrainContext": "stages", "PromotionRule": "promotion",
    "BatchValidationError": "stages", "validate_batch": "stages",
    "RunState": "record", "decision_record": "record", "retrain_dir": "record",
    "Registry": "registry", "RegistryError": "registry", "Version": "registry",
    "deploy": "deploy", "load_targets": "deploy", "Target": "deploy", "DeployError": "deploy",
    "pending_batches": "triggers", "drift_action": "triggers", "choose_branch": "triggers",
})
