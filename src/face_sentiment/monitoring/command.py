"""`face-sentiment monitor`'s arguments and entry point (light: the help needs no pandas).

Exit status: 0 no drift in the current window, 1 drift, 2 no verdict (a bad or unusable log,
too few faces in the current window, a bad argument). A run without a verdict leaves its
output folder saying so (`report.record_no_verdict`), never an earlier run's report.

The reference, unless --reference names one, is the room's own, saved in the output folder
(recorded from the first faces after a deploy, or from a named log:
`python -m face_sentiment.monitoring.reference LOG --out DIR`); FER2013 is the labelled
fallback with its own thresholds, also when --reference names it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from face_sentiment.monitoring.settings import DEFAULTS


def run(args) -> int:
    """The `face-sentiment monitor` command (cli.py)."""
    from face_sentiment.monitoring.report import record_no_verdict
    from face_sentiment.paths import reports_dir
    logs = list(args.logs)
    out = Path(args.out) if args.out else reports_dir() / "monitoring"
    try:
        return _run(args, logs, out)
    except Exception as error:  # noqa: BLE001 - recorded, then raised for cli to report
        try:
            record_no_verdict(out, str(error) or type(error).__name__, logs)
        except OSError:
            pass  # the error itself is the one to report
        raise


def _run(args, logs: list, out: Path) -> int:
    from face_sentiment.monitoring.logs import LogError
    from face_sentiment.monitoring.report import monitor
    if args.dataset:  # a labelled lab dataset through the runner's pipeline, as a log
        from face_sentiment.data.folder_dataset import load_folder_dataset
        from face_sentiment.monitoring.record import dataset_records, write_records
        dataset = load_folder_dataset(args.dataset)
        logs.append(write_records(dataset_records(dataset, args.model, args.detector),
                                  out / f"{dataset.name}_records.jsonl"))
    if not logs:
        raise LogError("give the runner's log(s) or --dataset")
    if args.record_reference:  # named logs saved as the room's reference first
        _record_reference(args.record_reference, out, args.reference_faces)
    overrides = {"num_threshold": args.threshold, "cat_threshold": args.cat_threshold,
                 "drift_share": args.drift_share, "min_faces": args.min_faces}
    result = monitor(logs, _reference(args), args.window, out, labels=args.labels,
                     model=args.model, overrides=overrides,
                     record_reference=not args.dataset)  # a lab dataset is not the room
    for message in result.messages:
        print(f"warning: {message}", file=sys.stderr)
    print(result.summary)
    print(f"wrote {', '.join(str(p) for p in result.written)}", file=sys.stderr)
    return result.exit_code


def _reference(args):
    """None (the room's own, else the FER2013 fallback), a FER2013 reference with its own
    thresholds, or the reference logs named."""
    spec = args.reference
    if not spec:
        return None
    from face_sentiment.monitoring.reference import (
        is_fer2013,
        load_reference,
        with_own_thresholds,
    )
    if is_fer2013(spec):
        return with_own_thresholds(load_reference(spec, model=args.model),
                                   "not the room's own reference", fallback=False)
    return spec if len(spec) > 1 else spec[0]


def _record_reference(logs: list[str], out: Path, faces: int | None) -> None:
    from face_sentiment.monitoring.logs import load_logs
    from face_sentiment.monitoring.reference import record_room_reference
    from face_sentiment.monitoring.validation import validated
    data = validated(load_logs(logs))
    path = record_room_reference(data, out, faces=faces,
                                 how=f"named log(s) {', '.join(data.files)}")
    print(f"recorded the room's reference from {', '.join(data.files)} -> {path}",
          file=sys.stderr)


def add_arguments(parser) -> None:
    parser.add_argument("logs", nargs="*", help="the runner's JSON-lines logs (.jsonl, "
                                                "rotated .jsonl.N and .gz too)")
    parser.add_argument("--dataset", help="a labelled folder dataset (dir or zip with "
                                          "labels.csv: path,label[,time]) captured in the lab: "
                                          "run through the runner's pipeline, monitored as a "
                                          "log, with accuracy, macro-F1 and recall per window")
    parser.add_argument("--detector", default="blazeface-full",
                        help="with --dataset: the face detector for photographs")
    parser.add_argument("--reference", nargs="+", metavar="fer2013|REFERENCE.jsonl|store",
                        help="fer2013 (its Training split; fer2013:PublicTest for another "
                             "split) or reference log(s) recorded when the demo was set up "
                             "or store[:SELECTOR], logged faces from the feature store, e.g. "
                             "store:device=pi-lab,end=2026-12-01 (default: the room's own "
                             "reference saved in --out, recorded from the first faces the "
                             "current model logged; until one exists, fer2013 as a labelled "
                             "fallback with its own thresholds)")
    parser.add_argument("--record-reference", nargs="+", metavar="LOG",
                        help="save these runner logs as the room's reference in --out (the "
                             "default reference from then on), then monitor")
    parser.add_argument("--reference-faces", type=int, metavar="N",
                        help="with --record-reference: keep its first N faces")
    parser.add_argument("--from-store", nargs="?", const="", metavar="SELECTOR",
                        help="also monitor logged faces from the feature store (selector: "
                             "device=, model=, start=, end=, last=10min|200faces; none: all); "
                             "written as store_current.jsonl in --out")
    parser.add_argument("--feature-repo", help="with store windows: the Feast repository "
                                               "(default: features/, or "
                                               "$FACE_SENTIMENT_FEATURE_REPO)")
    parser.add_argument("--window", default="10min",
                        help="window: a duration (30s, 10min, 2h) or a count (200faces, "
                             "50frames); the last one is the current window (default: 10min)")
    parser.add_argument("--out", help="folder for drift_report.html, monitor.json, timeline.png "
                                      "(default: reports/monitoring)")
    parser.add_argument("--labels", help="labels CSV joined to logged frames: frame,label"
                                         "[,face][,log]; adds accuracy, macro-F1, recall")
    parser.add_argument("--model", default="shipped-int8",
                        help="model whose predictions on FER2013 are the reference's "
                             "(default: shipped-int8, the model of record)")
    parser.add_argument("--threshold", type=float,
                        help="numeric columns' normed Wasserstein threshold (default "
                             f"{DEFAULTS.num_threshold:g}, measured in notebook 10)")
    parser.add_argument("--cat-threshold", type=float,
                        help="top class's Jensen-Shannon threshold (default "
                             f"{DEFAULTS.cat_threshold:g})")
    parser.add_argument("--drift-share", type=float,
                        help="share of tested columns that must drift for a drift verdict "
                             f"(default {DEFAULTS.drift_share:g})")
    parser.add_argument("--min-faces", type=int,
                        help=f"fewest faces a window needs to be tested "
                             f"(default {DEFAULTS.min_faces})")
