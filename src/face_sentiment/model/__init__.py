"""The model: architecture, training and conversion to TFLite (imports TensorFlow).

- `architecture`: the expression CNN families (`register_family`, `create_model`, `build_model`),
  a model's card entry (`architecture_spec`) and its multiply-add count.
- `io`: the one Keras loader (`load_keras_model`) and a checkpoint's inference graph
  (`load_trained`).
- `augmentation`: training-time augmentation layers (inactive at inference and in exports).
- `camera`: camera-domain augmentation of the raw faces (resolution, blur, gamma, noise, JPEG).
- `config`: `TrainingConfig` (the profile's `training:` section; TensorFlow-free).
- `training`: the resumable `train`.
- `distillation`: the mixed hard-label / teacher loss (Hinton et al.) on packed targets.
- `ensemble_graph`: several trained networks averaged inside one graph (one-invoke export).
- `weight_averaging`: EMA weights with BatchNorm statistics recomputed for the average.
- `training_speed`: seconds per epoch under the CPU speed options.
- `export`: TFLite variants (float32, float16, dynamic, int8), each measured.
- `dev_model`: stand-in TFLite models for developing and testing the Pi runner.
- `plots`: the stage's figures: augmentation and camera degradation (notebook 03), a run's
  history (04), the TFLite variants' size, accuracy and latency (08).
Reads data from `face_sentiment.data`; nothing here imports evaluation or responsible.
"""

from face_sentiment._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "build_model": "architecture", "multiply_adds": "architecture",
    "create_model": "architecture", "register_family": "architecture",
    "architecture_spec": "architecture",
    "load_keras_model": "io", "load_trained": "io",
    "TrainingConfig": "config", "train": "training", "read_history": "training",
    "export_variants": "export", "benchmark_variants": "export",
    "export_dev_model": "dev_model",
    "DistillationLoss": "distillation", "pack_targets": "distillation",
    "averaged_model": "ensemble_graph",
    "degrade_faces": "camera", "plot_degraded": "plots",
})
