"""Choose the fusion weights by measurement: song-disjoint singer retrieval on gtsinger-dev's fold A singers.

    OMP_NUM_THREADS=1 python -m training.tune_weights --data /work/shared/data/gtsinger-dev --out /work/runs/weights

Fold A (DE-Tenor-1, EN-Alto-1, ES-Soprano-1, IT-Bass-2, KO-Soprano-1) is the set no shipped checkpoint trained
on. Each clip goes through the app's path (load_audio, pitch, note adjustment, the three encoders); the shared
protocol (voicerec.evaluation) scores each single embedding and weighted sums of the five cosines.

Weights are searched on a grid over the simplex (steps of 1/`--steps`). Choosing on the very queries that are
reported would flatter the fused score, so the reported fused figure is leave-one-singer-out: for each query
singer, the weights are chosen (best mAP) on the other singers' queries and then scored on that singer's
queries; the metrics are pooled over all held-out queries. The weights written to DEFAULT_WEIGHTS are then
chosen on all query singers. Only figures are written (`--out`): no embedding of this data leaves /work/runs.
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


def simplex_grid(steps: int) -> list[dict[str, float]]:
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


def metrics_on(sims: np.ndarray, candidates: np.ndarray, positives: np.ndarray, rows: np.ndarray) -> dict:
    return ranking_metrics(sims[rows], candidates[rows], positives[rows])


def best_weights(cos: dict[str, np.ndarray], grid, candidates, positives, rows) -> dict[str, float]:
    """The grid point with the best mAP on `rows` (ties: the earlier grid point, i.e. a stable choice)."""
    scored = [(metrics_on(sum(w[n] * cos[n] for n in EMBEDDING_NAMES), candidates, positives, rows)["map"], -i, w)
              for i, w in enumerate(grid)]  # fmt: skip
    return max(scored, key=lambda t: (t[0], t[1]))[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/work/shared/data/gtsinger-dev")
    parser.add_argument("--out", default="/work/runs/weights")
    parser.add_argument("--steps", type=int, default=4, help="grid resolution: weights in multiples of 1/steps")
    args = parser.parse_args()
    data = read_eval_set(args.data, set(FOLD_A), preprocess="raw")  # labels (the app path is taken below)
    embedder = Embedder.from_pretrained()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / f"embeddings-{'-'.join(embedder.fingerprints.values())}.npz"  # stays in --out, never shipped
    if cache.exists():
        emb = dict(np.load(cache))
    else:
        emb = embed_all([Path(args.data) / p for p in data.paths], embedder)
        np.savez(cache, **emb)
    cos = {n: emb[n] @ emb[n].T for n in EMBEDDING_NAMES}  # unit vectors: dot products are cosines
    is_query, candidates, positives = retrieval_masks(data.singers, data.songs)
    query_singers = sorted(set(data.singers[is_query]))
    all_rows = np.flatnonzero(is_query)
    grid = simplex_grid(args.steps)
    table = {n: metrics_on(cos[n], candidates, positives, all_rows) for n in EMBEDDING_NAMES}
    equal = {n: 1 / len(EMBEDDING_NAMES) for n in EMBEDDING_NAMES}
    table["fused, equal weights"] = metrics_on(sum(equal[n] * cos[n] for n in EMBEDDING_NAMES), candidates,
                                               positives, all_rows)  # fmt: skip
    # leave one query singer out: choose on the others, score on the held-out singer; pool the held-out rows.
    # A coarser grid has fewer ways to fit the few queries by chance: both are shown.
    chosen_per_singer = {}
    for steps in sorted({2, args.steps}):
        held_out_sims = np.zeros_like(cos["timbre"])
        for singer in query_singers:
            rows = np.flatnonzero(is_query & (data.singers == singer))
            others = np.flatnonzero(is_query & (data.singers != singer))
            w = best_weights(cos, simplex_grid(steps), candidates, positives, others)
            if steps == args.steps:
                chosen_per_singer[singer] = w
            held_out_sims[rows] = sum(w[n] * cos[n] for n in EMBEDDING_NAMES)[rows]
        label = f"fused, leave-one-singer-out weights (grid 1/{steps})"
        table[label] = metrics_on(held_out_sims, candidates, positives, all_rows)
    final = best_weights(cos, grid, candidates, positives, all_rows)
    table["fused, chosen weights (in-sample)"] = metrics_on(sum(final[n] * cos[n] for n in EMBEDDING_NAMES),
                                                            candidates, positives, all_rows)  # fmt: skip
    result = {
        "data": args.data,
        "singers": sorted(set(data.singers)),
        "query_singers": query_singers,
        "clips": len(data),
        "queries": int(is_query.sum()),
        "grid_points": len(grid),
        "models": embedder.sources,
        "table": table,
        "weights_chosen_per_held_out_singer": chosen_per_singer,
        "weights": final,
    }
    (out / "weights.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| embedding | top-1 | mAP | EER |", "|---|---|---|---|"]
    lines += [f"| {name} | {m['top1']:.3f} | {m['map']:.3f} | {m['eer']:.3f} |" for name, m in table.items()]
    lines += ["", f"chance top-1: {table['timbre']['chance_top1']:.3f}; {result['queries']} queries from "
              f"{', '.join(query_singers)} over {len(data)} clips of {len(result['singers'])} singers.", "",
              "Chosen weights: " + ", ".join(f"{n} {w:.2f}" for n, w in final.items())]  # fmt: skip
    (out / "weights.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
