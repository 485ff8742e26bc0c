"""The five voice embeddings of a recording, and their fusion into one vector for inner-product search.

- `timbre`, `expression`: the two SSCL encoders on the recording as sung;
- `timbre_note`, `expression_note`: the same encoders on a copy shifted (formants kept) so that its median
  pitch sits on `note_adjust.REFERENCE_MIDI`: what the voice sounds like with the choice of key taken out. An
  encoder whose feature extractor can move the harmonics in its own spectrogram (GE2E's) gets the shift there;
  one that reads waveforms gets a copy resynthesised by WORLD (`note_adjust.shift_pitch`);
- `mood`: the pooled latent of the TJAE autoencoder.

`fuse` concatenates the unit vectors, each multiplied by the square root of its weight, so that the dot product
of two fused vectors is exactly the weighted sum of the five cosine similarities: one inner-product index then
ranks by the whole weighted similarity.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModel, BatchFeature, PreTrainedModel

from . import registry
from .audio.input import VoiceAudio
from .audio.note_adjust import reference_shift, shift_pitch
from .audio.pitch import PitchTrack, track_pitch
from .defaults import resolve
from .models.modeling_ge2e import GE2EModel

SIDE_WORK = ThreadPoolExecutor(max_workers=4, thread_name_prefix="voicerec-side")
"""Threads for the parts of a request that read the recording alone (the mood pass, the range and the music check),
run beside the LSTM: numpy and torch release the GIL, so one singer's answer comes sooner where a core is free. Kept
for the process (torch's per-thread set-up is paid once); no task waits on another, so requests only queue."""

EMBEDDING_NAMES = ("timbre", "expression", "timbre_note", "expression_note", "mood")

DEFAULT_WEIGHTS: dict[str, float] = {
    "timbre": 0.25,
    "expression": 0.25,
    "timbre_note": 0.25,
    "expression_note": 0.25,
    "mood": 0.0,
}
"""Fitted by training/crossval_ge2e.py (Fisher rule of training/tune_weights.py) on song-disjoint singer retrieval
over every query of gtsinger-dev and mir1k-dev, each clip embedded by encoders that never trained on its singer:
the four GE2E-based embeddings came out equal to two decimals (0.247-0.255). Fitted leave-one-singer-out, their
fusion beats GE2E as shipped on both dev sets (mAP +0.118 on gtsinger-dev, +0.079 on mir1k-dev; docs/fusion.md).
`mood` is left out: the cross-validation found it no help in finding the singer (with it, mAP moved by +0.003 and
-0.001, the EER rose on both); every result still shows its cosine, and any request can weight it. The catalog's
`fused` vectors weigh all five, so the index searches by any request's weights."""


def normalise_weights(weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """`weights` merged over DEFAULT_WEIGHTS (a partial dict overrides only the names it gives), scaled to sum 1."""
    merged = dict(DEFAULT_WEIGHTS)
    for name, value in (weights or {}).items():
        if name not in EMBEDDING_NAMES:
            raise ValueError(f"Unknown embedding {name!r} in weights; use {', '.join(EMBEDDING_NAMES)}.")
        value = float(value)
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"The weight of {name} must be a finite number >= 0, got {value}.")
        merged[name] = value
    total = sum(merged.values())
    if total <= 0:
        raise ValueError("At least one embedding weight must be above zero.")
    return {name: merged[name] / total for name in EMBEDDING_NAMES}


def fuse(embeddings: Mapping[str, np.ndarray], weights: Mapping[str, float] | None = None) -> np.ndarray:
    """Concatenate the five unit vectors (or rows of vectors), each scaled by sqrt(weight).

    With weights summing to 1 the fused vector has unit length, and `fuse(a) @ fuse(b)` equals
    `sum(w[k] * cos(a[k], b[k]))`.
    """
    w = normalise_weights(weights)
    parts = []
    for name in EMBEDDING_NAMES:
        x = np.asarray(embeddings[name], dtype=np.float32)
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        parts.append(x / np.maximum(norm, 1e-12) * np.float32(np.sqrt(w[name])))
    return np.concatenate(parts, axis=-1).astype(np.float32)


FINGERPRINTED_FILES = ("config.json", "model.safetensors")


def _model_files(source: str | Path) -> list[Path] | None:
    """The config and weights files `from_pretrained(source)` read: in the folder, or for a Hub id in the local
    huggingface_hub cache (the snapshot `main` points to, where from_pretrained put them; no network)."""
    if Path(source).is_dir():
        paths = [Path(source) / name for name in FINGERPRINTED_FILES]
    else:
        from huggingface_hub import try_to_load_from_cache

        found = [try_to_load_from_cache(str(source), name) for name in FINGERPRINTED_FILES]
        paths = [Path(p) for p in found if isinstance(p, str)]
    return paths if len(paths) == len(FINGERPRINTED_FILES) and all(p.is_file() for p in paths) else None


def weights_fingerprint(source: str | Path) -> str:
    """Short hash of a model's config and weights: tells whether a catalog was built with the same encoders.

    `source` is a model folder or a Hub id already loaded (so in the cache): the same weights give the same
    fingerprint either way, so a Space loading `voicerec/voicerec-sscl-timbre` matches a catalog built from the
    hub/ folder. "" when the files are not found (nothing to compare).
    """
    paths = _model_files(source)
    if paths is None:
        return ""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()[:12]


def _unit(x: torch.Tensor) -> np.ndarray:
    x = x.float().numpy()
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def shares_trunk(a: tuple[PreTrainedModel, object], b: tuple[PreTrainedModel, object]) -> bool:
    """Whether two encoders are projections of one GE2E LSTM (the fine-tuned encoders keep GE2E's LSTM), so the
    LSTM, most of the cost, runs once for both."""
    (ma, fa), (mb, fb) = a, b
    if not (isinstance(ma, GE2EModel) and isinstance(mb, GE2EModel)):
        return False
    same_windows = all(getattr(ma.config, k) == getattr(mb.config, k) for k in ("window_frames", "windows_per_second",
                       "min_coverage", "n_mels", "hop_length"))  # fmt: skip
    same_features = fa.to_dict() == fb.to_dict()
    params_b = dict(mb.lstm.named_parameters())
    return same_windows and same_features and all(torch.equal(p, params_b[n]) for n, p in ma.lstm.named_parameters())


def _load(source: str) -> tuple[PreTrainedModel, AutoFeatureExtractor]:
    registry.register_auto_classes()  # our classes serve the folder, so no remote code runs
    model = AutoModel.from_pretrained(source, use_safetensors=True).eval()
    extractor = AutoFeatureExtractor.from_pretrained(source)
    return model, extractor


class Embedder:
    """The three encoders, loaded once; `embed` turns a VoiceAudio into the five unit embeddings."""

    def __init__(self, models: dict[str, tuple[PreTrainedModel, AutoFeatureExtractor]], sources: dict[str, str]):
        self.models = models
        self.sources = sources
        self.fingerprints = {name: weights_fingerprint(src) for name, src in sources.items()}
        self.shared_trunk = shares_trunk(models["timbre"], models["expression"])

    @classmethod
    def from_pretrained(
        cls, timbre: str | Path | None = None, expression: str | Path | None = None, mood: str | Path | None = None
    ) -> Embedder:
        """Each argument: a model folder or Hub id; None -> $VOICEREC_*_MODEL -> hub/<name> -> voicerec/<name>."""
        sources = {"timbre": resolve("timbre", timbre), "expression": resolve("expression", expression),
                   "mood": resolve("mood", mood)}  # fmt: skip
        models = {}
        for name, source in sources.items():
            try:
                models[name] = _load(source)
            except OSError as exc:
                raise OSError(
                    f"Could not load the {name} model from {source!r}: give a model folder (or set "
                    f"$VOICEREC_{name.upper()}_MODEL). Cause: {exc}"
                ) from exc
        return cls(models, sources)

    @property
    def dimensions(self) -> dict[str, int]:
        size = {name: int(model.config.embedding_size) for name, (model, _) in self.models.items()}
        return {
            "timbre": size["timbre"],
            "expression": size["expression"],
            "timbre_note": size["timbre"],
            "expression_note": size["expression"],
            "mood": size["mood"],
        }

    def _inputs(self, name: str, samples: np.ndarray, semitones: float, track: PitchTrack) -> BatchFeature:
        """One batch for encoder `name`: the recording and its note-adjusted copy."""
        _, extractor = self.models[name]
        rate = extractor.sampling_rate
        if hasattr(extractor, "shift_harmonics"):  # moved in the spectrogram the encoder reads
            frames = 1 + samples.size // extractor.hop_length
            f0 = track.f0_at(np.arange(frames) * extractor.hop_length / rate)
            return extractor([samples, samples], sampling_rate=rate, return_tensors="pt", semitones=[0.0, semitones],
                             f0=[None, f0])  # fmt: skip
        adjusted = shift_pitch(samples, rate, semitones, track)
        return extractor([samples, adjusted], sampling_rate=rate, return_tensors="pt")

    def _encode(self, name: str, inputs: BatchFeature, **model_kwargs) -> np.ndarray:
        model, _ = self.models[name]
        with torch.inference_mode():
            return _unit(model(**inputs, **model_kwargs).embeddings)

    def _encode_shared(self, inputs: BatchFeature) -> tuple[np.ndarray, np.ndarray]:
        """Timbre and expression embeddings from one pass of the LSTM they share: two projections of its states."""
        timbre, expression = self.models["timbre"][0], self.models["expression"][0]
        with torch.inference_mode():
            windows, counts = timbre.windows_of(inputs["input_features"], inputs["attention_mask"])
            states = timbre.window_states(windows)
            return tuple(_unit(m.pool(m.project(states), counts).embeddings) for m in (timbre, expression))

    def embed(
        self, audio: VoiceAudio, track: PitchTrack | None = None, timings: dict[str, float] | None = None
    ) -> dict[str, np.ndarray]:
        """The five unit float32 embeddings. `track` (the recording's pitch) saves re-tracking for the note
        adjustment; `timings`, if given, receives the seconds each stage took ("note_adjust": the inputs of the
        recording and of its note-adjusted copy, for every encoder)."""
        timings = {} if timings is None else timings
        mood = SIDE_WORK.submit(self.timed_mood, audio.samples, timings)  # overlaps the LSTM's pass
        start = time.perf_counter()
        track = track_pitch(audio.samples, audio.sampling_rate) if track is None else track
        semitones = reference_shift(track)
        names = ("timbre",) if self.shared_trunk else ("timbre", "expression")
        inputs = {name: self._inputs(name, audio.samples, semitones, track) for name in names}
        timings["note_adjust"] = time.perf_counter() - start
        out: dict[str, np.ndarray] = {}
        if self.shared_trunk:
            start = time.perf_counter()
            (out["timbre"], out["timbre_note"]), (out["expression"], out["expression_note"]) = (
                self._encode_shared(inputs["timbre"])
            )
            timings["timbre+expression"] = time.perf_counter() - start
        else:
            for name in names:
                start = time.perf_counter()
                out[name], out[f"{name}_note"] = self._encode(name, inputs[name])  # one batch: both copies
                timings[name] = time.perf_counter() - start
        out["mood"] = mood.result()
        return {name: out[name] for name in EMBEDDING_NAMES}

    def timed_mood(self, samples: np.ndarray, timings: dict[str, float]) -> np.ndarray:
        """`embed_mood`, its seconds put in `timings["mood"]` (it runs beside the LSTM, on another thread)."""
        start = time.perf_counter()
        mood = self.embed_mood(samples)
        timings["mood"] = time.perf_counter() - start
        return mood

    def embed_mood(self, samples: np.ndarray) -> np.ndarray:
        """The `mood` embedding: TJAE normalises the whole clip's log-mel, so it is taken over the whole clip."""
        _, extractor = self.models["mood"]
        mood_inputs = extractor([samples], sampling_rate=extractor.sampling_rate, return_tensors="pt")
        return self._encode("mood", mood_inputs, decode=False)[0]  # the latent only: no decoder
