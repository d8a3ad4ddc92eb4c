"""`face-sentiment rollback`: the registry's previous model becomes current again, and is
deployed (arguments and entry point: face_sentiment.pipeline.command)."""

from __future__ import annotations

from face_sentiment.pipeline.command import add_rollback_arguments as add_arguments
from face_sentiment.pipeline.command import run_rollback as run

__all__ = ["add_arguments", "run"]
