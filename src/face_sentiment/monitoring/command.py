"""`face-sentiment monitor`'s arguments and entry point (light: the help needs no pandas).

Exit status: 0 no drift in the current window, 1 drift, 2 no verdict (no usable log, too few
faces in the current window, a bad argument).
"""

from __future__ import annotations

import sys
from pathlib import Path

from face_sentiment.monitoring.settings import DEFAULTS


def run(args) -> int:
    """The `face-sentiment monitor` command (cli.py)."""
    from face_sentiment.monitoring.report import monitor
    from face_sentiment.paths import reports_dir
    settings = DEFAULTS.with_values(num_threshold=args.threshold,
                                    cat_threshold=args.cat_threshold,
                                    drift_share=args.drift_share, min_faces=args.min_faces)
    logs = list(args.logs)
    out = Path(args.out) if args.out else reports_dir() / "monitoring"
    if args.dataset:  # a labelled lab dataset through the runner's pipeline, as a log
        from face_sentiment.data.folder_dataset import load_folder_dataset
        from face_sentiment.monitoring.record import dataset_records, write_records
        dataset = load_folder_dataset(args.dataset)
        logs.append(write_records(dataset_records(dataset, args.model, args.detector),
                                  out / f"{dataset.name}_records.jsonl"))
    if not logs:
        print("error: give the runner's log(s) or --dataset", file=sys.stderr)
        return 2
    reference = args.reference or ["fer2013"]
    result = monitor(logs, reference if len(reference) > 1 else reference[0], args.window, out,
                     settings, labels=args.labels, model=args.model)
    for message in result.messages:
        print(f"warning: {message}", file=sys.stderr)
    print(result.summary)
    print(f"wrote {', '.join(str(p) for p in result.written)}", file=sys.stderr)
    return result.exit_code


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
                             "store:device=pi-lab,end=2026-12-01 (default: fer2013)")
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
                             "(default: shipped-int8, the deployed one)")
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
