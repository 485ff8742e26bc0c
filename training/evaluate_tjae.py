"""What the TJAE mood embedding carries, measured on clips it never trained on.

1. Latent check: held-out reconstruction error (MSE on per-clip-normalised log-mel; predicting the clip mean
   scores 1.0) with the true latent, with the latent zeroed, and with it shuffled in time. If the time jumps
   alone could rebuild the input, the last two would be no worse than the first.
2. Same-song retrieval on the held-out gtsinger-dev singers (fold A): each singing clip queries that singer's
   other singing clips; the other takes of the same song (same melody and lyrics, another technique) should
   rank first. Top-1 and mAP for the mood embedding against MFCC statistics (and the timbre embedding when
   `--timbre` exists).
3. Redundancy with timbre: correlation between the pairwise cosine similarities of mood and timbre (SSCL
   timbre when available) and of mood and MFCC statistics. Low correlation = the mood embedding adds
   information instead of repeating it.
4. Pooling: the latent pooled as its mean or as mean and standard deviation, each measured as in 2-3 on the
   training singers (fold B) and on the held-out singers (fold A).

    python training/evaluate_tjae.py --model runs/tjae/shipped --output runs/tjae/evaluation.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import librosa
import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from tqdm.auto import tqdm
from transformers import AutoModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.data import Clip, load_clips  # noqa: E402
from training.train_tjae import is_heldout, load_config, load_data  # noqa: E402
from voicerec.tools.evaluation import retrieval_metrics  # noqa: E402

SR = 16000
GTSINGER = "../shared/data/gtsinger-dev"
LATENT_MODES = {"true latent": None, "latent zeroed": "zero", "latent shuffled in time": "shuffle"}


@torch.no_grad()
def reconstruction_errors(model, clips: list[Clip], max_seconds: float = 30.0, seed: int = 0) -> dict[str, float]:
    """Frame-weighted held-out MSE for each latent mode (one clip at a time: no padding involved)."""
    model.eval()
    torch.manual_seed(seed)
    sums = dict.fromkeys(LATENT_MODES, 0.0)
    frames = 0
    for clip in tqdm(clips, desc="reconstruction", leave=False):
        audio = torch.from_numpy(clip.audio[: int(max_seconds * SR)])[None]
        for name, mode in LATENT_MODES.items():
            out = model(input_values=audio, latent_mode=mode)
            n = int(out.frame_mask.sum())
            sums[name] += float(out.loss) * n
        frames += n
    return {name: total / frames for name, total in sums.items()}


@torch.no_grad()
def embed(model, clips: list[Clip]) -> np.ndarray:
    """One `embeddings` row per clip, each from the whole clip."""
    model.eval()
    rows = [model(input_values=torch.from_numpy(c.audio)[None]).embeddings[0].numpy() for c in clips]
    return np.stack(rows)


@torch.no_grad()
def pooled_latents(model, clips: list[Clip], max_seconds: float | None = None) -> dict[str, np.ndarray]:
    """The uncentred latent of each clip pooled both ways the config allows (`pooling`: mean, mean_std)."""
    model.eval()
    means, stds = [], []
    for c in clips:
        audio = c.audio if max_seconds is None else c.audio[: int(max_seconds * SR)]
        z = model(input_values=torch.from_numpy(audio)[None]).latent[0].numpy()
        means.append(z.mean(0))
        stds.append(z.std(0))
    return {"mean": np.stack(means), "mean_std": np.concatenate([np.stack(means), np.stack(stds)], axis=1)}


def pooling_report(model, folds: dict[str, list[Clip]], train_clips: list[Clip]) -> dict:
    """What each pooling carries, per singer fold: the song (same-song retrieval), the singer (song-disjoint
    singer retrieval) and how much it overlaps MFCC statistics. Each pooling is centred on the training clips'
    mean, as the model centres its embedding."""
    centers = {name: x.mean(0) for name, x in pooled_latents(model, train_clips, max_seconds=30.0).items()}
    report = {}
    for fold, clips in folds.items():
        singers, songs = [c.singer for c in clips], [c.song for c in clips]
        mfcc = mfcc_stats(clips)
        upper = np.triu(np.ones((len(clips), len(clips)), dtype=bool), k=1)
        for pooling, emb in pooled_latents(model, clips).items():
            emb = emb - centers[pooling]
            report.setdefault(pooling, {})[fold] = {
                "same_song": same_song_retrieval(emb, singers, songs),
                "singer": retrieval_metrics(emb, singers, songs),
                "mfcc_correlation": similarity_correlation(emb, mfcc, upper),
            }
    return report


def mfcc_stats(clips: list[Clip], n_mfcc: int = 20) -> np.ndarray:
    """Mean and std of 20 MFCCs per clip, standardised over the set (the classic timbre baseline)."""
    feats = []
    for c in clips:
        m = librosa.feature.mfcc(y=c.audio, sr=SR, n_mfcc=n_mfcc)
        feats.append(np.concatenate([m.mean(1), m.std(1)]))
    x = np.stack(feats)
    return (x - x.mean(0)) / (x.std(0) + 1e-8)


def cosine_matrix(x: np.ndarray) -> np.ndarray:
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
    return x @ x.T


def same_song_retrieval(emb: np.ndarray, singers: list[str], songs: list[str]) -> dict[str, float]:
    """Within each singer, do the other takes of the query's song rank above the singer's other songs?

    Queries are clips with at least one other take of their song and at least one clip of another song by
    the same singer; candidates are all of that singer's other clips.
    """
    sim = cosine_matrix(emb)
    singers, songs = np.asarray(singers), np.asarray(songs)
    top1, aps = [], []
    for q in range(len(emb)):
        cand = np.flatnonzero((singers == singers[q]) & (np.arange(len(emb)) != q))
        positive = songs[cand] == songs[q]
        if not positive.any() or positive.all():
            continue
        ranked = positive[np.argsort(-sim[q, cand], kind="stable")]
        hits = np.cumsum(ranked)
        aps.append(float((hits[ranked] / (np.flatnonzero(ranked) + 1)).mean()))
        top1.append(float(ranked[0]))
    return {"top1": float(np.mean(top1)), "mAP": float(np.mean(aps)), "queries": len(aps)}


def similarity_correlation(a: np.ndarray, b: np.ndarray, pairs: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation of two embeddings' cosine similarities over the selected pairs."""
    sa, sb = cosine_matrix(a)[pairs], cosine_matrix(b)[pairs]
    return {"pearson": float(pearsonr(sa, sb)[0]), "spearman": float(spearmanr(sa, sb)[0]), "pairs": int(pairs.sum())}


def embedding_report(model, clips: list[Clip], timbre_model=None, seed: int = 0) -> dict:
    """Same-song retrieval and redundancy with timbre on `clips` (the held-out singers only)."""
    singers, songs = [c.singer for c in clips], [c.song for c in clips]
    embeddings = {
        "mood (TJAE)": embed(model, clips),
        "mood, uncentred": pooled_latents(model, clips)[model.config.pooling],
        "MFCC mean+std": mfcc_stats(clips),
    }
    if timbre_model is not None:
        embeddings["timbre (SSCL)"] = embed(timbre_model, clips)
    embeddings["random"] = np.random.default_rng(seed).standard_normal((len(clips), 64))
    retrieval = {name: same_song_retrieval(emb, singers, songs) for name, emb in embeddings.items()}
    singer = {name: retrieval_metrics(emb, singers, songs) for name, emb in embeddings.items()}
    upper = np.triu(np.ones((len(clips), len(clips)), dtype=bool), k=1)
    same_singer = upper & (np.array(singers)[:, None] == np.array(singers)[None, :])
    pairs = [("mood (TJAE)", "timbre (SSCL)"), ("mood (TJAE)", "MFCC mean+std"), ("timbre (SSCL)", "MFCC mean+std")]
    correlation = {
        f"{a} vs {b}": {
            "all pairs": similarity_correlation(embeddings[a], embeddings[b], upper),
            "same-singer pairs": similarity_correlation(embeddings[a], embeddings[b], same_singer),
        }
        for a, b in pairs
        if a in embeddings and b in embeddings
    }
    spread = {}
    for name, emb in embeddings.items():
        cos = cosine_matrix(emb)[upper]
        spread[name] = {"p1": float(np.percentile(cos, 1)), "median": float(np.median(cos)), "std": float(cos.std())}
    return {
        "clips": len(clips),
        "singers": sorted(set(singers)),
        "cosine_spread": spread,
        "same_song_retrieval": retrieval,
        "singer_retrieval": singer,
        "similarity_correlation": correlation,
    }


def markdown_tables(result: dict) -> dict[str, str]:
    """The card's tables, rendered from the result JSON."""
    rec = result["reconstruction"]
    base = rec["true latent"]
    rows = [f"| {name} | {mse:.3f} | {mse / base:.1f}× |" for name, mse in rec.items()]
    latent = "| decoder input | held-out MSE | vs true latent |\n|---|---|---|\n" + "\n".join(rows)
    emb = result["embeddings"]
    rows = []
    for name, r in emb["same_song_retrieval"].items():
        g = emb["singer_retrieval"][name]
        c = emb["cosine_spread"][name]
        rows.append(
            f"| {name} | {r['top1']:.3f} | {r['mAP']:.3f} | {g['top1']:.3f} | {g['map']:.3f} | {g['eer']:.3f} "
            f"| {c['median']:.3f} | {c['std']:.3f} |"
        )
    song_q = next(iter(emb["same_song_retrieval"].values()))["queries"]
    singer_q = next(iter(emb["singer_retrieval"].values()))["queries"]
    song = (
        f"| embedding | same-song top-1 ({song_q} queries) | same-song mAP | singer top-1 ({singer_q} queries) "
        "| singer mAP | singer EER | median cosine | cosine std |\n|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    rows = [
        f"| {name} | {c['all pairs']['pearson']:.3f} | {c['all pairs']['spearman']:.3f} "
        f"| {c['same-singer pairs']['pearson']:.3f} | {c['same-singer pairs']['spearman']:.3f} |"
        for name, c in emb["similarity_correlation"].items()
    ]
    pairs = next(iter(emb["similarity_correlation"].values()))
    redundancy = (
        f"| cosine similarities | Pearson r (all {pairs['all pairs']['pairs']} pairs) | Spearman ρ (all) "
        f"| Pearson r (same-singer, {pairs['same-singer pairs']['pairs']} pairs) | Spearman ρ (same-singer) |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows)
    )
    rows = []
    for pooling, folds in result["pooling"].items():
        for fold, r in folds.items():
            rows.append(
                f"| {pooling} | {fold} | {r['same_song']['top1']:.3f} | {r['same_song']['mAP']:.3f} "
                f"| {r['singer']['top1']:.3f} | {r['singer']['map']:.3f} | {r['mfcc_correlation']['pearson']:.3f} |"
            )
    pooling = (
        "| pooling | singers | same-song top-1 | same-song mAP | singer top-1 | singer mAP | Pearson r with MFCC |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    return {
        "latent_table": latent,
        "same_song_table": song,
        "redundancy_table": redundancy,
        "pooling_table": pooling,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="trained TJAE folder")
    parser.add_argument("--config", default="training/configs/tjae.yaml", help="for the held-out split")
    parser.add_argument("--timbre", default="hub/voicerec-sscl-timbre", help="SSCL timbre folder, if shipped")
    parser.add_argument("--output", required=True, help="JSON results (+ a .md with the tables next to it)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    model = AutoModel.from_pretrained(args.model, trust_remote_code=True)
    timbre = None
    if (Path(args.timbre) / "config.json").exists():
        timbre = AutoModel.from_pretrained(args.timbre, trust_remote_code=True)
    heldout_cfg = cfg["data"].get("heldout") or {}
    train_clips, held = load_data(cfg["data"])
    gtsinger = load_clips(GTSINGER, sr=SR, kinds=("singing",))
    fold_a = [c for c in gtsinger if is_heldout(c, heldout_cfg)]
    fold_b = [c for c in gtsinger if not is_heldout(c, heldout_cfg)]
    result = {
        "model": str(args.model),
        "timbre_model": str(args.timbre) if timbre is not None else None,
        "heldout_clips": len(held),
        "reconstruction": reconstruction_errors(model, held),
        "embeddings": embedding_report(model, fold_a, timbre),
        "pooling": pooling_report(model, {"training (fold B)": fold_b, "held-out (fold A)": fold_a}, train_clips),
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    tables = markdown_tables(result)
    out.with_suffix(".md").write_text("\n\n".join(tables.values()) + "\n")
    print("\n\n".join(tables.values()))


if __name__ == "__main__":
    main()
