"""The model: architecture, training and conversion to TFLite (imports TensorFlow).

- `architecture`: the VGG-style expression CNN (`build_model`) and its multiply-add count.
- `augmentation`: training-time augmentation layers (inactive at inference and in exports).
- `camera`: camera-domain augmentation of the raw faces (resolution, blur, gamma, noise, JPEG).
- `training`: `TrainingConfig` (the profile's `training:` section) and the resumable `train`.
- `distillation`: the mixed hard-label / teacher loss (Hinton et al.) on packed targets.
- `ensemble_graph`: several trained networks averaged inside one graph (one-invoke export).
- `weight_averaging`: EMA weights with BatchNorm statistics recomputed for the average.
- `training_speed`: seconds per epoch under the CPU speed options.
- `export`: TFLite variants (float32, float16, dynamic, int8), each measured.
- `dev_model`: stand-in TFLite models for developing and testing the Pi runner.
Reads data from `face_sentiment.data`; nothing here imports evaluation or responsible.
"""

from face_sentiment._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "build_model": "architecture", "multiply_adds": "architecture",
    "TrainingConfig": "training", "train": "training", "read_history": "training",
    "load_trained": "export", "export_variants": "export", "benchmark_variants": "export",
    "export_dev_model": "dev_model",
    "DistillationLoss": "distillation", "pack_targets": "distillation",
    "averaged_model": "ensemble_graph",
    "degrade_faces": "camera", "plot_degraded": "camera",
})
