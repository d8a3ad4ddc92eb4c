"""`face-sentiment retrain`: the continual-training pipeline, batch by batch (arguments and
entry point: face_sentiment.pipeline.command)."""

from __future__ import annotations

from face_sentiment.pipeline.command import add_retrain_arguments as add_arguments
from face_sentiment.pipeline.command import run_retrain as run

__all__ = ["add_arguments", "run"]
