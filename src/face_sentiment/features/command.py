"""`face-sentiment features {apply,ingest,materialize,training-set,online}` (light: the help
needs no Feast).

    features apply                       register features/definitions.py (data/feature_store/)
    features ingest --fer2013            the FER2013 cache -> the image views' offline tables
    features ingest --batch DIR|ZIP      a labelled folder batch (labels.csv: path,label[,time])
    features ingest LOG.jsonl...         runner logs -> live_faces, live_frames
    features ingest --labels FIX.csv     corrected labels (dataset,image_id,label[,time])
    features materialize                 offline -> SQLite online store
    features training-set --dataset fer2013 --dataset BATCH --out train.parquet
    features online [--device ID]        latest materialized frame and faces per device
"""

from __future__ import annotations

import sys
import time


def _store(args, applied: bool = True):
    from face_sentiment.features.store import open_store
    return open_store(args.repo, applied=applied)


def _apply(args) -> int:
    from face_sentiment.features.store import apply, data_folder
    store, views = apply(args.repo)
    print(f"applied {len(views)} feature views ({', '.join(views)}) of {store.repo_path}; "
          f"data in {data_folder(store)}")
    return 0


def _ingest(args) -> int:
    from face_sentiment.features.sources import (
        batch_tables,
        ingest_fer2013,
        label_corrections,
        log_tables,
    )
    if not (args.fer2013 or args.batch or args.logs or args.labels):
        print("error: give runner log(s), --fer2013, --batch or --labels", file=sys.stderr)
        return 2
    store = _store(args)
    tables: dict = {}
    if args.fer2013:
        from face_sentiment.data.cache import load_dataset
        rows = slice(0, args.limit) if args.limit else None
        for name, (path, total) in ingest_fer2013(store, load_dataset(), rows).items():
            print(f"{name}: FER2013 -> {path} ({total} rows)")
    if args.batch:
        from face_sentiment.data.folder_dataset import load_folder_dataset
        tables.update(batch_tables(load_folder_dataset(args.batch), args.name,
                                   args.labelled_at, args.split, args.detector))
    if args.logs:
        live, warnings = log_tables(args.logs)
        for message in warnings:
            print(f"warning: {message}", file=sys.stderr)
        tables.update(live)
    if args.labels:  # after this call's batch: a correction may name its images
        _write(store, tables)
        tables = label_corrections(store, args.labels)
    _write(store, tables)
    return 0


def _write(store, tables: dict) -> None:
    from face_sentiment.features.sources import write_tables
    for name, (path, total) in write_tables(store, tables).items():
        print(f"{name}: +{len(tables[name])} rows -> {path} ({total} rows)")


def _materialize(args) -> int:
    from face_sentiment.features.retrieval import materialize
    started = time.perf_counter()
    views = materialize(_store(args), args.start, args.end, args.view)
    print(f"materialized {', '.join(views)} in {time.perf_counter() - started:.1f} s")
    return 0


def _training_set(args) -> int:
    from face_sentiment.features.retrieval import (
        entity_table,
        read_entities,
        training_set,
        write_table,
    )
    store = _store(args)
    if args.entities:
        entities = read_entities(args.entities)
    else:
        entities = entity_table(store, args.dataset or ["fer2013"], args.as_of, args.split)
    table = training_set(store, entities)
    path = write_table(table, args.out)
    counts = table.groupby("dataset").size().to_dict()
    labelled = int(table["label"].notna().sum()) if "label" in table else 0
    print(f"wrote {path}: {len(table)} rows ({', '.join(f'{k} {v}' for k, v in counts.items())}"
          f"), {labelled} labelled, {len(table.columns)} columns")
    return 0


def _online(args) -> int:
    import pandas as pd

    from face_sentiment.features.retrieval import online_devices
    table = online_devices(_store(args), args.device)
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        print(table.to_string(index=False))
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("--repo", help="the Feast repository (default: features/ in the "
                                       "project, or $FACE_SENTIMENT_FEATURE_REPO)")
    actions = parser.add_subparsers(dest="features_command", required=True)
    apply = actions.add_parser("apply", help="register the feature views (features/"
                                             "definitions.py) in data/feature_store/")
    apply.set_defaults(handler=_apply)
    ingest = actions.add_parser("ingest", help="write offline tables: runner logs, the "
                                               "FER2013 cache, a labelled batch")
    ingest.add_argument("logs", nargs="*", metavar="LOG.jsonl",
                        help="the runner's JSON-lines logs (rotated .N and .gz too); a line "
                             "with a missing field is an error naming file and line")
    ingest.add_argument("--fer2013", action="store_true",
                        help="the canonical FER2013 cache (quality, labels, FER+ votes, split)")
    ingest.add_argument("--limit", type=int, help="with --fer2013: its first N rows only")
    ingest.add_argument("--batch", metavar="DIR|ZIP",
                        help="a labelled folder batch (labels.csv: path,label[,time])")
    ingest.add_argument("--labels", metavar="CORRECTIONS.csv",
                        help="corrected labels (dataset,image_id,label[,time]; time default "
                             "now): new label rows, so a training set as of an earlier time "
                             "keeps the old label (retrain reads labels as of its start)")
    ingest.add_argument("--name", help="with --batch: its dataset name (default: its stem)")
    ingest.add_argument("--labelled-at", metavar="TIME",
                        help="with --batch: labelling time (ISO 8601) when labels.csv has no "
                             "time column (default: labels.csv's modification time)")
    ingest.add_argument("--split", default="Training",
                        help="with --batch: the split it joins (default: Training)")
    ingest.add_argument("--detector", default="blazeface-full",
                        help="with --batch of photographs: the face detector")
    ingest.set_defaults(handler=_ingest)
    materialize = actions.add_parser("materialize", help="offline tables -> SQLite online store")
    materialize.add_argument("--start", help="ISO 8601 (default: before FER2013's release)")
    materialize.add_argument("--end", help="ISO 8601 (default: now)")
    materialize.add_argument("--view", action="append",
                             help="a feature view (default: live_faces and live_frames, the "
                                  "views read online; the image views are read offline)")
    materialize.set_defaults(handler=_materialize)
    training = actions.add_parser("training-set", help="point-in-time training set: image "
                                                       "features valid at each row's time")
    training.add_argument("--dataset", action="append",
                          help="dataset in the store, repeatable (default: fer2013)")
    training.add_argument("--split", action="append", help="only these splits (repeatable)")
    training.add_argument("--as-of", metavar="TIME", help="every row's timestamp (ISO 8601; "
                                                          "default: now)")
    training.add_argument("--entities", metavar="FILE",
                          help="instead: CSV/parquet with dataset,image_id,event_timestamp")
    training.add_argument("--out", required=True, help="output .parquet or .csv")
    training.set_defaults(handler=_training_set)
    online = actions.add_parser("online", help="latest materialized features per device")
    online.add_argument("--device", action="append",
                        help="device id, repeatable (default: every device in the store)")
    online.set_defaults(handler=_online)


def run(args) -> int:
    """The `face-sentiment features` command (cli.py)."""
    return args.handler(args)
