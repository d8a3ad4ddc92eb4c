"""Feast definitions of the face_sentiment feature store: entities, sources, feature views.

Only definitions live in this folder (`feast apply` imports every .py in it). The offline
tables are parquet files under data/feature_store/offline/, paths relative to this folder
(Feast resolves them against the repository folder, so the store moves with the project);
`face-sentiment features ingest` writes them (face_sentiment.features.sources), which also
defines their columns.

- A dataset image: entities `dataset` x `image` (join keys `dataset`, `image_id`: the row
  index in the canonical FER2013 cache, or in a labelled batch's labels.csv). FER2013 rows
  carry one fixed event timestamp (the challenge's release, 2013-07-01 UTC), FER+ votes the
  FER+ release (2016-08-01 UTC), a labelled batch its labelling time; a corrected label is a
  new row with a later timestamp, so a point-in-time join returns the label valid then.
- A live face: entities `device` x `track` (join keys `device_id`, `track_id`: the runner's
  $FACE_SENTIMENT_DEVICE and tracker id), event timestamp the frame's capture time; and the
  device's latest frame (`live_frames`, keyed by device alone) for the online read.
"""

from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Bool, Float32, Float64, Int64, String

OFFLINE = "../data/feature_store/offline"
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
         "unknown", "nf")
NO_TTL = timedelta(0)  # an image's features do not expire
LIVE_TTL = timedelta(hours=1)  # a face not seen for an hour has no current features

dataset = Entity(name="dataset", join_keys=["dataset"], value_type=ValueType.STRING,
                 description="the dataset an image belongs to: fer2013 or a labelled batch")
image = Entity(name="image", join_keys=["image_id"], value_type=ValueType.INT64,
               description="row of the image in its dataset (FER2013: the canonical cache)")
device = Entity(name="device", join_keys=["device_id"], value_type=ValueType.STRING,
                description="the runner's device id ($FACE_SENTIMENT_DEVICE or host name)")
track = Entity(name="track", join_keys=["track_id"], value_type=ValueType.INT64,
               description="the runner's tracker id of a face (-1: not tracked)")


def _source(name: str) -> FileSource:
    return FileSource(name=name, path=f"{OFFLINE}/{name}.parquet",
                      timestamp_field="event_timestamp", created_timestamp_column="created")


image_quality = FeatureView(
    name="image_quality", entities=[dataset, image], ttl=NO_TTL,
    schema=[Field(name="dataset", dtype=String), Field(name="image_id", dtype=Int64),
            Field(name="brightness", dtype=Float32), Field(name="contrast", dtype=Float32),
            Field(name="sharpness", dtype=Float32), Field(name="clipped_fraction", dtype=Float64),
            Field(name="near_blank", dtype=Bool)],
    source=_source("image_quality"),
    description="face_sentiment.quality features of the 48x48 face crop")

image_labels = FeatureView(
    name="image_labels", entities=[dataset, image], ttl=NO_TTL,
    schema=[Field(name="dataset", dtype=String), Field(name="image_id", dtype=Int64),
            Field(name="label", dtype=String), Field(name="label_index", dtype=Int64)],
    source=_source("image_labels"),
    description="expression label (FER2013 class name and index); corrections are later rows")

ferplus_votes = FeatureView(
    name="ferplus_votes", entities=[dataset, image], ttl=NO_TTL,
    schema=[Field(name="dataset", dtype=String), Field(name="image_id", dtype=Int64),
            *[Field(name=f"votes_{name}", dtype=Int64) for name in VOTES],
            Field(name="ferplus_label", dtype=String)],
    source=_source("ferplus_votes"),
    description="FER+ annotators' votes (ten per image) and majority label ('' if none)")

image_split = FeatureView(
    name="image_split", entities=[dataset, image], ttl=NO_TTL,
    schema=[Field(name="dataset", dtype=String), Field(name="image_id", dtype=Int64),
            Field(name="split", dtype=String)],
    source=_source("image_split"),
    description="Training / PublicTest / PrivateTest (a batch: the split it was ingested to)")

live_faces = FeatureView(
    name="live_faces", entities=[device, track], ttl=LIVE_TTL,
    schema=[Field(name="device_id", dtype=String), Field(name="track_id", dtype=Int64),
            Field(name="brightness", dtype=Float64), Field(name="contrast", dtype=Float64),
            Field(name="sharpness", dtype=Float64), Field(name="clipped_fraction", dtype=Float64),
            Field(name="face_px", dtype=Float64), Field(name="eye_angle", dtype=Float64),
            Field(name="score", dtype=Float64), Field(name="top", dtype=String),
            Field(name="top_confidence", dtype=Float64), Field(name="entropy", dtype=Float64),
            Field(name="label", dtype=String),
            *[Field(name=f"p_{name}", dtype=Float64) for name in CLASSES],
            Field(name="model_id", dtype=String)],
    source=_source("live_faces"),
    description="one logged face of the Pi runner: crop quality, size, detector score, "
                "raw probabilities, smoothed label, model id")

live_frames = FeatureView(
    name="live_frames", entities=[device], ttl=LIVE_TTL,
    schema=[Field(name="device_id", dtype=String), Field(name="frame", dtype=Int64),
            Field(name="source", dtype=String), Field(name="faces", dtype=Int64),
            Field(name="track_ids", dtype=Array(Int64)), Field(name="model_id", dtype=String)],
    source=_source("live_frames"),
    description="a device's logged frame: faces in view, their track ids, model id")
