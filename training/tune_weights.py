"""Choose the fusion weights by measurement: song-disjoint singer retrieval on gtsinger-dev, singers kept apart.

    OMP_NUM_THREADS=1 python -m training.tune_weights --data /work/shared/data/gtsinger-dev --out /work/runs/weights

Every singing clip goes through the app's path (load_audio, pitch, note adjustment, the three encoders), once
per set of encoder weights (cached in --out, which never ships: nothing computed from this data may enter the
repo). The shared protocol (voicerec.evaluation) then scores each single embedding and weighted sums of the five
cosines, on a grid over the simplex (steps of 1/`--steps`).

Choosing weights on the very queries that are reported flatters the fused score, so every reported fused figure
is out of sample, on fold A (DE-Tenor-1, EN-Alto-1, ES-Soprano-1, IT-Bass-2, KO-Soprano-1: no shipped checkpoint
trained on them; only three of them have two songs, so 18 queries):
- weights chosen on fold B (the other five singers, their own song-disjoint retrieval; 29 queries), scored on
  fold A. The encoders trained on those singers, so fold B's scores flatter the embeddings that learnt them best;
- leave one fold A query singer out, tuning on fold B *and* the other fold A query singers (the held-out
  singer's clips removed from their candidates), scored on the held-out singer's queries; metrics pooled.
  DEFAULT_WEIGHTS are chosen the same way on all of them (fold B + all fold A queries), so this row is the
  out-of-sample figure of the shipped weights;
- the same leave-one-singer-out tuning on fold A alone (few queries: noisy), and the in-sample best on fold A,
  only as the ceiling it is.
A weighting's score is the mean average precision over all its tuning queries (each within its own fold).
Scales of the cosines differ between embeddings (a crowded embedding has cosines near 1 with a small spread),
and only the spread matters for a ranking, so the table also lists each embedding's cosine mean and spread.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from voicerec.audio import load_audio
from voicerec.embeddings import EMBEDDING_NAMES, Embedder
from voicerec.evaluation import ranking_metrics, read_eval_set, retrieval_masks
from voicerec.pitch import track_pitch

FOLD_A = ("DE-Tenor-1", "EN-Alto-1", "ES-Soprano-1", "IT-Bass-2", "KO-Soprano-1")

Weights = dict[str, float]


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


class Fold:
    """One group of singers' clips: cosines of each embedding and the retrieval protocol's masks among them."""

    def __init__(self, emb: dict[str, np.ndarray], singers: np.ndarray, songs: np.ndarray):
        self.cos = {n: emb[n] @ emb[n].T for n in EMBEDDING_NAMES}  # unit vectors: dot products are cosines
        self.singers = singers
        self.is_query, self.candidates, self.positives = retrieval_masks(singers, songs)
        self.query_singers = sorted(set(singers[self.is_query]))

    def fused(self, w: Weights) -> np.ndarray:
        return sum(w[n] * self.cos[n] for n in EMBEDDING_NAMES)

    def metrics(self, sims: np.ndarray, rows: np.ndarray | None = None, candidates: np.ndarray | None = None) -> dict:
        rows = np.flatnonzero(self.is_query) if rows is None else rows
        candidates = self.candidates if candidates is None else candidates
        return ranking_metrics(sims[rows], candidates[rows], (self.positives & candidates)[rows])

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


def best_weights(grid: list[Weights], parts: list[Part]) -> Weights:
    """The grid point with the best mAP over all queries of `parts`; ties go to the earlier point (stable)."""
    scores = []
    for w in grid:
        results = [fold.metrics(fold.fused(w), rows, cand) for fold, rows, cand in parts]
        results = [m for m in results if m["queries"]]
        scores.append(sum(m["map"] * m["queries"] for m in results) / sum(m["queries"] for m in results))
    return grid[int(np.argmax(scores))]


def leave_one_singer_out(
    grid: list[Weights], fold: Fold, extra: list[Part]
) -> tuple[dict, dict[str, Weights], np.ndarray]:
    """Pooled metrics on `fold` of weights tuned, for each query singer, on `extra` and the fold's other singers
    (and the chosen weights, and the held-out similarity rows)."""
    held_out = np.zeros_like(fold.cos[EMBEDDING_NAMES[0]])
    chosen = {}
    for singer in fold.query_singers:
        w = best_weights(grid, [*extra, fold.without(singer)])
        rows = np.flatnonzero(fold.is_query & (fold.singers == singer))
        held_out[rows] = fold.fused(w)[rows]
        chosen[singer] = w
    return fold.metrics(held_out), chosen, held_out


def paired_difference(fold: Fold, sims: np.ndarray, reference: np.ndarray, seed: int = 0) -> dict:
    """Per-query AP of `sims` minus that of `reference`: mean, 95 % bootstrap interval over queries, wins/losses."""
    diffs = []
    for row in np.flatnonzero(fold.is_query):
        one = np.array([row])
        diffs.append(fold.metrics(sims, one)["map"] - fold.metrics(reference, one)["map"])
    diffs = np.array([d for d in diffs if np.isfinite(d)])
    boot = np.random.default_rng(seed).choice(diffs, size=(10000, len(diffs))).mean(axis=1)
    return {
        "mean": float(diffs.mean()),
        "low": float(np.percentile(boot, 2.5)),
        "high": float(np.percentile(boot, 97.5)),
        "better": int((diffs > 1e-9).sum()),
        "worse": int((diffs < -1e-9).sum()),
        "queries": len(diffs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/work/shared/data/gtsinger-dev")
    parser.add_argument("--out", default="/work/runs/weights")
    parser.add_argument("--steps", type=int, default=4, help="grid resolution: weights in multiples of 1/steps")
    args = parser.parse_args()
    data = read_eval_set(args.data, preprocess="raw")  # labels (the app path is taken below)
    embedder = Embedder.from_pretrained()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / f"embeddings-all-{'-'.join(embedder.fingerprints.values())}.npz"  # stays in --out, never shipped
    if cache.exists():
        emb = dict(np.load(cache))
    else:
        emb = embed_all([Path(args.data) / p for p in data.paths], embedder)
        np.savez(cache, **emb)
    in_a = np.isin(data.singers, FOLD_A)
    fold_a = Fold({n: v[in_a] for n, v in emb.items()}, data.singers[in_a], data.songs[in_a])
    fold_b = Fold({n: v[~in_a] for n, v in emb.items()}, data.singers[~in_a], data.songs[~in_a])
    grid = simplex_grid(args.steps)

    table = {}
    for n in EMBEDDING_NAMES:
        table[n] = fold_a.metrics(fold_a.cos[n])
        table[n]["cosine_mean"], table[n]["cosine_std"] = fold_a.spread(n)
    equal = {n: 1 / len(EMBEDDING_NAMES) for n in EMBEDDING_NAMES}
    table["fused, equal weights"] = fold_a.metrics(fold_a.fused(equal))
    on_b = best_weights(grid, [fold_b.all_queries()])
    table[f"fused, weights chosen on fold B (grid 1/{args.steps})"] = fold_a.metrics(fold_a.fused(on_b))
    metrics, loso_joint, loso_sims = leave_one_singer_out(grid, fold_a, [fold_b.all_queries()])
    table[f"fused, leave-one-singer-out, tuned on fold B + other fold A singers (grid 1/{args.steps})"] = metrics
    loso_weights = {}
    for steps in sorted({2, args.steps}):  # a coarser grid has fewer ways to fit the few queries by chance
        metrics, loso_weights[steps], _ = leave_one_singer_out(simplex_grid(steps), fold_a, [])
        table[f"fused, leave-one-singer-out, tuned on fold A only (grid 1/{steps})"] = metrics
    in_sample = best_weights(grid, [fold_a.all_queries()])
    table["fused, best on fold A itself (in-sample ceiling)"] = fold_a.metrics(fold_a.fused(in_sample))
    final = best_weights(grid, [fold_b.all_queries(), fold_a.all_queries()])
    best_single = max(EMBEDDING_NAMES, key=lambda n: table[n]["map"])  # the strongest rival, picked in sample
    versus = paired_difference(fold_a, loso_sims, fold_a.cos[best_single])
    fold_b_table = {n: fold_b.metrics(fold_b.cos[n]) for n in EMBEDDING_NAMES}
    fold_b_table["fused, weights chosen on fold B (in-sample)"] = fold_b.metrics(fold_b.fused(on_b))

    result = {
        "data": args.data,
        "fold_a_query_singers": fold_a.query_singers,
        "fold_b_query_singers": fold_b.query_singers,
        "fold_a_queries": int(fold_a.is_query.sum()),
        "fold_b_queries": int(fold_b.is_query.sum()),
        "grid_points": len(grid),
        "models": embedder.sources,
        "fingerprints": embedder.fingerprints,
        "table_fold_a": table,
        "table_fold_b": fold_b_table,
        "weights_chosen_on_fold_b": on_b,
        "weights_leave_one_singer_out_joint": loso_joint,
        "weights_leave_one_singer_out_fold_a": {str(k): v for k, v in loso_weights.items()},
        "weights_in_sample_fold_a": in_sample,
        "weights": final,
        "best_single": best_single,
        "leave_one_out_fused_minus_best_single_ap": versus,
    }
    (out / "weights.json").write_text(json.dumps(result, indent=2) + "\n")

    def fmt(m: dict) -> str:
        return f"{m['top1']:.3f} | {m['map']:.3f} | {m['eer']:.3f}"

    lines = ["| embedding (fold A, full clips) | top-1 | mAP | EER | cosine mean ± std |", "|---|---|---|---|---|"]
    for name, m in table.items():
        spread = f"{m['cosine_mean']:.2f} ± {m['cosine_std']:.3f}" if "cosine_mean" in m else ""
        lines.append(f"| {name} | {fmt(m)} | {spread} |")
    lines += ["", f"Fold A: {result['fold_a_queries']} queries from {', '.join(fold_a.query_singers)}; chance "
              f"top-1 {table['timbre']['chance_top1']:.3f}.", "",
              "| fold B (encoders trained on these singers) | top-1 | mAP | EER |", "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {name} | {fmt(m)} |" for name, m in fold_b_table.items()]
    lines += [
        "",
        f"Fused (leave-one-singer-out, tuned on fold B + other fold A) minus {best_single} alone, per fold A query "
        f"AP: {versus['mean']:+.3f} (95 % bootstrap interval {versus['low']:+.3f} to {versus['high']:+.3f}); "
        f"better on {versus['better']}, worse on {versus['worse']} of {versus['queries']} queries.",
    ]
    lines += ["", f"Fold B: {result['fold_b_queries']} queries from {', '.join(fold_b.query_singers)}.", ""]

    def named(w: Weights) -> str:
        return ", ".join(f"{n} {v:.2f}" for n, v in w.items())

    lines.append(f"DEFAULT_WEIGHTS (tuned on fold B + all fold A queries): {named(final)}")
    lines.append(f"Chosen on fold B: {named(on_b)}")
    lines += [f"Without {singer} (fold B + other fold A): {named(w)}" for singer, w in loso_joint.items()]
    for steps, chosen in loso_weights.items():
        lines += [f"Without {singer} (fold A only, grid 1/{steps}): {named(w)}" for singer, w in chosen.items()]
    lines.append(f"In-sample best on fold A: {named(in_sample)}")
    (out / "weights.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
