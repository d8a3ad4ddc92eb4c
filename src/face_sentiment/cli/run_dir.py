"""`face-sentiment run-dir`: print a profile's run folder for the Makefile (pyyaml only, no
TensorFlow; numpy and OpenCV too when --set is given)."""

from __future__ import annotations

import argparse

from face_sentiment.cli.common import add_profile_arguments, overrides_of

__all__ = ["add_arguments", "run"]

add_arguments = add_profile_arguments


def run(args: argparse.Namespace) -> int:
    """runs/<run_name> of the resolved profile (--set applied)."""
    from face_sentiment.profiles import run_folder
    print(run_folder(args.profile, **overrides_of(args)))
    return 0
