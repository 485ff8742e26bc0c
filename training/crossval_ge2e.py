"""Cross-validation of the GE2E-based encoders over every dev singer, under two protocols (issues #15, #26).

- `lso`, leave-singers-out: every corpus's singers in FOLDS folds (by name order); for each fold the encoders train
  on PJS and the other folds' singers of gtsinger-dev, mir1k-dev and edcav-dev, and embed this fold's clips.
- `loco`, leave-one-corpus-out: for each query corpus, the encoders train on PJS, the other query corpus and one
  half of edcav-dev's artists, and embed the whole held-out corpus: other sessions and recording chains, as the
  project's held-out sets are.

Retrieval (song-disjoint singer retrieval, `voicerec.tools.evaluation`) runs within each pool: a split's unseen
singers of one corpus and its unseen edcav-dev artists (one song each: candidates, never queries), all embedded by
that split's encoders; queries are pooled over the splits, so every dev singer is a query once per protocol and no
clip is embedded by a model that heard its singer. Clips go through the app's path (load, pitch, note adjustment)
once, cached under `--out`; the LSTM runs once too, its lower layers' outputs kept (float16) so that a recipe may
train the top layer (`train.top_layer`), and GE2E's last hidden states for the recipes that train the projection.

Per corpus: top-1 and mAP with a 95 % bootstrap interval over query singers, the EER over the pooled pairs, and
the paired mAP difference to GE2E and to the recipe's `timbre` (interval over singers), with full clips and with
queries cut to their first 10 s. Fusion weights are fitted leave-one-singer-out (Fisher rule,
training/tune_weights.py) over the query singers of every pool of the protocol; an embedding is dropped from a
fusion by giving it a constant cosine, which the Fisher rule weighs 0. A recipe's `data.exclude_corpora` leaves
corpora out of its training (e.g. to measure what edcav-dev adds).

    OMP_NUM_THREADS=1 python -m training.crossval_ge2e --data ../shared/data --ge2e runs/ge2e --out runs/cv \\
        --recipes training/configs/ge2e_timbre.yaml "training/configs/ge2e_timbre.yaml:train.top_layer=shared"
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import itertools
import json
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from tqdm.auto import tqdm

from training.data import join_songs, load_joined
from training.finetune_ge2e import (
    LowerLayers,
    clip_states,
    inference_states,
    load_config,
    map_states,
    split_lstm,
    top_states,
    train,
)
from training.tune_weights import Fold, fisher_weights, leave_one_singer_out
from voicerec import GE2EFeatureExtractor, GE2EModel, load_audio
from voicerec.audio.input import AudioInputError
from voicerec.audio.note_adjust import SHIFT_RULES
from voicerec.audio.pitch import track_pitch
from voicerec.embeddings import EMBEDDING_NAMES, _load
from voicerec.tools.evaluation import MFCCEmbedder, equal_error_rate, ranking_metrics

DATASETS = ("gtsinger-dev", "mir1k-dev")
"""The query corpora: their singers sing several songs."""
DISTRACTORS = "edcav-dev"
"""Professional artists with one song each: training data and candidates, never song-disjoint queries."""
FOLDS = 5
"""Leave-singers-out folds per corpus (2 singers of gtsinger-dev, 2-3 of mir1k-dev, 5-6 edcav-dev artists each)."""
JOIN_SECONDS = 10.0
"""edcav-dev's clips (some refused by the app as under 3 s of singing) are joined per song, in order, into
recordings of at least this long, the app's typical recording (`training.data.join_songs`)."""
CUT = 10 * 16000
"""Queries cut to their first 10 s (the app's typical recording)."""


def dev_clips(data: Path) -> pd.DataFrame:
    """Singing clips of the dev corpora with their leave-singers-out fold (0..FOLDS-1, by singer, in name order)
    and their half (0 or 1, likewise): edcav-dev's halves are the distractors of the leave-one-corpus-out folds."""
    frames = []
    for name in (*DATASETS, DISTRACTORS):
        m = pd.read_csv(data / name / "manifest.csv")
        m = m[m["kind"] == "singing"].copy()
        m["path"] = [str(data / name / p) for p in m["path"]]
        if name == DISTRACTORS:
            m = join_songs(m, JOIN_SECONDS)
        m["dataset"] = name
        index = {s: i for i, s in enumerate(sorted(m["singer"].unique()))}
        m["fold"], m["half"] = m["singer"].map(index) % FOLDS, m["singer"].map(index) % 2
        frames.append(m[["path", "singer", "song", "dataset", "fold", "half"]])
    return pd.concat(frames, ignore_index=True)


@dataclass
class Split:
    """One cross-validation split: the dev clips the encoders train on (with PJS), and per query corpus the rows of
    its retrieval pool (its unseen singers and unseen edcav-dev distractors), all embedded by those encoders."""

    name: str
    train: np.ndarray  # bool over the dev clips
    pools: dict[str, np.ndarray]  # query corpus -> rows


def splits(clips: pd.DataFrame, protocol: str) -> list[Split]:
    """`lso`: leave-singers-out, FOLDS folds, each holding out a fifth of every corpus's singers (edcav-dev's among
    them) at once. `loco`: leave-one-corpus-out, one fold per query corpus: train on the other query corpus and one
    half of edcav-dev, retrieve among all the held-out corpus's singers and the other half (another session and
    recording chain, as the held-out sets are)."""
    corpus, fold, half = clips["dataset"].to_numpy(), clips["fold"].to_numpy(), clips["half"].to_numpy()
    edcav = corpus == DISTRACTORS
    if protocol == "lso":
        return [Split(f"lso/{f}", fold != f, {c: np.flatnonzero((corpus == c) & (fold == f) | edcav & (fold == f))
                                              for c in DATASETS}) for f in range(FOLDS)]  # fmt: skip
    if protocol == "loco":
        out = []
        for h, c in enumerate(DATASETS):
            other = [d for d in DATASETS if d != c]
            out.append(Split(f"loco/{c}", np.isin(corpus, other) | edcav & (half != h),
                             {c: np.flatnonzero((corpus == c) | edcav & (half == h))}))  # fmt: skip
        return out
    raise ValueError(f"Unknown protocol {protocol!r}: use lso or loco.")


PROTOCOLS = ("lso", "loco")


def app_waves(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The recording as the app sees it and its f0 every 10 ms (NaN unvoiced), which the note adjustment moves;
    empty if the app refuses it (some mir1k-dev clips hold under 3 s of singing)."""
    try:
        audio = load_joined(path)
    except AudioInputError:
        return np.zeros(0, np.float32), np.zeros(0)
    return audio.samples, track_pitch(audio.samples, audio.sampling_rate).f0


def cached_waves(paths: list[str], cache: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    cache.mkdir(parents=True, exist_ok=True)
    files = [cache / (hashlib.sha1(p.encode()).hexdigest()[:16] + ".npz") for p in paths]
    todo = [(p, f) for p, f in zip(paths, files, strict=True) if not f.exists()]
    with ProcessPoolExecutor(2) as pool:
        results = pool.map(app_waves, [p for p, _ in todo], chunksize=4)
        for (_, f), (plain, f0) in tqdm(zip(todo, results, strict=True), total=len(todo), desc="app path"):
            np.savez(f, plain=plain, f0=f0)
    return [(z["plain"], z["f0"]) for z in (np.load(f) for f in files)]


def embed_states(model: GE2EModel, states: list[np.ndarray], every: int = 1) -> np.ndarray:
    """Clip embeddings from window states through the model's own projection and pooling (every `every`-th
    window: 2 = windows that do not overlap)."""
    picked = [s[::every] for s in states]
    with torch.no_grad():
        windows = model.project(torch.from_numpy(np.concatenate(picked)))
        return model.pool(windows, torch.tensor([len(s) for s in picked])).embeddings.numpy()


def singer_interval(values: np.ndarray, singers: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of the mean of per-query `values`, resampling whole query singers."""
    names, group = np.unique(singers, return_inverse=True)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(names), np.full(len(names), 1 / len(names)), size=5000)[:, group]
    boot = (counts * values).sum(1) / counts.sum(1)
    return float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def summarise(ap: np.ndarray, hit: np.ndarray, singer: np.ndarray, scores, labels) -> dict:
    return {"top1": float(hit.mean()), "top1_ci": singer_interval(hit, singer), "map": float(ap.mean()),
            "map_ci": singer_interval(ap, singer), "eer": equal_error_rate(np.concatenate(scores),
            np.concatenate(labels)), "queries": len(ap), "singers": len(set(singer)), "ap": ap, "hit": hit,
            "singer": singer}  # fmt: skip


def dev_folds(clips: pd.DataFrame, protocol: str, cosines) -> list[Fold]:
    """One `Fold` per split and query corpus of `protocol`: its pool's cosines `cosines(rows)` (a dict over
    EMBEDDING_NAMES), named `corpus@split`."""
    folds = []
    for split in splits(clips, protocol):
        for name, rows in split.pools.items():
            sub = clips.iloc[rows]
            f = Fold(f"{name}@{split.name}", {n: np.eye(len(rows), 1) for n in EMBEDDING_NAMES},
                     sub["singer"].to_numpy(), sub["song"].to_numpy())  # fmt: skip
            f.cos = cosines(rows)
            folds.append(f)
    return folds


def pooled_scores(folds: list[Fold], sims: dict[str, np.ndarray]) -> dict:
    """Per query corpus, the queries of all its folds pooled, each fold ranked by its own similarity matrix."""
    out = {}
    for name in DATASETS:
        ap, hit, singer, scores, labels = [], [], [], [], []
        for f in (f for f in folds if f.name.startswith(f"{name}@")):
            s = sims[f.name]
            for r in np.flatnonzero(f.is_query):
                m = ranking_metrics(s[r : r + 1], f.candidates[r : r + 1], f.positives[r : r + 1])
                if m["queries"]:
                    ap.append(m["map"]), hit.append(m["top1"]), singer.append(f.singers[r])
                    scores.append(s[r][f.candidates[r]]), labels.append(f.positives[r][f.candidates[r]])
        out[name] = summarise(np.array(ap), np.array(hit, dtype=float), np.array(singer), scores, labels)
    return out


def score(clips: pd.DataFrame, protocol: str, full: np.ndarray, queries: np.ndarray) -> dict:
    """Retrieval within each pool of one embedding, queries pooled over the folds per corpus."""
    folds = dev_folds(clips, protocol, lambda rows: dict.fromkeys(EMBEDDING_NAMES, queries[rows] @ full[rows].T))
    return pooled_scores(folds, {f.name: f.cos[EMBEDDING_NAMES[0]] for f in folds})


def fused_score(
    clips: pd.DataFrame, protocol: str, parts: dict[str, tuple[np.ndarray, np.ndarray] | None]
) -> tuple[dict, dict]:
    """Fisher fusion of the five slots (each (full, queries) columns, or None to leave it out), weights fitted
    leave-one-singer-out over every pool of the protocol; returns the per-corpus scores and the weights fitted on
    all."""

    def cosines(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {n: parts[n][1][rows] @ parts[n][0][rows].T if parts.get(n) else np.zeros((len(rows),) * 2)
                for n in EMBEDDING_NAMES}  # fmt: skip

    folds = dev_folds(clips, protocol, cosines)
    held_out, _ = leave_one_singer_out(fisher_weights, folds)
    return pooled_scores(folds, held_out), fisher_weights([f.all_queries() for f in folds])


def compute_states(args, clips, waves, trunk, extractor, view_cfg, need_lower: bool) -> tuple[dict | None, dict]:
    """(lower, top): the window states of every dev clip and PJS song (`ClipStates`, note-adjusted copy included)
    and of the dev clips' views cut to 10 s ("plain@10", "note@10"; None where the clip is no longer), as the
    frozen lower LSTM layers' outputs (`LowerLayers`, for training the top layer; None if not `need_lower` and
    the top is cached) and as GE2E's last hidden state (the top layer over them, for training the projection).
    The LSTM pass runs once, into `--cache`, its note-adjusted copies shifted by the default rule ("a3")."""
    lower_cache, top_cache = args.cache / "lower.pkl", args.cache / "states.pkl"
    if top_cache.exists() and not need_lower:
        return None, pickle.loads(top_cache.read_bytes())
    if lower_cache.exists():
        lower = pickle.loads(lower_cache.read_bytes())
    else:
        encode = LowerLayers(trunk)
        lower = {"dev": [clip_states(trunk, extractor, w, s, view_cfg, f0, encode)  # the pitch already tracked
                         for (w, f0), s in tqdm(list(zip(waves, clips["singer"], strict=True)), desc="states")]}
        queries = clips["dataset"].isin(DATASETS).to_numpy()  # edcav-dev's recordings are never queries
        for key, note in (("plain@10", False), ("note@10", True)):
            lower[key] = [inference_states(trunk, extractor, w[:CUT], f0 if note else None, encode)
                          if len(w) > CUT and query else None
                          for (w, f0), query in tqdm(list(zip(waves, queries, strict=True)), desc=key)]  # fmt: skip
        m = pd.read_csv(args.data / "pjs" / "manifest.csv")
        lower["pjs"] = [clip_states(trunk, extractor, load_audio(args.data / "pjs" / p).samples, "PJS", view_cfg,
                                    encode=encode)
                        for p in tqdm(m.loc[m["kind"] == "singing", "path"], desc="pjs states")]  # fmt: skip
        lower_cache.write_bytes(pickle.dumps(lower, protocol=5))
    if top_cache.exists():
        return lower, pickle.loads(top_cache.read_bytes())
    state = partial(top_states, split_lstm(trunk.lstm)[1])
    top = {key: [map_states(c, state) for c in tqdm(lower[key], desc=f"top layer, {key}")] for key in ("dev", "pjs")}
    for key in ("plain@10", "note@10"):
        top[key] = [None if x is None else state(x) for x in lower[key]]
    top_cache.write_bytes(pickle.dumps(top))
    return lower, top


def note_views(args, clips, waves, trunk, extractor, rule: str) -> dict[str, list]:
    """GE2E's last hidden states of the note-adjusted copies shifted by another `rule` (`note_adjust.shift_for`):
    "dev" and "pjs" (the `ClipStates.note` of `compute_states`' clips) and "note@10", cached in `--cache`."""
    cache = args.cache / f"note-{rule.replace(':', '')}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    queries = clips["dataset"].isin(DATASETS).to_numpy()
    views = {"dev": [inference_states(trunk, extractor, w, f0, rule=rule) for w, f0 in tqdm(waves, desc=rule)]}
    views["note@10"] = [inference_states(trunk, extractor, w[:CUT], f0, rule=rule) if len(w) > CUT and query else None
                        for (w, f0), query in tqdm(list(zip(waves, queries, strict=True)), desc=f"{rule}@10")]
    m = pd.read_csv(args.data / "pjs" / "manifest.csv")
    views["pjs"] = []
    for p in tqdm(m.loc[m["kind"] == "singing", "path"], desc=f"pjs {rule}"):
        audio = load_audio(args.data / "pjs" / p)
        f0 = track_pitch(audio.samples, audio.sampling_rate).f0
        views["pjs"].append(inference_states(trunk, extractor, audio.samples, f0, rule=rule))
    cache.write_bytes(pickle.dumps(views))
    return views


def with_note_views(states: dict, views: dict[str, list]) -> dict:
    """`compute_states`' top states with the note-adjusted copies of `note_views` in place of the default's."""
    out = {key: [dataclasses.replace(c, note=n) for c, n in zip(states[key], views[key], strict=True)]
           for key in ("dev", "pjs")}  # fmt: skip
    return out | {"plain@10": states["plain@10"], "note@10": views["note@10"]}


def recipe(spec: str) -> tuple[str, dict]:
    """`config.yaml[:section.key=value,...]` -> (a name for the tables, the config with those values)."""
    path, _, overrides = spec.partition(":")
    config = load_config(path)
    for item in filter(None, overrides.split(",")):
        key, value = item.split("=")
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = yaml.safe_load(value)
    return (Path(path).stem + (f"[{overrides}]" if overrides else "")), config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding gtsinger-dev, mir1k-dev, pjs")
    parser.add_argument("--ge2e", required=True, help="GE2E as shipped, converted (training/export_ge2e.py)")
    parser.add_argument("--mood", default="hub/voicerec-tjae")
    parser.add_argument("--recipes", nargs="+", default=["training/configs/ge2e_timbre.yaml"],
                        help="CONFIG[:section.key=value,...]; each is run for both variants")  # fmt: skip
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--variants", nargs="+", default=["timbre", "expression"], choices=["timbre", "expression"])
    rules = ", ".join(SHIFT_RULES)
    parser.add_argument("--note-shift", default="a3", metavar="RULE",
                        help=f"how far the note-adjusted copy is moved ({rules}; note_adjust.shift_for)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, help="where the app path and the window states are kept (--out)")
    args = parser.parse_args(argv)
    args.cache = args.cache or args.out
    args.out.mkdir(parents=True, exist_ok=True)
    clips = dev_clips(args.data)
    waves = cached_waves(clips["path"].tolist(), args.cache / "app")
    usable = np.array([w[0].size > 0 for w in waves])
    print(f"{(~usable).sum()} of {len(clips)} clips refused by the app's input checks, left out")
    clips, waves = clips[usable].reset_index(drop=True), [w for w, ok in zip(waves, usable, strict=True) if ok]
    recipes = dict(recipe(spec) for spec in args.recipes)
    first = next(iter(recipes.values()))
    extractor = GE2EFeatureExtractor.from_pretrained(args.ge2e)
    trunk = GE2EModel.from_pretrained(args.ge2e).eval()
    trunk.config.windows_per_second = first.get("windows_per_second", trunk.config.windows_per_second)
    need_lower = any(c["train"].get("top_layer") for c in recipes.values())
    if need_lower and args.note_shift != "a3":
        raise SystemExit("A recipe training the top layer needs the lower layers' note views: only --note-shift a3.")
    lower, states = compute_states(args, clips, waves, trunk, extractor, first["views"], need_lower)
    if args.note_shift != "a3":
        states = with_note_views(states, note_views(args, clips, waves, trunk, extractor, args.note_shift))

    def views_of(level: dict) -> dict[str, list[np.ndarray]]:
        plain, note = [c.plain for c in level["dev"]], [c.note for c in level["dev"]]
        cut = {k: [full if x is None else x for x, full in zip(level[f"{name}@10"], v, strict=True)]
               for k, name, v in (("@10", "plain", plain), ("_note@10", "note", note))}  # fmt: skip
        return {"": plain, "_note": note} | cut

    top_views, lower_views = views_of(states), views_of(lower) if lower else {}

    def columns_of(model: GE2EModel, prefix: str, rows: np.ndarray, top_layer: bool) -> dict[str, np.ndarray]:
        """The model's clip embeddings of `rows` in every view; a model whose top layer was trained reads the
        lower layers' cached outputs through it (a cut view no shorter than the clip reuses the full one)."""
        if not top_layer:
            return {f"{prefix}{k}": embed_states(model, [v[i] for i in rows]) for k, v in top_views.items()}
        top, done, out = split_lstm(model.lstm)[1], {}, {}
        for k, v in lower_views.items():
            picked = []
            for i in rows:
                key = id(v[i])  # the full view's array, when the cut view is the same clip
                done[key] = done[key] if key in done else top_states(top, v[i])
                picked.append(done[key])
            out[f"{prefix}{k}"] = embed_states(model, picked)
        return out

    base = args.out / "baselines.npz"
    if base.exists():
        columns = dict(np.load(base))
    else:
        every = np.arange(len(clips))
        columns = columns_of(trunk, "ge2e", every, top_layer=False)
        columns.update({f"ge2e/2{k}": embed_states(trunk, v, every=2) for k, v in top_views.items()})
        mood, mood_extractor = _load(args.mood)
        mfcc = MFCCEmbedder()
        mfcc.fit([w[0] for w in waves])
        with torch.no_grad():
            full = [mood(**mood_extractor([w[0]], return_tensors="pt")).embeddings for w in tqdm(waves, desc="mood")]
            cut = [mood(**mood_extractor([w[0][:CUT]], return_tensors="pt")).embeddings if len(w[0]) > CUT else f
                   for w, f in zip(waves, full, strict=True)]  # fmt: skip
        columns["mood"], columns["mood@10"] = torch.cat(full).numpy(), torch.cat(cut).numpy()
        columns["mfcc"], columns["mfcc@10"] = mfcc([w[0] for w in waves]), mfcc([w[0][:CUT] for w in waves])
        np.savez(base, **columns)
    logs = {}
    for tag, config_of in recipes.items():
        mode = config_of["train"].get("top_layer") or "none"
        for protocol in args.protocols:
            for split in splits(clips, protocol):  # a recipe may leave whole corpora out of training
                left_out = clips["dataset"].isin(config_of["data"].get("exclude_corpora") or []).to_numpy()
                train_rows = np.flatnonzero(split.train & ~left_out)
                inputs = [lower["dev"][i] for i in train_rows] + lower["pjs"] if lower else None
                rows = np.unique(np.concatenate(list(split.pools.values())))
                trained: dict[str, GE2EModel] = {}
                for variant in args.variants:
                    config = copy.deepcopy(config_of)
                    config.update(variant=variant, init=args.ge2e)
                    if mode == "shared" and variant != "timbre":  # the projection on the timbre encoder's trunk
                        top = partial(top_states, split_lstm(trained["timbre"].lstm)[1])
                        model, log = train(config, [map_states(c, top) for c in inputs], trunk=trained["timbre"])
                    else:
                        frozen = [states["dev"][i] for i in train_rows] + states["pjs"]
                        model, log = train(config, frozen, inputs if mode != "none" else None)
                    trained[variant] = model
                    logs[f"{tag}/{variant}/{split.name}"] = log[-1] | ({"last": log[-2]} if len(log) > 1 else {})
                    for key, x in columns_of(model, f"{protocol}|{tag}:{variant}", rows, mode != "none").items():
                        columns.setdefault(key, np.zeros((len(clips), x.shape[1]), np.float32))[rows] = x
        np.savez(args.out / "embeddings.npz", **columns)
        (args.out / "train_logs.json").write_text(json.dumps(logs, indent=1))
    report(clips, columns, list(recipes), args.protocols, args.out)


def _row(label: str, result: dict, against: dict[str, dict]) -> dict:
    """One table row: per corpus top-1 and mAP [95 % interval over singers], EER, and the paired mAP difference
    [interval] to each reference in `against` (same queries)."""
    row = {"embedding": label}
    for name, m in result.items():
        short = name.split("-")[0]
        row[f"{short} top-1"] = f"{m['top1']:.3f} [{m['top1_ci'][0]:.2f}, {m['top1_ci'][1]:.2f}]"
        row[f"{short} mAP"] = f"{m['map']:.3f} [{m['map_ci'][0]:.2f}, {m['map_ci'][1]:.2f}]"
        row[f"{short} EER"] = f"{m['eer']:.3f}"
        for ref, other in against.items():
            diff = m["ap"] - other[name]["ap"]
            low, high = singer_interval(diff, m["singer"])
            row[f"{short} mAP - {ref}"] = f"{diff.mean():+.3f} [{low:+.2f}, {high:+.2f}]"
    return row


def query_column(name: str, cut: bool) -> str:
    """The column of `name`'s embeddings of the queries cut to 10 s (`cut`) or of the full clips."""
    if not cut:
        return name
    return name.replace("_note", "_note@10") if "_note" in name else name + "@10"


def fusions_of(pair: dict, tag: str) -> dict[str, dict]:
    """The fusions reported for a recipe: all five slots, each slot left out, and the smaller sets the note
    copy's and `expression`'s roles are decided on (only those whose embeddings the run computed)."""
    slots = {n: pair.get(f"{tag}:{n}") for n in ("timbre", "expression", "timbre_note", "expression_note")}
    slots["mood"] = pair["mood"]
    sets = {"five": EMBEDDING_NAMES, "timbre + timbre_note": ("timbre", "timbre_note"),
            "timbre + expression": ("timbre", "expression"), "timbre + expression + timbre_note":
            ("timbre", "expression", "timbre_note")}  # fmt: skip
    sets |= {f"five without {drop}": tuple(n for n in EMBEDDING_NAMES if n != drop) for drop in EMBEDDING_NAMES}
    return {f"{tag}: {label}": {n: slots[n] for n in names} for label, names in sets.items()
            if all(slots[n] is not None for n in names)}  # fmt: skip


def report(
    clips: pd.DataFrame, columns: dict[str, np.ndarray], recipes: list[str], protocols: list[str], out: Path
) -> None:
    """Markdown tables (single embeddings, fusions, paired differences to GE2E and to each recipe's `timbre`) per
    protocol and condition, and the fitted weights, into `out`."""
    lines, weights = [], {}
    for protocol, (cond, cut) in itertools.product(protocols, (("full clips", False), ("queries cut to 10 s", True))):
        names = {c.removeprefix(f"{protocol}|"): c for c in columns
                 if "@10" not in c and ("|" not in c or c.startswith(f"{protocol}|"))}  # fmt: skip
        pair = {label: (columns[c], columns[query_column(c, cut)]) for label, c in names.items()}
        results = {label: score(clips, protocol, *pair[label]) for label in sorted(pair)}
        fusions = {"GE2E + GE2E on the note-adjusted copy": {"timbre": pair["ge2e"], "timbre_note": pair["ge2e_note"]}}
        for tag in recipes:
            fusions |= fusions_of(pair, tag)
        for label, parts in fusions.items():
            results[f"fused: {label}"], weights[f"{protocol} / {cond} / {label}"] = fused_score(clips, protocol, parts)
        refs = {"GE2E": results["ge2e"]} | {f"{t}:timbre": results[f"{t}:timbre"] for t in recipes
                                            if f"{t}:timbre" in results}  # fmt: skip
        table = [_row(label, r, refs) for label, r in results.items()]
        lines += [f"### {protocol}, {cond}", "", pd.DataFrame(table).to_markdown(index=False), ""]
    text = "\n".join(lines)
    (out / "report.md").write_text(text)
    (out / "weights.json").write_text(json.dumps(weights, indent=1))
    print(text)


if __name__ == "__main__":
    main()
