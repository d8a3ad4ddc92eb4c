"""`face-sentiment train-speed`: seconds per training epoch of a profile's network under the
CPU speed options."""

from __future__ import annotations

import argparse

from face_sentiment.cli.common import add_profile_arguments, profile_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from face_sentiment.model.training_speed import OPTIONS  # standard library only
    add_profile_arguments(parser)
    parser.add_argument("--option", action="append", choices=OPTIONS,
                        help="repeatable (default: all)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per option")
    parser.add_argument("--rounds", type=int, default=3,
                        help="time every option this many times, keep the fastest")


def run(args: argparse.Namespace) -> int:
    from face_sentiment.model.config import TrainingConfig
    from face_sentiment.model.training_speed import OPTIONS, speed_table
    config = TrainingConfig.from_dict(profile_of(args)["training"])
    table = speed_table(config, tuple(args.option or OPTIONS), args.steps, rounds=args.rounds)
    print(f"profile {args.profile}, batch {config.batch_size}, fastest of {args.rounds} "
          f"round(s) of {args.steps} timed steps each")
    print(table.round(2).to_string())
    return 0
