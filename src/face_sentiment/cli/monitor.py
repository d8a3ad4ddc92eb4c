"""`face-sentiment monitor`: drift of the runner's logged faces per window (arguments and the
drift report: face_sentiment.monitoring.command). The CLI adds the feature store's windows,
which monitoring, an earlier stage than features, cannot import."""

from __future__ import annotations

import argparse

from face_sentiment.monitoring.command import add_arguments

__all__ = ["add_arguments", "run"]


def run(args: argparse.Namespace) -> int:
    from face_sentiment.monitoring.command import run as monitor
    if args.from_store is not None or any(r.split(":", 1)[0] == "store"
                                          for r in args.reference or []):
        from face_sentiment.features.windows import monitor_inputs
        args = monitor_inputs(args)  # store windows -> JSON-lines in the report folder
    return monitor(args)
