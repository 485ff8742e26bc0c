"""Leave-singers-out cross-validation of the GE2E-based encoders over every dev singer (issue #15).

The dev singers of gtsinger-dev and mir1k-dev are split in two folds (gtsinger-dev by the project's historical
folds A and B, mir1k-dev alternately by name). For each recipe and fold, the timbre and expression encoders are
fine-tuned on PJS and the *other* fold's singers and embed this fold's clips; retrieval (song-disjoint singer
retrieval, `voicerec.tools.evaluation`) stays within a fold and a dataset, and the queries of both folds are pooled, so
every dev singer is a query once and no clip is embedded by a model that heard its singer. Clips go through the
app's path (load, pitch, note adjustment) once, cached under `--out`; GE2E's LSTM states of every window are
computed once too (the recipes train only the projection, training/finetune_ge2e.py).

Per dataset: top-1 and mAP with a 95 % bootstrap interval over query singers, and the EER over the pooled pairs,
with full clips and with queries cut to their first 10 s. Fusion weights are fitted leave-one-singer-out (Fisher
rule, training/tune_weights.py) over the query singers of both datasets; an embedding is dropped from a fusion by
giving it a constant cosine, which the Fisher rule weighs 0.

    OMP_NUM_THREADS=1 python -m training.crossval_ge2e --data ../shared/data --ge2e runs/ge2e --out runs/cv \\
        --recipes training/configs/ge2e_timbre.yaml
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from tqdm.auto import tqdm

from training.finetune_ge2e import clip_states, inference_states, load_config, train
from training.tune_weights import Fold, fisher_weights, leave_one_singer_out
from voicerec import GE2EFeatureExtractor, GE2EModel, load_audio
from voicerec.audio.input import AudioInputError
from voicerec.audio.pitch import track_pitch
from voicerec.embeddings import EMBEDDING_NAMES, _load
from voicerec.tools.evaluation import MFCCEmbedder, equal_error_rate, ranking_metrics

DATASETS = ("gtsinger-dev", "mir1k-dev")
FOLD_A = {"DE-Tenor-1", "EN-Alto-1", "ES-Soprano-1", "IT-Bass-2", "KO-Soprano-1"}
CUT = 10 * 16000
"""Queries cut to their first 10 s (the app's typical recording)."""


def dev_clips(data: Path) -> pd.DataFrame:
    """Singing clips of both dev sets with their fold (0 or 1)."""
    frames = []
    for name in DATASETS:
        m = pd.read_csv(data / name / "manifest.csv")
        m = m[m["kind"] == "singing"].copy()
        m["dataset"], m["path"] = name, [str(data / name / p) for p in m["path"]]
        singers = sorted(m["singer"].unique())
        fold = {s: int(s not in FOLD_A) if name == "gtsinger-dev" else i % 2 for i, s in enumerate(singers)}
        m["fold"] = m["singer"].map(fold)
        frames.append(m)
    return pd.concat(frames, ignore_index=True)


def app_waves(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The recording as the app sees it and its f0 every 10 ms (NaN unvoiced), which the note adjustment moves;
    empty if the app refuses it (some mir1k-dev clips hold under 3 s of singing)."""
    try:
        audio = load_audio(path)
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


def dev_folds(clips: pd.DataFrame, cosines) -> list[Fold]:
    """One `Fold` per dataset and fold of singers, its cosines `cosines(rows)` (a dict over EMBEDDING_NAMES)."""
    folds = []
    for name in DATASETS:
        for fold in (0, 1):
            rows = np.flatnonzero((clips["dataset"] == name) & (clips["fold"] == fold))
            sub = clips.iloc[rows]
            f = Fold(f"{name}/{fold}", {n: np.eye(len(rows), 1) for n in EMBEDDING_NAMES},
                     sub["singer"].to_numpy(), sub["song"].to_numpy())  # fmt: skip
            f.cos = cosines(rows)
            folds.append(f)
    return folds


def pooled_scores(folds: list[Fold], sims: dict[str, np.ndarray]) -> dict:
    """Per dataset, the queries of both folds pooled, each fold ranked by its own similarity matrix."""
    out = {}
    for name in DATASETS:
        ap, hit, singer, scores, labels = [], [], [], [], []
        for f in (f for f in folds if f.name.startswith(name)):
            s = sims[f.name]
            for r in np.flatnonzero(f.is_query):
                m = ranking_metrics(s[r : r + 1], f.candidates[r : r + 1], f.positives[r : r + 1])
                if m["queries"]:
                    ap.append(m["map"]), hit.append(m["top1"]), singer.append(f.singers[r])
                    scores.append(s[r][f.candidates[r]]), labels.append(f.positives[r][f.candidates[r]])
        out[name] = summarise(np.array(ap), np.array(hit, dtype=float), np.array(singer), scores, labels)
    return out


def score(clips: pd.DataFrame, full: np.ndarray, queries: np.ndarray) -> dict:
    """Within-fold retrieval of one embedding per dataset, queries pooled over the folds."""
    folds = dev_folds(clips, lambda rows: dict.fromkeys(EMBEDDING_NAMES, queries[rows] @ full[rows].T))
    return pooled_scores(folds, {f.name: f.cos[EMBEDDING_NAMES[0]] for f in folds})


def fused_score(clips: pd.DataFrame, parts: dict[str, tuple[np.ndarray, np.ndarray] | None]) -> tuple[dict, dict]:
    """Fisher fusion of the five slots (each (full, queries) columns, or None to leave it out), weights fitted
    leave-one-singer-out over both datasets; returns the per-dataset scores and the weights fitted on all."""

    def cosines(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {n: parts[n][1][rows] @ parts[n][0][rows].T if parts.get(n) else np.zeros((len(rows),) * 2)
                for n in EMBEDDING_NAMES}  # fmt: skip

    folds = dev_folds(clips, cosines)
    held_out, _ = leave_one_singer_out(fisher_weights, folds)
    return pooled_scores(folds, held_out), fisher_weights([f.all_queries() for f in folds])


def compute_states(args, clips, waves, trunk, extractor, view_cfg) -> dict:
    """Window states of every dev clip and PJS song (`ClipStates`, note-adjusted copy included), and of the dev
    clips' views the tables read: "note" (the note-adjusted copy), "plain@10" and "note@10" (cut to 10 s)."""
    cache = args.out / "states.pkl"
    if cache.exists():
        states = pickle.loads(cache.read_bytes())
    else:
        dev = [clip_states(trunk, extractor, w, s, view_cfg, f0)  # the pitch the app path already tracked
               for (w, f0), s in tqdm(list(zip(waves, clips["singer"], strict=True)), desc="states")]  # fmt: skip
        states = {"dev": dev, "note": [c.note for c in dev]}
        for key, source, note in (("plain@10", [c.plain for c in dev], False), ("note@10", states["note"], True)):
            states[key] = [inference_states(trunk, extractor, w[:CUT], f0 if note else None) if len(w) > CUT else full
                           for (w, f0), full in zip(waves, source, strict=True)]  # fmt: skip
    for c, note in zip(states["dev"], states["note"], strict=True):  # caches made before ClipStates.note
        c.note = note
    if "pjs" not in states or any(c.note is None for c in states["pjs"]):
        pjs = args.data / "pjs"
        m = pd.read_csv(pjs / "manifest.csv")
        states["pjs"] = [clip_states(trunk, extractor, load_audio(pjs / p).samples, "PJS", view_cfg)
                         for p in tqdm(m.loc[m["kind"] == "singing", "path"], desc="pjs states")]  # fmt: skip
        cache.write_bytes(pickle.dumps(states))
    return states


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
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    clips = dev_clips(args.data)
    waves = cached_waves(clips["path"].tolist(), args.out / "app")
    usable = np.array([w[0].size > 0 for w in waves])
    print(f"{(~usable).sum()} of {len(clips)} clips refused by the app's input checks, left out")
    clips, waves = clips[usable].reset_index(drop=True), [w for w, ok in zip(waves, usable, strict=True) if ok]
    recipes = dict(recipe(spec) for spec in args.recipes)
    first = next(iter(recipes.values()))
    extractor = GE2EFeatureExtractor.from_pretrained(args.ge2e)
    trunk = GE2EModel.from_pretrained(args.ge2e).eval()
    trunk.config.windows_per_second = first.get("windows_per_second", trunk.config.windows_per_second)
    states = compute_states(args, clips, waves, trunk, extractor, first["views"])
    plain = [c.plain for c in states["dev"]]
    views = {"": plain, "_note": states["note"], "@10": states["plain@10"], "_note@10": states["note@10"]}

    def columns_of(model: GE2EModel, prefix: str, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": embed_states(model, [v[i] for i in rows] if rows is not None else v)
                for k, v in views.items()}  # fmt: skip

    base = args.out / "baselines.npz"
    if base.exists():
        columns = dict(np.load(base))
    else:
        columns = columns_of(trunk, "ge2e")
        columns.update({f"ge2e/2{k}": embed_states(trunk, v, every=2) for k, v in views.items()})
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
        for variant in ("timbre", "expression"):
            for fold in (0, 1):
                config = copy.deepcopy(config_of)
                config.update(variant=variant, init=args.ge2e)
                train_clips = [c for c, f in zip(states["dev"], clips["fold"], strict=True) if f != fold]
                model, log = train(config, train_clips + states["pjs"])
                logs[f"{tag}/{variant}/{fold}"] = log[-1] | ({"last": log[-2]} if len(log) > 1 else {})
                rows = np.flatnonzero(clips["fold"] == fold)
                for key, x in columns_of(model, f"{tag}:{variant}", rows).items():
                    columns.setdefault(key, np.zeros((len(clips), x.shape[1]), np.float32))[rows] = x
    np.savez(args.out / "embeddings.npz", **columns)
    (args.out / "train_logs.json").write_text(json.dumps(logs, indent=1))
    report(clips, columns, list(recipes), args.out)


def _row(label: str, result: dict) -> dict:
    row = {"embedding": label}
    for name, m in result.items():
        short = name.split("-")[0]
        row[f"{short} top-1"] = f"{m['top1']:.3f} [{m['top1_ci'][0]:.2f}, {m['top1_ci'][1]:.2f}]"
        row[f"{short} mAP"] = f"{m['map']:.3f} [{m['map_ci'][0]:.2f}, {m['map_ci'][1]:.2f}]"
        row[f"{short} EER"] = f"{m['eer']:.3f}"
    return row


def query_column(name: str, cut: bool) -> str:
    """The column of `name`'s embeddings of the queries cut to 10 s (`cut`) or of the full clips."""
    if not cut:
        return name
    return name.replace("_note", "_note@10") if "_note" in name else name + "@10"


def report(clips: pd.DataFrame, columns: dict[str, np.ndarray], recipes: list[str], out: Path) -> None:
    """Markdown tables (single embeddings, fusions) for both conditions, and the fitted weights, into `out`."""
    lines, weights = [], {}
    for cond, cut in (("full clips", False), ("queries cut to 10 s", True)):
        rows = [_row(name, score(clips, columns[name], columns[query_column(name, cut)]))
                for name in sorted(c for c in columns if "@10" not in c)]  # fmt: skip
        pair = {name: (columns[name], columns[query_column(name, cut)]) for name in columns if "@10" not in name}
        fusions = {"GE2E + GE2E on the note-adjusted copy": {"timbre": pair["ge2e"], "timbre_note": pair["ge2e_note"]}}
        for tag in recipes:
            five = {n: pair[f"{tag}:{n}"] for n in ("timbre", "expression", "timbre_note", "expression_note")}
            five["mood"] = pair["mood"]
            fusions[f"{tag}: five"] = five
            for drop in EMBEDDING_NAMES:
                fusions[f"{tag}: five without {drop}"] = {k: v for k, v in five.items() if k != drop}
        for label, parts in fusions.items():
            result, w = fused_score(clips, parts)
            weights[f"{cond} / {label}"] = w
            rows.append(_row(f"fused: {label}", result))
        lines += [f"### {cond}", "", pd.DataFrame(rows).to_markdown(index=False), ""]
    text = "\n".join(lines)
    (out / "report.md").write_text(text)
    (out / "weights.json").write_text(json.dumps(weights, indent=1))
    print(text)


if __name__ == "__main__":
    main()
