"""Song-disjoint singer retrieval: how well an embedding finds the same singer in a different song.

Protocol (gtsinger-dev README): a query is a singing clip whose singer has clips of at least two songs; its
candidates are every other singing clip except the takes of the same song by the same singer; positives are
the candidates by the same singer. Reported: top-1 accuracy, mean average precision and the equal error rate
over all query/candidate pairs (cosine similarity). Excluding the same song matters: takes of one song share
lyrics and melody, so without the rule an embedding of *what* is sung would pass for one of *who* sings.

Anything that maps waveforms to vectors can be evaluated: an `Embedder` is any callable
`list[np.ndarray] -> np.ndarray` (16 kHz mono float32 in, one row per clip out). If it also has a
`fit(waves)` method, that is called first with the candidate clips (the MFCC baseline takes its
standardisation statistics from them). `load_embedder` turns a command-line spec into an embedder.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve
from tqdm.auto import tqdm

from ..audio.input import MODEL_RATE, load_audio

Embedder = Callable[[list[np.ndarray]], np.ndarray]
"""Waveforms (16 kHz mono float32) -> embeddings (one row per waveform)."""

TECHNIQUES = ("control", "breathy", "falsetto", "glissando", "mixed", "pharyngeal", "vibrato")
MANIFEST_COLUMNS = ("path", "singer", "song", "take", "kind")


# ---------------------------------------------------------------------------------------------------- metrics


def _cosine(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    q = np.asarray(queries, dtype=np.float64)
    c = np.asarray(candidates, dtype=np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    return q @ c.T


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """EER of a verification trial list: where the false-accept and false-reject rates meet (ROC interpolated)."""
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return float("nan")
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0))


def ranking_metrics(sims: np.ndarray, candidates: np.ndarray, positives: np.ndarray, seed: int = 0) -> dict:
    """Top-1, mAP and pooled EER of a query x clip similarity matrix under candidate / positive masks.

    Queries with no positive candidate are skipped. Tied scores are ordered at random (seeded), so a
    constant embedding scores at chance rather than by file order. `chance_top1` is the top-1 a random
    ranking gets in expectation (mean share of positives among the candidates).
    """
    rng = np.random.default_rng(seed)
    top1, aps, chance, scores, labels = [], [], [], [], []
    for i in range(sims.shape[0]):
        cand = np.flatnonzero(candidates[i])
        pos = positives[i, cand]
        if not pos.any():
            continue
        s = sims[i, cand]
        ranked = pos[np.lexsort((rng.random(len(s)), -s))]
        hits = np.cumsum(ranked)
        aps.append(float(np.mean(hits[ranked] / (np.flatnonzero(ranked) + 1))))
        top1.append(bool(ranked[0]))
        chance.append(float(pos.mean()))
        scores.append(s)
        labels.append(pos)
    if not top1:
        return {"top1": float("nan"), "map": float("nan"), "eer": float("nan"), "chance_top1": float("nan"),
                "queries": 0, "pairs": 0}  # fmt: skip
    scores_all, labels_all = np.concatenate(scores), np.concatenate(labels)
    return {
        "top1": float(np.mean(top1)),
        "map": float(np.mean(aps)),
        "eer": equal_error_rate(scores_all, labels_all),
        "chance_top1": float(np.mean(chance)),
        "queries": len(top1),
        "pairs": len(labels_all),
    }


def retrieval_masks(singers: Sequence[str], songs: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query rows, candidate mask, positive mask) of the song-disjoint singer retrieval protocol."""
    singers, songs = np.asarray(singers), np.asarray(songs)
    n = len(singers)
    same_singer = singers[:, None] == singers[None, :]
    same_song = same_singer & (songs[:, None] == songs[None, :])  # song ids are per singer; be safe anyway
    songs_per_singer = {s: len(set(songs[singers == s])) for s in set(singers)}
    is_query = np.array([songs_per_singer[s] >= 2 for s in singers])
    candidates = ~same_song & ~np.eye(n, dtype=bool)
    candidates &= is_query[:, None]
    return is_query, candidates, same_singer & candidates


def retrieval_metrics(
    embeddings: np.ndarray, singers: Sequence[str], songs: Sequence[str], queries: np.ndarray | None = None
) -> dict:
    """Song-disjoint singer retrieval: {top1, map, eer, chance_top1, queries, pairs}.

    `embeddings` are the candidates (one row per clip). `queries`, if given, are other embeddings of the same
    clips (row i is clip i, e.g. computed from its first 5 s) used on the query side only.
    """
    embeddings = np.asarray(embeddings)
    if len(embeddings) != len(singers) or len(singers) != len(songs):
        raise ValueError(f"Got {len(embeddings)} embeddings, {len(singers)} singers and {len(songs)} songs.")
    _, candidates, positives = retrieval_masks(singers, songs)
    sims = _cosine(embeddings if queries is None else queries, embeddings)
    return ranking_metrics(sims, candidates, positives)


def technique_metrics(
    embeddings: np.ndarray, takes: Sequence[str], singers: Sequence[str], songs: Sequence[str]
) -> dict:
    """How well the embedding groups clips by singing technique (`take`), never comparing takes of one song.

    - `cross_song`: candidates are all clips of other songs (any singer); positives share the query's take.
    - `other_singers`: candidates are clips of other singers only, so singer identity cannot help.
    - `within_singer`: candidates are the query singer's clips of other songs (on gtsinger-dev each technique
      appears once per singer, so this mostly asks whether plain `control` singing groups apart from techniques).
    Each value is a `ranking_metrics` dict (compare `top1` with `chance_top1`).
    """
    takes, singers, songs = np.asarray(takes), np.asarray(singers), np.asarray(songs)
    if not len(embeddings) == len(takes) == len(singers) == len(songs):
        raise ValueError("embeddings, takes, singers and songs must have one entry per clip.")
    sims = _cosine(embeddings, embeddings)
    same_take = takes[:, None] == takes[None, :]
    same_singer = singers[:, None] == singers[None, :]
    other_song = ~(same_singer & (songs[:, None] == songs[None, :]))
    scopes = {
        "cross_song": other_song,
        "other_singers": ~same_singer,
        "within_singer": same_singer & other_song,
    }
    return {name: ranking_metrics(sims, cand, cand & same_take) for name, cand in scopes.items()}


# -------------------------------------------------------------------------------------------------- embedders


class RandomEmbedder:
    """Chance baseline: a random vector per clip (seeded by the clip's samples, so repeatable)."""

    def __init__(self, dim: int = 128, seed: int = 0) -> None:
        self.dim, self.seed = dim, seed

    def __call__(self, waves: list[np.ndarray]) -> np.ndarray:
        out = []
        for w in waves:
            digest = hashlib.sha1(np.ascontiguousarray(w, dtype=np.float32).tobytes()).digest()
            rng = np.random.default_rng([self.seed, int.from_bytes(digest[:8], "little")])
            out.append(rng.standard_normal(self.dim))
        return np.array(out, dtype=np.float32)


class MFCCEmbedder:
    """MFCC mean+std (20 coefficients, librosa defaults), each dimension standardised.

    The standardisation statistics come from `fit` (the evaluation passes the candidate clips) or, if never
    fitted, from the clips being embedded. Without it c0 (loudness) dominates the cosine similarity.
    """

    def __init__(self, n_mfcc: int = 20, sampling_rate: int = MODEL_RATE) -> None:
        self.n_mfcc, self.sampling_rate = n_mfcc, sampling_rate
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def features(self, waves: list[np.ndarray]) -> np.ndarray:
        rows = []
        for w in waves:
            m = librosa.feature.mfcc(y=np.asarray(w, dtype=np.float32), sr=self.sampling_rate, n_mfcc=self.n_mfcc)
            rows.append(np.concatenate([m.mean(axis=1), m.std(axis=1)]))
        return np.array(rows, dtype=np.float32)

    def fit(self, waves: list[np.ndarray]) -> MFCCEmbedder:
        feats = self.features(waves)
        self.mean, self.std = feats.mean(axis=0), feats.std(axis=0) + 1e-8
        return self

    def __call__(self, waves: list[np.ndarray]) -> np.ndarray:
        feats = self.features(waves)
        mean = feats.mean(axis=0) if self.mean is None else self.mean
        std = feats.std(axis=0) + 1e-8 if self.std is None else self.std
        return (feats - mean) / std


class TransformersEmbedder:
    """A model folder (or Hub id) loaded with `AutoModel` + `AutoFeatureExtractor`; one clip per forward pass.

    The embedding is the output's `embeddings` if it has one (voicerec models), else `pooler_output`, else
    the mean of `last_hidden_state` (e.g. a wav2vec2/HuBERT folder).
    """

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        from transformers import AutoFeatureExtractor, AutoModel

        self.extractor = AutoFeatureExtractor.from_pretrained(str(path), trust_remote_code=True)
        model = AutoModel.from_pretrained(str(path), trust_remote_code=True, use_safetensors=True)
        self.model = model.to(device).eval()
        self.device = device
        self.sampling_rate = int(getattr(self.extractor, "sampling_rate", MODEL_RATE))

    def __call__(self, waves: list[np.ndarray]) -> np.ndarray:
        import torch

        rows = []
        for w in waves:
            if self.sampling_rate != MODEL_RATE:
                w = librosa.resample(w, orig_sr=MODEL_RATE, target_sr=self.sampling_rate, res_type="soxr_hq")
            inputs = self.extractor(w, sampling_rate=self.sampling_rate, return_tensors="pt")
            with torch.inference_mode():
                out = self.model(**{k: v.to(self.device) for k, v in inputs.items()})
            emb = getattr(out, "embeddings", None)
            if emb is None:
                emb = getattr(out, "pooler_output", None)
            if emb is None:
                emb = out.last_hidden_state.mean(dim=1)
            rows.append(emb[0].float().cpu().numpy())
        return np.array(rows)


class PipelineEmbedder:
    """One of the app's five embeddings (`voicerec:timbre_note`, ...): each clip goes through `load_audio`, the
    pitch tracker and `embeddings.Embedder.embed` as a recording in the app does, so the note-adjusted ones are
    evaluated with the note adjustment the app runs. The five are computed together and kept per clip, so
    evaluating several of them costs one analysis per clip."""

    _embedder = None
    _cache: dict[bytes, dict[str, np.ndarray]] = {}

    def __init__(self, name: str) -> None:
        from ..embeddings import EMBEDDING_NAMES

        if name not in EMBEDDING_NAMES:
            raise ValueError(f"Unknown embedding voicerec:{name}; use one of {', '.join(EMBEDDING_NAMES)}.")
        self.name = name

    def __call__(self, waves: list[np.ndarray]) -> np.ndarray:
        from ..audio.pitch import track_pitch
        from ..embeddings import Embedder

        if PipelineEmbedder._embedder is None:
            PipelineEmbedder._embedder = Embedder.from_pretrained()
        rows = []
        for w in waves:
            key = hashlib.sha1(np.ascontiguousarray(w, dtype=np.float32).tobytes()).digest()
            if key not in self._cache:
                audio = load_audio((MODEL_RATE, w))
                track = track_pitch(audio.samples, audio.sampling_rate)
                self._cache[key] = PipelineEmbedder._embedder.embed(audio, track)
            rows.append(self._cache[key][self.name])
        return np.array(rows)


def load_embedder(spec: str) -> Embedder:
    """`random`, `mfcc`, `voicerec:NAME` (one of the app's five embeddings, see `PipelineEmbedder`),
    `package.module:name` (a callable embedder), `package.module:factory()` (called with no
    arguments to build one: lets a model load lazily), or a model folder for `TransformersEmbedder`."""
    if spec == "random":
        return RandomEmbedder()
    if spec == "mfcc":
        return MFCCEmbedder()
    if spec.startswith("voicerec:"):
        return PipelineEmbedder(spec.removeprefix("voicerec:"))
    if Path(spec).exists():
        return TransformersEmbedder(spec)
    if ":" in spec and not spec.startswith(("/", ".")):
        module_name, _, attr = spec.partition(":")
        factory = attr.endswith("()")
        obj = getattr(importlib.import_module(module_name), attr.removesuffix("()"))
        obj = obj() if factory else obj
        if not callable(obj):
            raise ValueError(f"{spec} is not callable: an embedder maps a list of waveforms to an array.")
        return obj
    raise ValueError(f"Unknown embedding {spec!r}: use random, mfcc, a model folder or package.module:name.")


# -------------------------------------------------------------------------------------------------------- data


@dataclass
class EvalSet:
    """The singing clips of a manifest folder, decoded at 16 kHz, with their labels as arrays."""

    audio: list[np.ndarray]
    paths: np.ndarray
    singers: np.ndarray
    songs: np.ndarray
    takes: np.ndarray
    genders: np.ndarray
    duplicates: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.audio)


def read_eval_set(
    data_dir: str | Path,
    singers: set[str] | None = None,
    preprocess: str = "app",
    kinds: tuple[str, ...] = ("singing",),
) -> EvalSet:
    """Read `DATA_DIR/manifest.csv` (path, singer, song, take, kind, ... columns) and decode the singing clips.

    `preprocess="app"` passes each file through `voicerec.load_audio` (silence trimmed, loudness normalised:
    what the app's encoders see); `"raw"` only mixes to mono and resamples to 16 kHz (the README's reference
    figures were computed so). Byte-identical clips are listed in `duplicates`.
    """
    data_dir = Path(data_dir)
    manifest = data_dir / "manifest.csv" if data_dir.is_dir() else data_dir
    if not manifest.is_file():
        raise FileNotFoundError(f"No manifest.csv in {data_dir}.")
    if preprocess not in ("app", "raw"):
        raise ValueError(f"preprocess must be 'app' or 'raw', not {preprocess!r}.")
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in MANIFEST_COLUMNS if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{manifest} lacks the column(s) {', '.join(missing)}.")
    rows = [r for r in rows if r["kind"] in kinds and (singers is None or r["singer"] in singers)]
    if not rows:
        raise ValueError(f"No {'/'.join(kinds)} clips selected from {manifest}.")
    audio, seen, duplicates = [], {}, []
    for row in tqdm(rows, desc="reading clips", leave=False):
        path = manifest.parent / row["path"]
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        if digest in seen:
            duplicates.append((seen[digest], row["path"]))
        seen.setdefault(digest, row["path"])
        if preprocess == "app":
            audio.append(load_audio(path).samples)
        else:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
            mono = data.mean(axis=1)
            if sr != MODEL_RATE:
                mono = librosa.resample(mono, orig_sr=sr, target_sr=MODEL_RATE, res_type="soxr_hq")
            audio.append(mono.astype(np.float32))

    def column(name: str) -> np.ndarray:
        return np.array([r.get(name) or "" for r in rows])

    return EvalSet(audio, column("path"), column("singer"), column("song"), column("take"), column("gender"),
                   duplicates)  # fmt: skip


# --------------------------------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class Condition:
    """One clip length setting: `query_seconds` cuts only the queries, `all_seconds` cuts every clip."""

    label: str
    query_seconds: float | None = None
    all_seconds: float | None = None


def conditions_for(cuts: Sequence[float], cut_all: bool = False) -> list[Condition]:
    """Full clips, then queries cut to each of `cuts` (candidates full), then, with `cut_all`, every clip cut."""
    out = [Condition("full")]
    out += [Condition(f"query {c:g} s", query_seconds=c) for c in cuts]
    if cut_all:
        out += [Condition(f"all {c:g} s", all_seconds=c) for c in cuts]
    return out


def _first(waves: list[np.ndarray], seconds: float | None) -> list[np.ndarray]:
    return waves if seconds is None else [w[: int(round(seconds * MODEL_RATE))] for w in waves]


def embed(embedder: Embedder, waves: list[np.ndarray], desc: str = "embedding", chunk: int = 8) -> np.ndarray:
    """Call `embedder` on chunks of `chunk` clips (for the progress bar); checks it returns one row per clip."""
    rows = []
    with tqdm(total=len(waves), desc=desc, leave=False) as bar:
        for start in range(0, len(waves), chunk):
            part = waves[start : start + chunk]
            out = np.asarray(embedder(part), dtype=np.float32)
            if out.ndim != 2 or len(out) != len(part):
                raise ValueError(f"{desc}: the embedder returned shape {out.shape} for {len(part)} clips.")
            rows.append(out)
            bar.update(len(part))
    return np.concatenate(rows)


@dataclass
class EmbedderResult:
    """Retrieval metrics per condition, technique metrics and the full-clip embeddings (for the map)."""

    retrieval: dict[str, dict]
    technique: dict[str, dict]
    embeddings: np.ndarray


def evaluate_embedder(
    embedder: Embedder, data: EvalSet, conditions: Sequence[Condition], name: str = ""
) -> EmbedderResult:
    """All conditions for one embedder. `fit` (if any) sees the candidate clips of each condition."""
    full: np.ndarray | None = None
    retrieval = {}
    for cond in sorted(conditions, key=lambda c: c.all_seconds is not None):  # full candidates first
        candidates_audio = _first(data.audio, cond.all_seconds)
        if cond.all_seconds is not None or full is None:
            if hasattr(embedder, "fit"):
                embedder.fit(candidates_audio)
            candidates = embed(embedder, candidates_audio, f"{name} {cond.label}")
            if cond.all_seconds is None:
                full = candidates
        else:
            candidates = full
        queries = None
        if cond.query_seconds is not None:
            queries = embed(embedder, _first(data.audio, cond.query_seconds), f"{name} {cond.label}")
        retrieval[cond.label] = retrieval_metrics(candidates, data.singers, data.songs, queries)
    if full is None:
        if hasattr(embedder, "fit"):
            embedder.fit(data.audio)
        full = embed(embedder, data.audio, f"{name} full")
    retrieval = {c.label: retrieval[c.label] for c in conditions}
    return EmbedderResult(retrieval, technique_metrics(full, data.takes, data.singers, data.songs), full)


def _mean_of(dicts: list[dict]) -> dict:
    """Average the numbers of nested metric dicts with one layout (counts stay as they are)."""
    first = dicts[0]
    if isinstance(first, dict):
        return {k: _mean_of([d[k] for d in dicts]) for k in first}
    if isinstance(first, int) and not isinstance(first, bool):
        return first
    values = np.asarray(dicts, dtype=float)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")  # no queries: nan, no warning


def evaluate_random(data: EvalSet, conditions: Sequence[Condition], repeats: int = 20) -> EmbedderResult:
    """The random baseline averaged over `repeats` seeds: its figures are then close to their expectation."""
    runs = [
        evaluate_embedder(RandomEmbedder(seed=seed), data, conditions, "random")
        for seed in tqdm(range(repeats), desc="random baseline", leave=False)
    ]
    return EmbedderResult(
        _mean_of([r.retrieval for r in runs]), _mean_of([r.technique for r in runs]), runs[0].embeddings
    )


def plot_map(embeddings: np.ndarray, data: EvalSet, title: str, path: str | Path) -> None:
    """t-SNE of the (L2-normalised) clip embeddings, coloured by singer (left) and by gender (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    perplexity = float(min(15.0, max(2.0, (len(x) - 1) / 3)))
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(x)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, labels, name in ((axes[0], data.singers, "singer"), (axes[1], data.genders, "gender")):
        cmap = plt.get_cmap("tab10" if len(set(labels)) <= 10 else "tab20")
        for k, label in enumerate(sorted(set(labels))):
            sel = labels == label
            ax.scatter(xy[sel, 0], xy[sel, 1], s=28, color=cmap(k % cmap.N), label=label or "?")
        ax.set_title(f"{title}: by {name}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, loc="best", markerscale=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def markdown_report(results: dict) -> str:
    """results.json as markdown: the retrieval table and the technique-grouping table."""
    lines = [
        # the folder's name only: a card must not carry the path of the machine that measured it
        f"Song-disjoint singer retrieval on `{Path(results['data_dir']).name}` ({results['clips']} singing clips, "
        f"{results['queries']} queries, audio: {results['preprocess']}). "
        "`query N s`: queries cut to their first N s, candidates full; `all N s`: every clip cut.",
        "",
        "| embedding | length | top-1 | mAP | EER |",
        "|---|---|---|---|---|",
    ]
    for name, by_len in results["retrieval"].items():
        for length, m in by_len.items():
            lines.append(f"| {name} | {length} | {m['top1']:.3f} | {m['map']:.3f} | {m['eer']:.3f} |")
    chance = next(iter(next(iter(results["retrieval"].values())).values()))["chance_top1"]
    lines += [
        "",
        f"Expected top-1 of a random ranking: {chance:.3f}.",
        "",
        "Technique grouping (full clips; `take` labels; takes of the same song are never compared): top-1 / mAP.",
        "",
        "| embedding | cross-song | other singers only | within singer |",
        "|---|---|---|---|",
    ]
    scopes = ("cross_song", "other_singers", "within_singer")
    for name, tech in results["technique"].items():
        cells = [f"{tech[s]['top1']:.3f} / {tech[s]['map']:.3f}" for s in scopes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    first = next(iter(results["technique"].values()))
    lines.append("| *chance top-1* | " + " | ".join(f"{first[s]['chance_top1']:.3f}" for s in scopes) + " |")
    if results.get("duplicates"):
        lines += ["", "Byte-identical clips in the data: " + "; ".join(" = ".join(d) for d in results["duplicates"])]
    return "\n".join(lines) + "\n"


def run_evaluation(
    data_dir: str | Path,
    embedders: dict[str, Embedder],
    out_dir: str | Path,
    cuts: Sequence[float] = (10.0, 5.0),
    cut_all: bool = False,
    singers: set[str] | None = None,
    preprocess: str = "app",
    random_repeats: int = 20,
    plots: bool = True,
) -> dict:
    """Evaluate the baselines (`random`, `mfcc`) and `embedders`; write results.json, results.md and one
    `map_<name>.png` per embedding into `out_dir`; return the results dict."""
    data = read_eval_set(data_dir, singers, preprocess)
    conditions = conditions_for(cuts, cut_all)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    queries, _, _ = retrieval_masks(data.singers, data.songs)
    if not queries.any():
        raise ValueError("No singer in the selection has clips of two songs: there is nothing to evaluate.")
    all_embedders: dict[str, Embedder | None] = {"random": None, "mfcc": MFCCEmbedder(), **embedders}
    results = {
        "data_dir": str(data_dir),
        "preprocess": preprocess,
        "clips": len(data),
        "queries": int(queries.sum()),
        "singers": sorted(set(data.singers)),
        "random_repeats": random_repeats,
        "duplicates": [list(d) for d in data.duplicates],
        "retrieval": {},
        "technique": {},
    }
    for name, embedder in tqdm(all_embedders.items(), desc="embeddings"):
        if embedder is None:
            res = evaluate_random(data, conditions, random_repeats)
        else:
            res = evaluate_embedder(embedder, data, conditions, name)
        results["retrieval"][name] = res.retrieval
        results["technique"][name] = res.technique
        if plots:
            plot_map(res.embeddings, data, name, out_dir / f"map_{_slug(name)}.png")
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "results.md").write_text(markdown_report(results))
    return results
