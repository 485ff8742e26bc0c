"""`python -m voicerec`: a thin command line over the library API (one subcommand per task)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .audio.input import AudioInputError, load_audio


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


def _weights(text: str) -> dict[str, float]:
    """`timbre=1,mood=0.5` -> {"timbre": 1.0, "mood": 0.5} (names not given keep their default weight)."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected NAME=NUMBER[,NAME=NUMBER...], got {item!r}") from None
        if not sep:
            raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {item!r}")
    return out


def _embed(args: argparse.Namespace) -> int:
    """One parquet row per readable file: path, the five embeddings, fused; failures on stderr, skipped."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from .embeddings import EMBEDDING_NAMES, Embedder, fuse

    embedder = Embedder.from_pretrained(args.timbre_model, args.expression_model, args.mood_model)
    rows: dict[str, list] = {"path": [], **{name: [] for name in (*EMBEDDING_NAMES, "fused")}}
    failed = 0
    for path in tqdm(args.paths, desc="embedding", unit="file", disable=len(args.paths) < 2):
        try:
            embeddings = embedder.embed(load_audio(path))
        except AudioInputError as exc:
            tqdm.write(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        rows["path"].append(path)
        for name in EMBEDDING_NAMES:
            rows[name].append(embeddings[name])
        rows["fused"].append(fuse(embeddings, args.weights))
    if not rows["path"]:
        print("No file could be embedded; nothing written.", file=sys.stderr)
        return 1
    vectors = pa.list_(pa.float32())
    table = pa.table({"path": rows["path"], **{k: pa.array([v.tolist() for v in rows[k]], vectors) for k in rows
                                               if k != "path"}})  # fmt: skip
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.output)
    print(f"wrote {len(rows['path'])} rows to {args.output}" + (f" ({failed} file(s) skipped)" if failed else ""))
    return 1 if failed else 0


def _catalog_build(args: argparse.Namespace) -> int:
    """Build (or resume) a Hub-ready catalog folder from a folder of songs."""
    from .audio.separation import SeparationError
    from .search.catalog import build_catalog

    try:
        report = build_catalog(
            args.audio_dir, args.output, args.metadata, args.timbre_model, args.expression_model, args.mood_model,
            num_proc=args.num_proc, shard=args.shard, separate=args.separate, cache=args.cache_dir,
            weights=args.weights, engine=args.engine, address=args.address,
        )  # fmt: skip
    except (SeparationError, ValueError, FileNotFoundError) as exc:
        print(f"catalog build: {exc}", file=sys.stderr)
        return 1
    print(
        f"{report.output}: {report.rows} songs ({report.computed} analysed, {report.cached} from the cache, "
        f"{len(report.failed)} skipped) in {report.seconds:.1f} s, {report.realtime_factor:.1f}x real time"
        + (f", {report.worker_mb:.0f} MB peak per analysis actor" if report.worker_mb else "")
    )
    return 1 if report.failed else 0


def _recommend(args: argparse.Namespace) -> int:
    """Rank the catalog for one recording: a table, or --json."""
    from .audio.separation import SeparationError
    from .recommender import Recommender

    recommender = Recommender.from_pretrained(args.timbre_model, args.expression_model, args.mood_model,
                                              args.catalog)  # fmt: skip
    try:
        result = recommender.recommend(args.audio, args.top, args.weights, args.range_weight,
                                       languages=args.language, separate=args.separate)
    except (AudioInputError, SeparationError) as exc:
        print(f"{args.audio}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(result.to_text())
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    """Song-disjoint singer retrieval of each --model and the random/MFCC baselines; tables + maps in --out."""
    from .tools.evaluation import load_embedder, run_evaluation

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


def _publish(args: argparse.Namespace) -> int:
    """Assemble the five Hub repos under --out; with --push upload exactly those folders."""
    from .tools.publish import PublishError, assemble, push

    try:
        repos = assemble(args.out, args.namespace, args.revision or "main")
        for repo in repos:
            print(f"assembled {repo.repo_type:7s} {repo.repo_id:40s} {len(repo.files()):3d} files "
                  f"{repo.size_bytes() / 1e6:7.2f} MB  {repo.folder}")  # fmt: skip
        if args.push:
            for done in push(repos, revision=args.revision, private=args.private):
                print(f"pushed {done['repo_type']:7s} {done['url']} commit {done['commit']}")
    except PublishError as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return 1
    return 0


def _bench(args: argparse.Namespace) -> int:
    """Print this machine's benchmark tables (markdown), and save them with --output."""
    from .tools.bench import run

    sizes = tuple(int(float(x)) for x in args.sizes.split(","))
    sources = {"timbre": args.timbre, "expression": args.expression, "mood": args.mood, "catalog": args.catalog}
    text = run(args.seconds, args.repeats, sizes, not args.no_app, sources, args.requests, int(float(args.pq_size)))
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


def _loadtest(args: argparse.Namespace) -> int:
    """Concurrent gradio_client requests against a running app; exit 1 if any failed."""
    from .tools.loadtest import run_loadtest

    report = run_loadtest(args.url, args.clients, args.seconds, args.audio)
    print(report.summary())
    return 1 if report.errors else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m voicerec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check recordings: how much singing load_audio finds in each")
    check.add_argument("paths", nargs="+")
    check.set_defaults(func=_check)
    models = argparse.ArgumentParser(add_help=False)
    models.add_argument("--timbre-model", help="SSCL timbre model folder or Hub id (default: hub/voicerec-sscl-timbre)")
    models.add_argument("--expression-model", help="SSCL expression model folder or Hub id")
    models.add_argument("--mood-model", help="TJAE model folder or Hub id")
    models.add_argument("--weights", type=_weights, default=None, metavar="NAME=W,...",
                        help="embedding weights, e.g. timbre=1,mood=0 (others keep their default)")  # fmt: skip
    emb = sub.add_parser("embed", parents=[models], help="the five embeddings (+ fused) of recordings, as parquet")
    emb.add_argument("paths", nargs="+")
    emb.add_argument("--output", required=True, help="parquet file to write")
    emb.set_defaults(func=_embed)
    cat = sub.add_parser("catalog", help="song catalogs")
    cat_sub = cat.add_subparsers(dest="catalog_command", required=True)
    build = cat_sub.add_parser("build", parents=[models], help="build a Hub-ready catalog dataset from audio files")
    build.add_argument("audio_dir", help="folder of song recordings (solo vocals, or full mixes with --separate)")
    build.add_argument("--metadata", help="CSV: file, song_id, title, artist, language, source, license, voice, "
                       "key, range_low, range_high, tessitura_low, tessitura_high (MIDI or note names)")  # fmt: skip
    build.add_argument("--output", required=True, help="catalog folder (replaced atomically when done)")
    build.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: this process (or --num-proc processes); ray: a Ray Data pipeline")  # fmt: skip
    build.add_argument("--address", help="with --engine ray: a running Ray cluster (default: start one here)")
    build.add_argument("--num-proc", type=int, help="worker processes (default 1; ray: analysis actors, one per CPU)")
    build.add_argument("--shard", help="i/n: build only every n-th song from the i-th (e.g. 0/4)")
    build.add_argument("--separate", action="store_true", help="separate the vocals from full mixes (demucs)")
    build.add_argument("--cache-dir", help="per-song analysis cache (default: $VOICEREC_CACHE or ~/.cache/voicerec)")
    build.set_defaults(func=_catalog_build)
    rec = sub.add_parser("recommend", parents=[models], help="songs that suit the voice in a recording")
    rec.add_argument("audio", help="a recording of the singer (about 10-15 s of singing)")
    rec.add_argument("--top", type=int, default=10, help="how many songs")
    rec.add_argument("--catalog", help="catalog folder or Hub dataset id (default: hub/voicerec-catalog)")
    rec.add_argument("--range-weight", type=float, default=0.3, help="share of range fit in the final order (0..1)")
    rec.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rec.add_argument("--language", type=lambda v: [c for c in v.split(",") if c.strip()], default=None,
                     metavar="CODES", help="only songs in these languages, e.g. en,ko (default: all)")
    rec.add_argument("--separate", action="store_true",
                     help="sung over music: take the vocals out first (demucs; it downloads its weights once)")
    rec.set_defaults(func=_recommend)
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
    pub = sub.add_parser("publish", help="assemble the model, dataset and Space repos (and --push them to the Hub)")
    pub.add_argument("--out", required=True, help="folder that receives one subfolder per Hub repo")
    pub.add_argument("--namespace", default="voicerec", help="Hub user or organisation that owns the repos")
    pub.add_argument("--revision", help="tag created on every pushed repo, and the revision the cards pin")
    pub.add_argument("--push", action="store_true", help="upload with huggingface_hub (token from HF_TOKEN)")
    pub.add_argument("--private", action="store_true", help="create the repos private")
    pub.set_defaults(func=_publish)
    bench = sub.add_parser(
        "bench",
        help="time the HTTP round trip, each stage, search at 1k..1M songs, pitch "
        "trackers, memory; each also as a ratio to a reference LSTM pass timed in the same run",
    )
    for name in ("timbre", "expression", "mood", "catalog"):
        bench.add_argument(f"--{name}", help=f"{name}: folder or Hub id (default: $VOICEREC_*, then hub/)")
    bench.add_argument("--seconds", type=float, default=15.0, help="length of the test recording")
    bench.add_argument("--repeats", type=int, default=5, help="timed repetitions (medians are reported)")
    bench.add_argument("--sizes", default="1e3,1e4,1e5,1e6", help="catalog sizes for the search benchmark")
    bench.add_argument("--pq-size", default="1e6", help="songs for the IVF-SQ8 vs IVF-PQ comparison (0: skip)")
    bench.add_argument("--requests", type=int, default=7, help="HTTP calls to app.py (their p50 is reported)")
    bench.add_argument("--no-app", action="store_true", help="skip the HTTP round trip through app.py")
    bench.add_argument("--output", help="also write the markdown to this file")
    bench.set_defaults(func=_bench)
    load = sub.add_parser("loadtest", help="concurrent gradio_client requests against a running app")
    load.add_argument("url", help="the app's address, e.g. http://127.0.0.1:7860/")
    load.add_argument("--clients", type=int, default=20, help="concurrent clients (each one request at a time)")
    load.add_argument("--seconds", type=float, default=120.0, help="how long to keep sending")
    load.add_argument("--audio", help="recording to send (default: 10 s of synthetic singing)")
    load.set_defaults(func=_loadtest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
