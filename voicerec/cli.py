"""`python -m voicerec`: a thin command line over the library API (one subcommand per task)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def _evaluate(args: argparse.Namespace) -> int:
    """Song-disjoint singer retrieval of each --model and the random/MFCC baselines; tables + maps in --out."""
    from .evaluation import load_embedder, run_evaluation

    embedders = {}
    for item in args.model:
        name, sep, spec = item.partition("=")
        if not sep or not name or not spec:
            print(f"--model expects NAME=PATH (or NAME=package.module:embedder), got {item!r}", file=sys.stderr)
            return 2
        embedders[name] = load_embedder(spec)
    singers = set(args.singers.split(",")) if args.singers else None
    run_evaluation(args.data_dir, embedders, args.out, args.cut, args.cut_all, singers, args.audio, args.random_repeats)
    print((Path(args.out) / "results.md").read_text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m voicerec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check recordings: how much singing load_audio finds in each")
    check.add_argument("paths", nargs="+")
    check.set_defaults(func=_check)
    ev = sub.add_parser("evaluate", help="song-disjoint singer retrieval of models and baselines on a manifest folder")
    ev.add_argument("data_dir", help="folder with manifest.csv (path, singer, song, take, kind, ...)")
    ev.add_argument("--model", action="extend", nargs="+", default=[], metavar="NAME=PATH",
                    help="model folder (AutoModel) or package.module:embedder[()] ; repeatable")  # fmt: skip
    ev.add_argument("--cut", type=float, nargs="*", default=[10.0, 5.0], help="query lengths in seconds")
    ev.add_argument("--cut-all", action="store_true", help="also cut every clip, as the README's reference figures")
    ev.add_argument("--singers", default="", help="comma-separated singer ids to keep")
    ev.add_argument("--audio", choices=("app", "raw"), default="app",
                    help="app: through voicerec.load_audio (trim + loudness); raw: decode + resample only")  # fmt: skip
    ev.add_argument("--random-repeats", type=int, default=20, help="seeds averaged for the random baseline")
    ev.add_argument("--out", default="runs/eval", help="folder for results.json, results.md and map_*.png")
    ev.set_defaults(func=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
