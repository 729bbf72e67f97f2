#!/usr/bin/env python3
"""Reads an effnet run's TensorBoard event files with the tensorboard package and prints every scalar,
so that the event-file writer (io/tensorboard.cpp) is checked against TensorBoard's own reader.

    /tmp/refenv/bin/python tools/reference/read_tensorboard.py RUN_DIR [--expect TAG ...]

Exits 1 when a tag given with --expect is missing or the files cannot be read.
"""
import argparse
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--expect", nargs="*", default=[])
    args = parser.parse_args()
    accumulator = EventAccumulator(args.run_dir)
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    for tag in sorted(tags):
        points = [(e.step, round(e.value, 6)) for e in accumulator.Scalars(tag)]
        print(f"{tag}: {points}")
    missing = [t for t in args.expect if t not in tags]
    if missing:
        print("missing tags:", ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
