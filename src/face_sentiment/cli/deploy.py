"""`face-sentiment deploy`: the registry's current model to the deploy targets (arguments and
entry point: face_sentiment.pipeline.command)."""

from __future__ import annotations

from face_sentiment.pipeline.command import add_deploy_arguments as add_arguments
from face_sentiment.pipeline.command import run_deploy as run

__all__ = ["add_arguments", "run"]
