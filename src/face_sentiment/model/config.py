"""A profile's `training:` section as a dataclass (TensorFlow-free).

The CLI, the profiles' checks and the tests read and validate training settings without
importing TensorFlow; `face_sentiment.model.training`, which trains with them, re-exports
`TrainingConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from face_sentiment.preprocessing import PreprocessingSpec


@dataclass
class TrainingConfig:
    """A profile's `training` section. The defaults are profiles/full.yaml's values (a test
    holds them equal), so a partial dict or a bare TrainingConfig() means the full run."""

    run_name: str = "full-v3"
    label_set: str = "fer2013"
    # labels: one-hot of the label; votes: FER+'s vote distribution (Barsoum et al. 2016's
    # label-distribution training), label_set ferplus only.
    targets: str = "labels"
    epochs: int = 70
    batch_size: int = 128
    learning_rate: float = 2e-3
    warmup_epochs: int = 2
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    class_weighting: str = "sqrt"  # none | sqrt | balanced
    early_stopping_patience: int = 30
    dropout: float = 0.3
    # Polyak averaging of the weights (e.g. 0.999: about 1000 steps); PublicTest selection and
    # the saved checkpoints use the averaged weights. None: off.
    ema_momentum: float | None = 0.999
    stem_filters: int = 16
    stem_strides: int = 2
    stage_filters: tuple[int, ...] = (24, 48, 96, 192)
    # The network's family (face_sentiment.model.architecture): vgg or resnet, whose stages
    # hold blocks_per_stage residual blocks.
    family: str = "vgg"
    blocks_per_stage: int = 2
    seed: int = 1234
    # Bit-identical reruns; costs about 80% more time per epoch on CPU (measured: 185 vs 103 s).
    deterministic: bool = False
    # Distillation (face_sentiment.model.distillation): registry names or paths of the teachers,
    # their test-time augmentation, the temperature and the weight of the hard-label term.
    teachers: tuple[str, ...] = ()
    teacher_tta: str = "flip"
    distill_temperature: float = 2.0
    distill_alpha: float = 0.5
    # FER+ votes of the Training rows mixed into the FER2013 target with this weight (0: off;
    # label_set fer2013). Test rows' votes are never read (Fer2013Dataset.training_vote_mix).
    votes_weight: float = 0.0
    # Where the model inputs come from: cache (preprocess_faces on the cached faces) or
    # processed (TF Transform's output in data/processed/fer2013, `make processed`).
    data: str = "cache"
    # Camera-domain augmentation (face_sentiment.model.camera): each degradation (resolution,
    # blur, gamma, noise, JPEG) hits a raw training face with this probability before its
    # lighting is normalised. 0: off (the inputs are the cache's preprocessed faces).
    camera_augmentation: float = 0.0
    # Real photographs beside FER2013 (face_sentiment.data.photos): known photo sets whose
    # people are split into photo_folds folds by person; every fold but photo_holdout_fold
    # trains (that fold is what photo figures are reported on), its faces repeated so that
    # photographs make up photo_share of each epoch. (): FER2013 only.
    photo_sets: tuple[str, ...] = ()
    photo_share: float = 0.25
    # Class weighting of the photographs' own loss (none | sqrt | balanced), computed on their
    # labels alone: FER2013's faces keep class_weighting on theirs, so the photo sets' skew
    # (LFW: nine in ten neutral or happy) is corrected within their domain.
    photo_class_weighting: str = "sqrt"
    photo_folds: int = 3
    photo_holdout_fold: int = 0
    # Which epoch the run keeps: best (PublicTest accuracy, early stopping on it) or last (a
    # fixed schedule; fine-tuning on photographs, where PublicTest alone would pick the epoch
    # that learnt least from them).
    selection: str = "best"
    max_train_images: int | None = None  # the CI profile trains on a slice
    max_val_images: int | None = None
    # Fine-tuning: a .keras model (checkpoint or shipped inference model) of the same
    # architecture whose weights start the run instead of a random initialisation
    # (face_sentiment.pipeline's challenger starts from the champion). None: from scratch.
    init_model: str | None = None
    # An ensemble run trains nothing: its model is these trained .keras networks averaged in
    # one graph (face_sentiment.model.ensemble_graph), each also on the mirrored face when
    # member_tta is flip. The members' own recipes are in their cards.
    members: tuple[str, ...] = ()
    member_tta: str = "none"
    preprocessing: PreprocessingSpec = field(default_factory=PreprocessingSpec)

    @classmethod
    def from_dict(cls, values: dict) -> TrainingConfig:
        values = dict(values)
        if "preprocessing" in values:
            values["preprocessing"] = PreprocessingSpec.from_dict(values["preprocessing"])
        for name in ("stage_filters", "teachers", "members", "photo_sets"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def to_dict(self) -> dict:
        return {**asdict(self), "preprocessing": self.preprocessing.to_dict()}
