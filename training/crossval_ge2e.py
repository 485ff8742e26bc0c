"""Leave-singers-out cross-validation of the GE2E-based encoders over every dev singer (issue #15).

The dev singers of gtsinger-dev and mir1k-dev are split in two folds (gtsinger-dev by the project's historical
folds A and B, mir1k-dev alternately by name). For each recipe and fold, the timbre and expression encoders are
fine-tuned on PJS and the *other* fold's singers, and embed this fold's clips; retrieval (song-disjoint singer
retrieval, `voicerec.evaluation`) stays within a fold and a dataset, and the queries of both folds are pooled, so
every dev singer is a query once and no clip is embedded by a model that heard its singer. Clips go through the
app's path (load, pitch, note adjustment), once, cached under `--out`.

Figures per dataset: top-1, mAP (95 % bootstrap interval over query singers) and EER over the pooled pairs, with
full clips and with queries cut to their first 10 s. Fusion weights are fitted leave-one-singer-out (Fisher rule,
training/tune_weights.py) over all query singers of both datasets.

    OMP_NUM_THREADS=1 python -m training.crossval_ge2e --data ../shared/data --ge2e runs/ge2e --out runs/cv
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from tqdm.auto import tqdm

from training.finetune_ge2e import MelViews, load_config, make_views, train
from training.tune_weights import Fold, fisher_weights, leave_one_singer_out, paired_difference
from voicerec import GE2EFeatureExtractor, load_audio
from voicerec.embeddings import EMBEDDING_NAMES
from voicerec.evaluation import MFCCEmbedder, ranking_metrics, retrieval_masks
from voicerec.note_adjust import adjust_to_reference
from voicerec.pitch import track_pitch

DATASETS = ("gtsinger-dev", "mir1k-dev")
FOLD_A = {"DE-Tenor-1", "EN-Alto-1", "ES-Soprano-1", "IT-Bass-2", "KO-Soprano-1"}
QUERY_SECONDS = 10.0


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
    """The recording as the app sees it, and its note-adjusted copy."""
    audio = load_audio(path)
    adjusted, _ = adjust_to_reference(audio.samples, audio.sampling_rate, track_pitch(audio.samples, 16000))
    return audio.samples, np.asarray(adjusted, dtype=np.float32)


def cached_waves(paths: list[str], cache: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    cache.mkdir(parents=True, exist_ok=True)
    files = [cache / (hashlib.sha1(p.encode()).hexdigest()[:16] + ".npz") for p in paths]
    todo = [(p, f) for p, f in zip(paths, files, strict=True) if not f.exists()]
    with ProcessPoolExecutor(2) as pool:
        for (_, f), (plain, note) in tqdm(zip(todo, pool.map(app_waves, [p for p, _ in todo], chunksize=4),
                                              strict=True), total=len(todo), desc="app path"):  # fmt: skip
            np.savez(f, plain=plain, note=note)
    return [(z["plain"], z["note"]) for z in (np.load(f) for f in files)]


@torch.no_grad()
def embed(model, extractor, waves: list[np.ndarray], chunk: int = 8) -> np.ndarray:
    out = []
    for i in range(0, len(waves), chunk):
        inputs = extractor(waves[i : i + chunk], return_tensors="pt")
        out.append(model(**inputs).embeddings.float().numpy())
    x = np.concatenate(out)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def views_of(model_pair, extractor, waves, rows) -> dict[str, np.ndarray]:
    """Full and 10 s embeddings of the plain and note-adjusted clips `rows`."""
    plain = [waves[i][0] for i in rows]
    note = [waves[i][1] for i in rows]
    cut = int(QUERY_SECONDS * 16000)
    return {"": embed(model_pair, extractor, plain), "_note": embed(model_pair, extractor, note),
            "@10": embed(model_pair, extractor, [w[:cut] for w in plain]),
            "_note@10": embed(model_pair, extractor, [w[:cut] for w in note])}  # fmt: skip


def singer_interval(values: np.ndarray, singers: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of the mean of per-query `values`, resampling whole query singers."""
    names, group = np.unique(singers, return_inverse=True)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(names), np.full(len(names), 1 / len(names)), size=5000)[:, group]
    boot = (counts * values).sum(1) / counts.sum(1)
    return float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def score(clips: pd.DataFrame, full: np.ndarray, queries: np.ndarray | None = None) -> dict:
    """Within-fold retrieval per dataset, queries pooled over the folds: top-1, mAP with singer intervals, EER."""
    out = {}
    for name in DATASETS:
        ap, hit, singer, sims, labels = [], [], [], [], []
        for fold in (0, 1):
            rows = np.flatnonzero((clips["dataset"] == name) & (clips["fold"] == fold))
            sub = clips.iloc[rows]
            is_query, candidates, positives = retrieval_masks(sub["singer"].to_numpy(), sub["song"].to_numpy())
            q = full[rows] if queries is None else queries[rows]
            s = q @ full[rows].T
            for r in np.flatnonzero(is_query):
                m = ranking_metrics(s[r : r + 1], candidates[r : r + 1], positives[r : r + 1])
                if m["queries"]:
                    ap.append(m["map"]), hit.append(m["top1"]), singer.append(sub["singer"].iloc[r])
                    sims.append(s[r][candidates[r]]), labels.append(positives[r][candidates[r]])
        ap, hit, singer = np.array(ap), np.array(hit, dtype=float), np.array(singer)
        from voicerec.evaluation import equal_error_rate

        out[name] = {"top1": hit.mean(), "top1_ci": singer_interval(hit, singer), "map": ap.mean(),
                     "map_ci": singer_interval(ap, singer), "eer": equal_error_rate(np.concatenate(sims),
                     np.concatenate(labels)), "queries": len(ap), "singers": len(set(singer)), "ap": ap,
                     "hit": hit, "singer": singer}  # fmt: skip
    return out


def train_fold(recipe: dict, variant: str, views: list[MelViews], exclude: set[str], ge2e: str):
    config = copy.deepcopy(recipe)
    config.update(variant=variant, init=ge2e)
    model, log = train(config, [v for v in views if v.singer not in exclude])
    return model, log


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding gtsinger-dev, mir1k-dev, pjs")
    parser.add_argument("--ge2e", required=True, help="GE2E as shipped, converted (training/export_ge2e.py)")
    parser.add_argument("--mood", default="hub/voicerec-tjae")
    parser.add_argument(
        "--recipes",
        nargs="+",
        default=["training/configs/ge2e_timbre.yaml"],
        help="configs; each is run for both variants (its `variant` is overridden)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    clips = dev_clips(args.data)
    waves = cached_waves(clips["path"].tolist(), args.out / "waves")
    extractor = GE2EFeatureExtractor.from_pretrained(args.ge2e)
    from voicerec import GE2EModel
    from voicerec.embeddings import _load

    columns: dict[str, np.ndarray] = {}
    every = np.arange(len(clips))
    ge2e = GE2EModel.from_pretrained(args.ge2e).eval()
    for suffix, x in views_of(ge2e, extractor, waves, every).items():
        columns[f"ge2e{suffix}"] = x
    mood, mood_extractor = _load(args.mood)
    with torch.no_grad():
        columns["mood"] = np.concatenate([mood(**mood_extractor([w[0]], return_tensors="pt")).embeddings.numpy()
                                          for w in tqdm(waves, desc="mood")])  # fmt: skip
    mfcc = MFCCEmbedder()
    plain = [w[0] for w in waves]
    mfcc.fit(plain)
    columns["mfcc"] = mfcc(plain)
    pjs = args.data / "pjs"
    pjs_manifest = pd.read_csv(pjs / "manifest.csv")
    pjs_paths = [str(pjs / p) for p in pjs_manifest[pjs_manifest["kind"] == "singing"]["path"]]
    view_cfg = load_config(args.recipes[0])["views"]
    views = [make_views(w[0], s, extractor, view_cfg) for w, s in
             tqdm(list(zip(waves, clips["singer"], strict=True)), desc="views")]  # fmt: skip
    views += [make_views(load_audio(p).samples, "PJS", extractor, view_cfg) for p in tqdm(pjs_paths, desc="pjs")]
    logs = {}
    for recipe_path in args.recipes:
        recipe = load_config(recipe_path)
        tag = Path(recipe_path).stem
        for variant in ("timbre", "expression"):
            for fold in (0, 1):
                held = set(clips.loc[clips["fold"] == fold, "singer"])
                model, log = train_fold(recipe, variant, views, held, args.ge2e)
                logs[f"{tag}/{variant}/{fold}"] = log[-1]
                rows = np.flatnonzero(clips["fold"] == fold)
                for suffix, x in views_of(model, extractor, waves, rows).items():
                    columns.setdefault(f"{tag}:{variant}{suffix}", np.zeros((len(clips), x.shape[1]), np.float32))
                    columns[f"{tag}:{variant}{suffix}"][rows] = x
        np.savez(args.out / "embeddings.npz", **columns)
    (args.out / "train_logs.json").write_text(json.dumps(logs, indent=1))
    clips.to_csv(args.out / "clips.csv", index=False)
    report(clips, columns, args.out)


def fused_per_query(clips: pd.DataFrame, parts: dict[str, np.ndarray], queries: dict[str, np.ndarray]) -> dict:
    """Fisher-weighted fusion, weights fitted leave-one-singer-out over both datasets' query singers."""
    folds = []
    for name in DATASETS:
        for fold in (0, 1):
            rows = np.flatnonzero((clips["dataset"] == name) & (clips["fold"] == fold))
            f = Fold(f"{name}/{fold}", {n: parts[n][rows] for n in EMBEDDING_NAMES},
                     clips["singer"].to_numpy()[rows], clips["song"].to_numpy()[rows])  # fmt: skip
            f.cos = {n: queries[n][rows] @ parts[n][rows].T for n in EMBEDDING_NAMES}
            f.rows = rows
            folds.append(f)
    held_out, chosen = leave_one_singer_out(fisher_weights, folds)
    every = fisher_weights([f.all_queries() for f in folds])
    return {"folds": folds, "sims": held_out, "weights": chosen, "all": every}


def report(clips: pd.DataFrame, columns: dict[str, np.ndarray], out: Path) -> None:
    rows, per_query = [], {}
    for cond, qs in (("full", ""), ("10 s", "@10")):
        for name in sorted(c for c in columns if "@10" not in c):
            q = columns.get(name.replace("_note", "_note@10") if "_note" in name else name + "@10")
            result = score(clips, columns[name], q if qs else None)
            per_query[cond, name] = result
            for ds, m in result.items():
                rows.append({"condition": cond, "embedding": name, "dataset": ds, **{k: m[k] for k in
                             ("top1", "top1_ci", "map", "map_ci", "eer", "queries", "singers")}})  # fmt: skip
    table = pd.DataFrame(rows)
    table.to_csv(out / "table.csv", index=False)
    print(table.to_string())
    recipes = sorted({c.split(":")[0] for c in columns if ":" in c})
    summary = {}
    for tag in recipes:
        parts = {"timbre": columns[f"{tag}:timbre"], "expression": columns[f"{tag}:expression"],
                 "timbre_note": columns[f"{tag}:timbre_note"], "expression_note": columns[f"{tag}:expression_note"],
                 "mood": columns["mood"]}  # fmt: skip
        for cond, suffix in (("full", ""), ("10 s", "@10")):
            queries = {n: columns.get(f"{tag}:{n}{suffix}" if n != "mood" else "mood", parts[n]) for n in parts}
            fused = fused_per_query(clips, parts, queries)
            for ds in DATASETS:
                folds = [f for f in fused["folds"] if f.name.startswith(ds)]
                ap, hit, singers = [], [], []
                for f in folds:
                    a, h = f.per_query(fused["sims"][f.name])
                    ap.append(a), hit.append(h), singers.append(f.singers[f.is_query])
                ap, hit, singers = np.concatenate(ap), np.concatenate(hit).astype(float), np.concatenate(singers)
                ref = per_query[cond, "ge2e"][ds]
                summary[f"{tag} fused {cond} {ds}"] = {
                    "top1": hit.mean(), "top1_ci": singer_interval(hit, singers), "map": ap.mean(),
                    "map_ci": singer_interval(ap, singers),
                    "vs_ge2e_map": paired_difference(ap, ref["ap"], singers),
                    "vs_ge2e_top1": paired_difference(hit, ref["hit"], singers),
                    "weights_all": fused["all"],
                }  # fmt: skip
    (out / "fusion.json").write_text(json.dumps(summary, indent=1, default=float))
    print(yaml.safe_dump(json.loads(json.dumps(summary, default=float)), sort_keys=False))


if __name__ == "__main__":
    main()
