"""The feature store: FER2013, labelled batches and the runner's logs as Feast feature views.

- `store`: open the Feast repository (features/: definitions.py, feature_store.yaml; data in
  data/feature_store/), apply it, find a view's offline table; clear errors when not applied.
- `sources`: the offline parquet tables from the FER2013 cache, a labelled folder batch,
  label corrections and runner logs (one row per logged face; a damaged line is an error
  naming file and line).
- `retrieval`: materialization, the point-in-time training set (and the labels valid at a
  time, which retrain trains on), the online read per device.
- `windows`: the monitor's reference and current windows read back from the store.
- `command`: `face-sentiment features {apply,ingest,materialize,training-set,online}`.
Imports data and monitoring; nothing imports features but the CLI and the pipeline (retrain
reads its training labels from the store: `pipeline.feature_store`).
"""

from face_sentiment._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "open_store": "store", "apply": "store", "repo_dir": "store", "StoreError": "store",
    "fer2013_tables": "sources", "batch_tables": "sources", "log_tables": "sources",
    "write_tables": "sources", "FER2013_TIME": "sources", "FERPLUS_TIME": "sources",
    "label_corrections": "sources", "ingest_fer2013": "sources",
    "fer2013_ingested": "sources",
    "materialize": "retrieval", "training_set": "retrieval", "online_devices": "retrieval",
    "labels_as_of": "retrieval",
    "store_window": "windows", "window_records": "windows", "parse_selector": "windows",
})
