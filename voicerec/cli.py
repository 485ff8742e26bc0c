"""`python -m voicerec`: a thin command line over the library API (one subcommand per task)."""

from __future__ import annotations

import argparse
import json
import sys

from .audio import AudioInputError, load_audio


def _check(args: argparse.Namespace) -> int:
    """Report what load_audio makes of each file: how much singing, where, and any warnings."""
    status = 0
    for path in args.paths:
        try:
            audio = load_audio(path)
        except AudioInputError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            status = 1
            continue
        summary = {
            "path": path,
            "seconds": round(audio.seconds, 2),
            "voiced_seconds": round(audio.voiced_seconds, 2),
            "regions": len(audio.regions),
            "warnings": audio.warnings,
        }
        print(json.dumps(summary))
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m voicerec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check recordings: how much singing load_audio finds in each")
    check.add_argument("paths", nargs="+")
    check.set_defaults(func=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
