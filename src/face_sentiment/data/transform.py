"""TF Transform: a dataset's faces -> `data/processed/<dataset>/`, one Beam pipeline.

Writes TFRecords of `tf.Example` per split (the preprocessed 48x48 image, label, FER+ votes,
split, source id, cache row, quality features raw, z-scored and bucketed), the `transform_fn`
SavedModel, the transformed metadata and a manifest. Full-pass analyzers run on the rows that
define "normal" (FER2013 Training; all rows of a folder dataset): z-scores and quantile buckets of
the quality features, vocabularies of categorical attribute columns. The buckets are the
evaluation and bias-audit slices (`data.processed.quality_slices`), so every split is sliced by
the same Training boundaries instead of its own tertiles.

The image normalisation is `preprocessing.normalise_lighting_tf`, the numpy definition written
in TensorFlow ops beside it: the parity test holds the graph's output within 1e-5 of
`preprocess_faces` on every PrivateTest face. Equalisation methods (CLAHE, histeq) have no TF op
and are refused.

The pipeline reads its rows from .npy files in the staging folder in chunks (workers load them
memory-mapped instead of Beam pickling 35,887 images into the graph), writes everything into
the staging folder and swaps it into place only when complete; a manifest with the same key
means nothing is rerun. The staging folder (`.<name>-XXXXXXXX` beside the output, about 640 MB
for FER2013) is removed when the run fails, on SIGTERM and SIGINT (the process then exits 143 /
130), and, for a run killed outright (SIGKILL, a power cut), by the next run: each staging
folder names its owner's process, and one whose process is gone is stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.labels import FER2013_CLASSES, SPLITS
from face_sentiment.paths import data_dir, replace_dir, staging_dir
from face_sentiment.preprocessing import PreprocessingSpec, normalise_lighting_tf
from face_sentiment.quality import quality_arrays

TRANSFORM_VERSION = 1
QUALITY_NUMERIC = ("brightness", "contrast", "sharpness", "clipped_fraction")
BUCKETED = ("brightness", "contrast", "sharpness")
BUCKET_NAMES = ("low", "mid", "high")  # tft.bucketize ids 0, 1, 2
VOTES = 10  # FER+ columns: 8 emotions, unknown, not-a-face
CHUNK_ROWS = 2048
MANIFEST = "manifest.json"
TRANSFORM_FN = "transform_fn"
TRANSFORMED_METADATA = "transformed_metadata"
OWNER_FILE = ".owner.json"  # in a staging folder: the process building it
# A staging folder without an owner file younger than this may be a run that has just made it.
UNOWNED_GRACE_S = 600.0


@dataclass
class FaceTable:
    """What the pipeline reads: one row per face, arrays aligned."""

    name: str
    images: np.ndarray  # (N, S, S) uint8
    labels: np.ndarray  # (N,) int64, index into classes; -1 unlabelled
    classes: tuple[str, ...]
    splits: np.ndarray  # (N,) str
    source_ids: np.ndarray  # (N,) str
    rows: np.ndarray  # (N,) int64: the row in the source (cache row, labels.csv row)
    analyze: np.ndarray  # (N,) bool: rows the analyzers see
    data_hash: str
    votes: np.ndarray | None = None  # (N, 10) int64 FER+ votes (zeros where none)
    categorical: pd.DataFrame = field(default_factory=pd.DataFrame)  # string attributes

    def __post_init__(self) -> None:
        self.quality = pd.DataFrame(quality_arrays(self.images))[list(QUALITY_NUMERIC)]

    def subset(self, keep: np.ndarray) -> FaceTable:
        """These rows only (a quick run: a test, the CI profile's notebook). The subset's hash
        names its rows too, so its output never passes for the whole table's."""
        rows = self.rows[keep]
        subset_hash = hashlib.sha256(self.data_hash.encode() + rows.tobytes()).hexdigest()
        categorical = (self.categorical.iloc[keep].reset_index(drop=True)
                       if len(self.categorical.columns) else self.categorical)
        return FaceTable(
            name=self.name, images=self.images[keep], labels=self.labels[keep],
            classes=self.classes, splits=self.splits[keep], source_ids=self.source_ids[keep],
            rows=rows, analyze=self.analyze[keep], data_hash=subset_hash,
            votes=None if self.votes is None else self.votes[keep], categorical=categorical)

    def with_training_slice(self, images: int, seed: int = 0) -> FaceTable:
        """Every non-Training row plus a seeded slice of `images` Training rows."""
        training = np.flatnonzero(self.splits == "Training")
        chosen = np.random.default_rng(seed).choice(training, min(images, len(training)),
                                                    replace=False)
        return self.subset(np.sort(np.concatenate(
            [chosen, np.flatnonzero(self.splits != "Training")])))


def fer2013_table(dataset) -> FaceTable:
    """The canonical FER2013 cache; analyzers see Training only (no test statistics leak
    into the z-scores or bucket boundaries)."""
    votes = None if dataset.ferplus_votes is None else dataset.ferplus_votes.astype(np.int64)
    return FaceTable(
        name="fer2013", images=dataset.images, labels=dataset.labels.astype(np.int64),
        classes=FER2013_CLASSES, splits=np.asarray(SPLITS)[dataset.splits],
        source_ids=dataset.source_ids.astype(str), rows=np.arange(len(dataset.labels)),
        analyze=dataset.split_mask("Training"), data_hash=dataset.data_hash, votes=votes)


def folder_table(path: str | os.PathLike, detector: str = "blazeface-full") -> FaceTable:
    """A labelled folder dataset's faces (crops as they are, photos through the face module);
    photos without a detected face are left out (`rows` keeps their labels.csv rows)."""
    from face_sentiment.data.folder_dataset import dataset_faces, load_folder_dataset

    dataset = load_folder_dataset(path)
    crops = dataset_faces(dataset, detector)
    table = dataset.table[crops.found].reset_index()
    classes = tuple(c for c in FER2013_CLASSES if c in set(table["label"])) \
        if set(table["label"]) <= set(FER2013_CLASSES) else dataset.classes
    digest = hashlib.sha256()
    for image in dataset.images:
        digest.update(np.ascontiguousarray(image).tobytes())
    digest.update(dataset.table.to_csv(index=False).encode())
    categorical = table[[c for c in dataset.attributes if _is_categorical(table[c])]]
    return FaceTable(
        name=dataset.name, images=crops.faces,
        labels=np.array([classes.index(label) for label in table["label"]], np.int64),
        classes=classes, splits=np.full(len(table), "all"),
        source_ids=table["path"].to_numpy(str), rows=table["index"].to_numpy(np.int64),
        analyze=np.ones(len(table), bool), data_hash=digest.hexdigest(),
        categorical=categorical.reset_index(drop=True))


def _is_categorical(column: pd.Series, max_numeric_values: int = 50) -> bool:
    """Text columns (subject, gender, age group), and numeric-looking ones with few values
    (performer ids); not measurements such as age or rater entropy."""
    numeric = pd.to_numeric(column, errors="coerce")
    if column.nunique() < 2:
        return False
    return bool(numeric.isna().any()) or column.nunique() <= max_numeric_values \
        and not (numeric % 1).any()


def raw_feature_spec(table: FaceTable) -> dict:
    import tensorflow as tf

    size = table.images.shape[1]
    spec = {
        "image": tf.io.FixedLenFeature([size * size], tf.int64),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "row": tf.io.FixedLenFeature([], tf.int64),
        "split": tf.io.FixedLenFeature([], tf.string),
        "source_id": tf.io.FixedLenFeature([], tf.string),
        **{name: tf.io.FixedLenFeature([], tf.float32) for name in QUALITY_NUMERIC},
        **{name: tf.io.FixedLenFeature([], tf.string) for name in table.categorical.columns},
    }
    if table.votes is not None:
        spec["ferplus_votes"] = tf.io.FixedLenFeature([VOTES], tf.int64)
    return spec


def make_preprocessing_fn(spec: PreprocessingSpec, categorical: tuple[str, ...] = (),
                          with_votes: bool = False):
    """The `preprocessing_fn`: lighting normalisation per image, and the full-pass analyzers
    (z-scores, quantile buckets, vocabularies) over the analysed rows."""
    import tensorflow_transform as tft

    normalise_lighting_tf(np.zeros((1, 1), np.float32), spec)  # refuse a method early

    def preprocessing_fn(inputs: dict) -> dict:
        outputs = {"image": normalise_lighting_tf(inputs["image"], spec)}
        for name in ("label", "row", "split", "source_id"):
            outputs[name] = inputs[name]
        for name in QUALITY_NUMERIC:
            outputs[name] = inputs[name]
            outputs[f"{name}_z"] = tft.scale_to_z_score(inputs[name])
        for name in BUCKETED:
            outputs[f"{name}_bucket"] = tft.bucketize(inputs[name], len(BUCKET_NAMES),
                                                      name=f"{name}_bucketize")
        for column in categorical:
            outputs[column] = inputs[column]
            outputs[f"{column}_id"] = tft.compute_and_apply_vocabulary(
                inputs[column], vocab_filename=column)
        if with_votes:
            outputs["ferplus_votes"] = inputs["ferplus_votes"]
        return outputs

    return preprocessing_fn


def processed_dir(name: str) -> Path:
    return data_dir("processed") / name


def transform_key(table: FaceTable, spec: PreprocessingSpec) -> str:
    import tensorflow_transform as tft

    return json.dumps({"data_sha256": table.data_hash, "preprocessing": spec.to_dict(),
                       "transform_version": TRANSFORM_VERSION, "tft": tft.__version__},
                      sort_keys=True)


def run_transform(table: FaceTable, spec: PreprocessingSpec | None = None,
                  out: str | os.PathLike | None = None, beam_args: str | list[str] = "",
                  force: bool = False, verbose: bool = True) -> Path:
    """Run the pipeline unless `out` (default data/processed/<name>) holds this key's output."""
    started = time.perf_counter()
    spec = spec or PreprocessingSpec()
    target = Path(out) if out else processed_dir(table.name)
    key = transform_key(table, spec)
    if not force and (target / MANIFEST).exists() \
            and json.loads((target / MANIFEST).read_text()).get("key") == key:
        _say(verbose, f"processed data up to date: {target}")
        return target
    for stale in remove_stale_staging(target):
        _say(verbose, f"removed {stale}: staging folder of an earlier run that was killed")
    staging = staging_dir(target)
    try:
        with _signals_raise():
            _claim(staging)
            _run_pipeline(table, spec, staging, beam_args)
            counts = {str(s): int(n) for s, n in
                      zip(*np.unique(table.splits, return_counts=True), strict=True)}
            manifest = {"key": key, "dataset": table.name, "data_sha256": table.data_hash,
                        "preprocessing": spec.to_dict(), "classes": list(table.classes),
                        "counts": counts, "analyzed_rows": int(table.analyze.sum()),
                        "categorical": list(table.categorical.columns),
                        "tft_version": json.loads(key)["tft"],
                        "seconds": round(time.perf_counter() - started, 1),
                        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
            shutil.rmtree(staging / "inputs")
            shutil.rmtree(staging / "tmp", ignore_errors=True)
            (staging / OWNER_FILE).unlink()
            replace_dir(staging, target)
    except BaseException:  # a failure, SIGTERM (Terminated) or SIGINT: no staging left behind
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _say(verbose, f"processed {len(table.labels)} faces of {table.name} -> {target} "
                  f"({time.perf_counter() - started:.1f} s)")
    return target


# ------------------------------------------------------------------------------------------
# Staging folders: owned, cleaned on signals, stale ones removed


def _claim(staging: Path) -> None:
    """Name this process as the staging folder's owner (see `remove_stale_staging`)."""
    (staging / OWNER_FILE).write_text(json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def staging_folders(target: Path) -> list[Path]:
    """Staging folders of `target` (`paths.staging_dir`'s `.<name>-XXXXXXXX`, and
    `replace_dir`'s `.<name>-retired`) that exist now."""
    parent = Path(target).parent
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.glob(f".{Path(target).name}-*") if p.is_dir())


def remove_stale_staging(target: str | os.PathLike, now: float | None = None) -> list[Path]:
    """Remove the staging folders of `target` whose run is gone; returns them. A folder is
    left alone while its owner (`OWNER_FILE`: pid and host) runs on this host, or, without an
    owner file, for `UNOWNED_GRACE_S` after it was last modified (a run between making it and
    claiming it); an owner on another host is trusted for a day."""
    now = time.time() if now is None else now
    host = socket.gethostname()
    removed = []
    for folder in staging_folders(Path(target)):
        try:
            owner = json.loads((folder / OWNER_FILE).read_text())
            alive = _pid_alive(int(owner["pid"])) if owner.get("host") == host else \
                now - float(owner.get("started", 0)) < 86400
        except (OSError, ValueError, KeyError, TypeError):
            try:
                alive = now - folder.stat().st_mtime < UNOWNED_GRACE_S
            except OSError:
                continue  # removed meanwhile
        if not alive:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class Terminated(SystemExit):
    """SIGTERM during the transform: unwinds like an exception (the staging folder is removed
    on the way out) and exits 143 (128 + SIGTERM)."""


def _on_signal(signum: int, frame) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(128 + signum)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM and SIGINT raise in the main thread while the block runs (by default SIGTERM
    kills the process at once, so no `finally` runs and the staging folder stays); the
    previous handlers come back afterwards. Elsewhere than the main thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_pipeline(table: FaceTable, spec: PreprocessingSpec, staging: Path,
                  beam_args: str | list[str]) -> None:
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_transform.tf_metadata import schema_utils
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder
    from tfx_bsl.tfxio import tensor_adapter, tensor_representation_util

    inputs = _write_inputs(table, staging / "inputs")
    schema = schema_utils.schema_from_feature_spec(raw_feature_spec(table))
    adapter = tensor_adapter.TensorAdapterConfig(
        _record_batch([0], str(inputs)).schema,
        tensor_representation_util.InferTensorRepresentationsFromSchema(schema))
    preprocessing_fn = make_preprocessing_fn(spec, tuple(table.categorical.columns),
                                             table.votes is not None)
    splits = sorted(set(table.splits))
    everything, analysed = _chunks(table.splits, None), _chunks(table.splits, table.analyze)
    flags = shlex.split(beam_args) if isinstance(beam_args, str) else list(beam_args)
    with beam.Pipeline(options=PipelineOptions(flags)) as pipeline:
        with tft_beam.Context(temp_dir=str(staging / "tmp"), force_tf_compat_v1=False):
            def batches(chunks: list, label: str):
                return (pipeline | f"{label}Chunks" >> beam.Create(chunks)
                        | f"{label}Read" >> beam.Map(_record_batch, str(inputs)))

            transform_fn = ((batches(analysed, "Analysed"), adapter)
                            | "Analyze" >> tft_beam.AnalyzeDataset(preprocessing_fn))
            transformed, transformed_metadata = (
                ((batches(everything, "All"), adapter), transform_fn)
                | "Transform" >> tft_beam.TransformDataset(output_record_batches=True))
            encode = _Encoder(RecordBatchToExamplesEncoder, transformed_metadata.schema)
            # Chunks never span splits, so each transformed batch belongs to one split.
            parts = transformed | "BySplit" >> beam.Partition(
                lambda batch, _, names=tuple(splits): names.index(
                    _text(batch[0].column(batch[0].schema.get_field_index("split"))[0][0]
                          .as_py())), len(splits))
            for split, part in zip(splits, parts, strict=True):
                _ = (part | f"Encode{split}" >> beam.FlatMap(encode)
                     | f"Write{split}" >> beam.io.WriteToTFRecord(
                         str(staging / split), file_name_suffix=".tfrecord.gz",
                         num_shards=1, shard_name_template="-SSSSS-of-NNNNN"))
            _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(str(staging))


class _Encoder:
    """Transformed record batches -> serialized tf.Examples (the encoder is built on the
    worker: it cannot be pickled)."""

    def __init__(self, encoder_type, schema):
        self.encoder_type, self.schema, self.encoder = encoder_type, schema, None

    def __call__(self, batch_and_passthrough):
        if self.encoder is None:
            self.encoder = self.encoder_type(self.schema)
        return self.encoder.encode(batch_and_passthrough[0])

    def __getstate__(self):
        return {"encoder_type": self.encoder_type, "schema": self.schema, "encoder": None}


def _chunks(splits: np.ndarray, mask: np.ndarray | None) -> list[list[int]]:
    """Row indices in chunks of at most CHUNK_ROWS, each within one split."""
    chunks = []
    for split in sorted(set(splits)):
        rows = np.flatnonzero((splits == split) & (True if mask is None else mask))
        chunks += [rows[i:i + CHUNK_ROWS].tolist() for i in range(0, len(rows), CHUNK_ROWS)]
    return chunks


def _write_inputs(table: FaceTable, folder: Path) -> Path:
    folder.mkdir(parents=True)
    size = table.images.shape[1]
    columns = {"image": table.images.reshape(len(table.images), size * size).astype(np.int64),
               "label": table.labels, "row": table.rows, "split": table.splits.astype(str),
               "source_id": table.source_ids.astype(str),
               **{n: table.quality[n].to_numpy(np.float32) for n in QUALITY_NUMERIC},
               **{c: table.categorical[c].to_numpy(str) for c in table.categorical.columns}}
    if table.votes is not None:
        columns["ferplus_votes"] = table.votes.astype(np.int64)
    for name, values in columns.items():
        np.save(folder / f"{name}.npy", values, allow_pickle=False)
    return folder


def _record_batch(rows: list[int], folder: str):
    """A pyarrow RecordBatch (TFXIO's format: one list per row and feature) of these rows of
    the staged inputs, read memory-mapped."""
    import pyarrow as pa

    columns, names = [], []
    for path in sorted(Path(folder).glob("*.npy")):
        values = np.load(path, mmap_mode="r")[rows]
        width = 1 if values.ndim == 1 else values.shape[1]
        flat = values.reshape(-1)
        flat = pa.array([s.encode() for s in flat], pa.large_binary()) \
            if values.dtype.kind == "U" else pa.array(np.ascontiguousarray(flat))
        offsets = pa.array(np.arange(0, len(rows) * width + 1, width, dtype=np.int64))
        columns.append(pa.LargeListArray.from_arrays(offsets, flat))
        names.append(path.stem)
    return pa.RecordBatch.from_arrays(columns, names)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(message, flush=True)
