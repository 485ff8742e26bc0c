"""Choose the fusion weights by measurement, cross-fitted so that no reported figure is tuned or trained on its
own singers: song-disjoint singer retrieval.

The shipped weights (`voicerec.embeddings.DEFAULT_WEIGHTS`) are chosen by `training/crossval_ge2e.py`, which calls
this module's rules (`fisher_weights`, `leave_one_singer_out`) on every dev singer under both of its protocols:
leave-one-corpus-out (the encoders and WCCN trained without the query corpus: what predicts unseen singers) and
leave-singers-out, each with intervals over singers (docs/fusion.md). Both gave Fisher weights of 0.24-0.25 for
the four GE2E-based embeddings and 0.02-0.03 for `mood` (2026-12-03, issue #26), hence 0.25 x 4 and mood 0. This
script's own command, below, is the earlier and smaller check on gtsinger-dev alone:

    OMP_NUM_THREADS=1 python -m training.tune_weights --data ../shared/data/gtsinger-dev --out runs/weights \
        --fold-a-models timbre=runs/heldA/voicerec-sscl-timbre --fold-b-models timbre=runs/heldB/voicerec-sscl-timbre

gtsinger-dev's ten singers form two folds: A (DE-Tenor-1, EN-Alto-1, ES-Soprano-1, IT-Bass-2, KO-Soprano-1) and
B (the other five). Each fold's clips are embedded through the app's path (load_audio, pitch, note adjustment, the
three encoders) by encoders that never trained on that fold (`--fold-a-models`, `--fold-b-models`; a name left out
keeps its default), so neither fold flatters the embeddings that learnt its singers. Retrieval stays within one
fold: cosines of different models are not comparable. The embeddings are cached in --out per fold, clip list and
model fingerprints (--out never ships: nothing computed from this data may enter the repo).

Only a few singers have two songs (the protocol's query singers), so one fold alone is too noisy to tune on.
Fused figures therefore come from leave-one-singer-out over the query singers of both folds: for each one, weights
fitted on the *other* query singers of both folds (the held-out singer's clips also removed from their candidates)
score the held-out singer's queries. Every query is so scored once, by weights that never saw its singer; the
per-query results are pooled over both folds and compared, query by query, with the best single embedding (paired
bootstrap intervals, resampling queries and, since one singer's queries are not independent, whole singers).

Two rules fit the weights. `fisher_weights` (the default, and DEFAULT_WEIGHTS) weighs each cosine by how far it
separates same-singer from different-singer pairs: the gap between the two means over their variance, i.e. the
Fisher discriminant with the five cosines taken as independent (diagonal LDA). It has no free parameter, so six
singers cannot steer it far. `best_weights`, the grid point (multiples of 1/`--steps`) with the best mAP, is
reported beside it: with a handful of singers the best of 70 points is mostly noise, which its leave-one-out row
and the spread of its choices show.
Scales of the cosines differ between embeddings and only the spread matters for a ranking, so the per-fold
tables also list each embedding's cosine mean and spread.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from voicerec.audio.input import load_audio
from voicerec.audio.pitch import track_pitch
from voicerec.defaults import HUB_DIR
from voicerec.embeddings import EMBEDDING_NAMES, Embedder, weights_fingerprint
from voicerec.tools.evaluation import ranking_metrics, read_eval_set, retrieval_masks

FOLD_A = ("DE-Tenor-1", "EN-Alto-1", "ES-Soprano-1", "IT-Bass-2", "KO-Soprano-1")
MODEL_NAMES = ("timbre", "expression", "mood")
DEFAULT_MODELS = {
    "A": {"timbre": str(HUB_DIR / "voicerec-sscl-timbre"), "expression": str(HUB_DIR / "voicerec-sscl-expression"),
          "mood": str(HUB_DIR / "voicerec-tjae")},
    "B": {"timbre": "runs/r3/heldB/voicerec-sscl-timbre",
          "expression": "runs/r3/heldB/voicerec-sscl-expression", "mood": str(HUB_DIR / "voicerec-tjae")},
}  # fmt: skip
"""Encoders that never trained on each fold (the shipped SSCL encoders trained on pjs + fold B; the fold B ones, made
by the same configs with fold B's singers and their WORLD pseudo-singers left out instead, on pjs + fold A).
There is one TJAE (`mood`), trained on pjs + fold B (its card): its fold B figures are in sample."""

Weights = dict[str, float]


def parse_models(spec: str, defaults: dict[str, str]) -> dict[str, str]:
    """`timbre=PATH,expression=PATH[,mood=PATH]` merged over `defaults` (a name left out keeps its default)."""
    models = dict(defaults)
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, path = item.partition("=")
        if not sep or name not in MODEL_NAMES or not path:
            raise ValueError(f"Bad model spec {item!r}: use NAME=PATH with NAME one of {', '.join(MODEL_NAMES)}.")
        models[name] = path
    return models


def simplex_grid(steps: int) -> list[Weights]:
    """Every weighting of the five embeddings in multiples of 1/steps that sums to 1."""
    grid = []
    for combo in itertools.product(range(steps + 1), repeat=len(EMBEDDING_NAMES)):
        if sum(combo) == steps:
            grid.append({n: c / steps for n, c in zip(EMBEDDING_NAMES, combo, strict=True)})
    return grid


def embed_all(paths: list[Path], embedder: Embedder) -> dict[str, np.ndarray]:
    """The five embeddings of every clip, computed as the app computes them."""
    rows = {n: [] for n in EMBEDDING_NAMES}
    for path in tqdm(paths, desc="embedding clips"):
        audio = load_audio(path)
        out = embedder.embed(audio, track_pitch(audio.samples, audio.sampling_rate))
        for n in EMBEDDING_NAMES:
            rows[n].append(out[n])
    return {n: np.stack(v) for n, v in rows.items()}


def embed_cached(paths: list[Path], models: dict[str, str], cache_dir: Path) -> dict[str, np.ndarray]:
    """`embed_all` with `models`, cached in `cache_dir` under the clip list and the models' fingerprints."""
    key = hashlib.sha256("\n".join(map(str, paths)).encode())
    for name in MODEL_NAMES:
        key.update(f"{name}={weights_fingerprint(models[name]) or Path(models[name]).resolve()}".encode())
    cache = cache_dir / f"embeddings-{key.hexdigest()[:16]}.npz"
    if cache.exists():
        return dict(np.load(cache))
    emb = embed_all(paths, Embedder.from_pretrained(**models))
    np.savez(cache, **emb)
    return emb


class Fold:
    """One group of singers' clips: cosines of each embedding and the retrieval protocol's masks among them."""

    def __init__(self, name: str, emb: dict[str, np.ndarray], singers: np.ndarray, songs: np.ndarray):
        self.name = name
        self.cos = {n: emb[n] @ emb[n].T for n in EMBEDDING_NAMES}  # unit vectors: dot products are cosines
        self.singers = np.asarray(singers)
        self.is_query, self.candidates, self.positives = retrieval_masks(self.singers, songs)
        self.query_singers = sorted(set(self.singers[self.is_query]))

    def fused(self, w: Weights) -> np.ndarray:
        return sum(w[n] * self.cos[n] for n in EMBEDDING_NAMES)

    def metrics(self, sims: np.ndarray, rows: np.ndarray | None = None, candidates: np.ndarray | None = None) -> dict:
        rows = np.flatnonzero(self.is_query) if rows is None else rows
        candidates = self.candidates if candidates is None else candidates
        return ranking_metrics(sims[rows], candidates[rows], (self.positives & candidates)[rows])

    def per_query(self, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(AP, top-1 hit) of every query row, in row order: what pooling across folds averages."""
        scores = [self.metrics(sims, np.array([row])) for row in np.flatnonzero(self.is_query)]
        return np.array([m["map"] for m in scores]), np.array([m["top1"] for m in scores])

    def all_queries(self) -> Part:
        return self, np.flatnonzero(self.is_query), self.candidates

    def without(self, singer: str) -> Part:
        """The other singers' queries, with `singer`'s clips removed from their candidates."""
        mine = self.singers == singer
        return self, np.flatnonzero(self.is_query & ~mine), self.candidates & ~mine[None, :]

    def spread(self, name: str) -> tuple[float, float]:
        pairs = self.cos[name][~np.eye(len(self.singers), dtype=bool)]
        return float(pairs.mean()), float(pairs.std())


Part = tuple[Fold, np.ndarray, np.ndarray]
"""Tuning queries: (fold, query rows, candidate mask)."""


Rule = Callable[[list[Part]], Weights]
"""Fits fusion weights to tuning queries."""


def pair_cosines(parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    """The five cosines of every (query, candidate) pair of `parts`, one row per pair, and whether the pair is
    one singer."""
    cosines, same = [], []
    for fold, rows, candidates in parts:
        pairs = np.zeros_like(candidates)
        pairs[rows] = candidates[rows]
        cosines.append(np.stack([fold.cos[n][pairs] for n in EMBEDDING_NAMES], axis=1))
        same.append(fold.positives[pairs])
    return np.concatenate(cosines), np.concatenate(same)


def fisher_weights(parts: list[Part]) -> Weights:
    """Each cosine's same-singer minus different-singer mean over its within-class variance (diagonal LDA),
    negative gaps set to 0, scaled to sum 1."""
    cosines, same = pair_cosines(parts)
    if same.all() or not same.any():
        raise ValueError("Fitting weights needs both same-singer and different-singer pairs.")
    gap = cosines[same].mean(axis=0) - cosines[~same].mean(axis=0)
    spread = (cosines[same].var(axis=0) + cosines[~same].var(axis=0)) / 2
    w = np.clip(gap, 0.0, None) / np.maximum(spread, 1e-12)
    if w.sum() <= 0:
        raise ValueError("No embedding scores same-singer pairs above different-singer pairs.")
    return {n: float(v) for n, v in zip(EMBEDDING_NAMES, w / w.sum(), strict=True)}


def best_weights(grid: list[Weights], parts: list[Part]) -> Weights:
    """The grid point with the best mAP over all queries of `parts`; ties go to the earlier point (stable)."""
    scores = []
    for w in grid:
        results = [fold.metrics(fold.fused(w), rows, cand) for fold, rows, cand in parts]
        results = [m for m in results if m["queries"]]
        scores.append(sum(m["map"] * m["queries"] for m in results) / sum(m["queries"] for m in results))
    return grid[int(np.argmax(scores))]


def leave_one_singer_out(rule: Rule, folds: list[Fold]) -> tuple[dict[str, np.ndarray], dict[tuple[str, str], Weights]]:
    """For each query singer of each fold, the weights `rule` fits to the other query singers of all folds;
    returns each fold's similarity matrix whose query rows were each fused by the weights that did not see their
    singer, and the weights chosen per (fold, held-out singer)."""
    held_out, chosen = {}, {}
    for fold in folds:
        held_out[fold.name] = np.zeros_like(fold.cos[EMBEDDING_NAMES[0]])
        for singer in tqdm(fold.query_singers, desc=f"leave-one-singer-out, fold {fold.name}", leave=False):
            others = [f.without(singer) if f is fold else f.all_queries() for f in folds]
            w = rule(others)
            rows = np.flatnonzero(fold.is_query & (fold.singers == singer))
            held_out[fold.name][rows] = fold.fused(w)[rows]
            chosen[fold.name, singer] = w
    return held_out, chosen


def pooled(folds: list[Fold], sims: dict[str, np.ndarray]) -> dict:
    """Top-1 and mAP over the queries of all folds (each fold scored with its own similarity matrix), and the
    per-query APs, fold and singer names in fold then row order (for paired comparisons)."""
    aps, hits = zip(*(fold.per_query(sims[fold.name]) for fold in folds), strict=True)
    ap, hit = np.concatenate(aps), np.concatenate(hits)
    fold_of = np.repeat([fold.name for fold in folds], [len(a) for a in aps])
    singer = np.concatenate([fold.singers[fold.is_query] for fold in folds])
    return {"top1": float(hit.mean()), "map": float(ap.mean()), "queries": len(ap), "ap": ap, "fold": fold_of,
            "singer": singer}  # fmt: skip


def paired_difference(ap: np.ndarray, reference: np.ndarray, singers: np.ndarray, seed: int = 0) -> dict:
    """Per-query AP minus the reference's on the same queries: mean, wins/losses and 95 % bootstrap intervals,
    resampling queries (`low`, `high`) and resampling whole singers (`singer_low`, `singer_high`): one singer's
    queries share a voice, so they are not independent and the query interval is too narrow."""
    diffs = np.asarray(ap) - np.asarray(reference)
    finite = np.isfinite(diffs)
    diffs, singers = diffs[finite], np.asarray(singers)[finite]
    rng = np.random.default_rng(seed)
    boot = rng.choice(diffs, size=(10000, len(diffs))).mean(axis=1)
    names, group = np.unique(singers, return_inverse=True)
    draws = rng.multinomial(len(names), np.full(len(names), 1 / len(names)), size=10000)  # times each singer drawn
    counts = draws[:, group]
    singer_boot = (counts * diffs).sum(axis=1) / counts.sum(axis=1)
    per_singer = np.array([diffs[group == k].mean() for k in range(len(names))])
    spread = per_singer.std(ddof=1) if len(names) > 1 else float("nan")
    # query singers a paired test needs to show a per-singer gain this size (5 % two-sided, 80 % power)
    needed = ((1.96 + 0.84) * spread / per_singer.mean()) ** 2 if per_singer.mean() > 0 else float("inf")
    return {
        "mean": float(diffs.mean()),
        "low": float(np.percentile(boot, 2.5)),
        "high": float(np.percentile(boot, 97.5)),
        "singer_low": float(np.percentile(singer_boot, 2.5)),
        "singer_high": float(np.percentile(singer_boot, 97.5)),
        "singers": len(names),
        "singer_mean": float(per_singer.mean()),
        "singer_sd": float(spread),
        "singers_needed": float(np.ceil(needed)) if np.isfinite(needed) else float("inf"),
        "better": int((diffs > 1e-9).sum()),
        "worse": int((diffs < -1e-9).sum()),
        "queries": len(diffs),
    }


def named(w: Weights) -> str:
    return ", ".join(f"{n} {v:.2f}" for n, v in w.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/gtsinger-dev")
    parser.add_argument("--out", default="runs/weights")
    parser.add_argument("--steps", type=int, default=4, help="grid resolution: weights in multiples of 1/steps")
    for fold in ("a", "b"):
        parser.add_argument(
            f"--fold-{fold}-models",
            default="",
            metavar="timbre=PATH,expression=PATH[,mood=PATH]",
            help=f"encoders that never trained on fold {fold.upper()} (a name left out: DEFAULT_MODELS)",
        )
    args = parser.parse_args()
    try:
        models = {"A": parse_models(args.fold_a_models, DEFAULT_MODELS["A"]),
                  "B": parse_models(args.fold_b_models, DEFAULT_MODELS["B"])}  # fmt: skip
    except ValueError as exc:
        parser.error(str(exc))
    data = read_eval_set(args.data, preprocess="raw")  # labels only (the app path is taken when embedding)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folds = []
    for name, members in (("A", np.isin(data.singers, FOLD_A)), ("B", ~np.isin(data.singers, FOLD_A))):
        emb = embed_cached([Path(args.data) / p for p in data.paths[members]], models[name], out)
        folds.append(Fold(name, emb, data.singers[members], data.songs[members]))
    grid = simplex_grid(args.steps)

    rows: dict[str, dict[str, np.ndarray]] = {n: {f.name: f.cos[n] for f in folds} for n in EMBEDDING_NAMES}
    equal = {n: 1 / len(EMBEDDING_NAMES) for n in EMBEDDING_NAMES}
    equal_label = "fused, equal weights"
    rows[equal_label] = {f.name: f.fused(equal) for f in folds}
    fisher_sims, fisher_chosen = leave_one_singer_out(fisher_weights, folds)
    fisher_label = "fused, Fisher weights, leave-one-singer-out"
    rows[fisher_label] = fisher_sims
    grid_sims, grid_chosen = leave_one_singer_out(partial(best_weights, grid), folds)
    grid_label = f"fused, best of grid 1/{args.steps}, leave-one-singer-out"
    rows[grid_label] = grid_sims
    final = {n: round(v, 2) for n, v in fisher_weights([f.all_queries() for f in folds]).items()}
    rows["fused, recommended weights, in sample (a ceiling, not a result)"] = {f.name: f.fused(final) for f in folds}
    table = {label: {"pooled": pooled(folds, sims), **{f.name: f.metrics(sims[f.name]) for f in folds}}
             for label, sims in rows.items()}  # fmt: skip
    best_single = max(EMBEDDING_NAMES, key=lambda n: table[n]["pooled"]["map"])  # strongest rival, picked in sample
    single = table[best_single]["pooled"]
    single_ap = single["ap"]
    versus = {}  # the out-of-sample fused rows against the best single embedding, query by query
    for label in (fisher_label, grid_label, equal_label):
        fused_ap = table[label]["pooled"]["ap"]
        versus[label] = {"pooled": paired_difference(fused_ap, single_ap, single["singer"])}
        for f in folds:
            mine = single["fold"] == f.name
            versus[label][f"fold {f.name}"] = paired_difference(fused_ap[mine], single_ap[mine], single["singer"][mine])
    per_singer = {}  # from the per-query APs `pooled` already computed
    for label in [*EMBEDDING_NAMES, fisher_label, grid_label]:
        p = table[label]["pooled"]
        for fold in folds:
            for singer in fold.query_singers:
                mine = (p["fold"] == fold.name) & (p["singer"] == singer)
                per_singer.setdefault(f"{singer} ({fold.name})", {})[label] = float(p["ap"][mine].mean())

    result = {
        "data": args.data,
        "models": models,
        "fingerprints": {f: {n: weights_fingerprint(p) for n, p in m.items()} for f, m in models.items()},
        "query_singers": {f.name: f.query_singers for f in folds},
        "queries": {f.name: int(f.is_query.sum()) for f in folds},
        "grid_points": len(grid),
        "table": {
            label: {k: {m: v for m, v in d.items() if m not in ("ap", "fold", "singer")} for k, d in t.items()}
            for label, t in table.items()
        },  # fmt: skip
        "cosine_spread": {f.name: {n: f.spread(n) for n in EMBEDDING_NAMES} for f in folds},
        "per_singer_map": per_singer,
        "weights_leave_one_singer_out": {
            rule: {f"{singer} ({fold})": w for (fold, singer), w in chosen.items()}
            for rule, chosen in (("fisher", fisher_chosen), ("grid", grid_chosen))
        },
        "weights": final,
        "best_single": best_single,
        "fused_minus_best_single_ap": versus,
    }
    (out / "weights.json").write_text(json.dumps(result, indent=2) + "\n")

    def cells(t: dict) -> str:
        a, b, p = t["A"], t["B"], t["pooled"]
        return (f"{p['top1']:.3f} | {p['map']:.3f} | {a['top1']:.3f} | {a['map']:.3f} | {a['eer']:.3f} | "
                f"{b['top1']:.3f} | {b['map']:.3f} | {b['eer']:.3f}")  # fmt: skip

    lines = [
        "| embedding | pooled top-1 | pooled mAP | A top-1 | A mAP | A EER | B top-1 | B mAP | B EER |",
        "|---|---|---|---|---|---|---|---|---|",
        *(f"| {label} | {cells(t)} |" for label, t in table.items()),
        "",
        f"Queries: fold A {result['queries']['A']} ({', '.join(folds[0].query_singers)}), fold B "
        f"{result['queries']['B']} ({', '.join(folds[1].query_singers)}), pooled {len(single_ap)}; chance top-1 "
        f"A {table['timbre']['A']['chance_top1']:.3f}, B {table['timbre']['B']['chance_top1']:.3f}. Pooled EER is not "
        "given: cosines of different models are not comparable.",
        "",
    ]
    for label, scopes in versus.items():
        title = label[0].upper() + label[1:]
        lines += [
            f"{title} minus {best_single} alone, per-query AP, {scope}: {v['mean']:+.3f} (95 % bootstrap "
            f"interval over queries {v['low']:+.3f} to {v['high']:+.3f}, over {v['singers']} singers "
            f"{v['singer_low']:+.3f} to {v['singer_high']:+.3f}); better on {v['better']}, worse on {v['worse']} of "
            f"{v['queries']} queries. Per singer {v['singer_mean']:+.3f} ± {v['singer_sd']:.3f} (sd): "
            + (
                f"showing a gain that size would take about {v['singers_needed']:.0f} query singers (5 % level, 80 % "
                "power)."
                if np.isfinite(v["singers_needed"])
                else "no gain to show."
            )  # fmt: skip
            for scope, v in scopes.items()
        ]
    lines += ["", "| query singer (fold) | " + " | ".join([*EMBEDDING_NAMES, "fused, Fisher", "fused, grid"]) + " |",
              "|---" * (len(EMBEDDING_NAMES) + 3) + "|"]  # fmt: skip
    lines += [f"| {s} | " + " | ".join(f"{v:.3f}" for v in m.values()) + " |" for s, m in per_singer.items()]
    lines += ["", "| cosine mean ± std | " + " | ".join(EMBEDDING_NAMES) + " |", "|---" * 6 + "|"]
    for fold in folds:
        spreads = (result["cosine_spread"][fold.name][n] for n in EMBEDDING_NAMES)
        lines.append(f"| fold {fold.name} | " + " | ".join(f"{m:.2f} ± {s:.3f}" for m, s in spreads) + " |")
    lines += ["", f"Recommended DEFAULT_WEIGHTS (Fisher weights on all queries of both folds): {named(final)}"]
    for rule, chosen in (("Fisher", fisher_chosen), (f"grid 1/{args.steps}", grid_chosen)):
        lines += [f"{rule}, without {singer} (fold {fold}): {named(w)}" for (fold, singer), w in chosen.items()]
    lines.append("")
    for fold, fold_models in models.items():
        prints = result["fingerprints"][fold]
        lines.append(f"Fold {fold} models: " + ", ".join(f"{n} {p} ({prints[n]})" for n, p in fold_models.items()))
    if models["A"]["mood"] == models["B"]["mood"] == DEFAULT_MODELS["A"]["mood"]:
        lines.append("mood: one TJAE for both folds, trained on pjs + the fold B singers (its card), so its fold B "
                     "figures (and its share of the fold B tuning) are in sample.")  # fmt: skip
    (out / "weights.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
