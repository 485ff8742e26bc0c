"""Batch assembly for SSCL: per training item, the four views the contrastive policy compares.

- `query`: a crop of a recording, rendered as a *pseudo-singer* (the whole recording is resampled by a random
  `voice_semitones` shift, moving f0 and formants together, which multiplies the few real identities);
- `key`: another crop of the same recording and pseudo-singer (the positive);
- `pitched`: the query's audio shifted a further 1-3 semitones (a different voice: always a negative);
- `stretched`: the query's audio played 0.65-1.7x as fast (same voice, different performance: a positive for
  the timbre encoder, a negative for the expression encoder).
With WORLD pseudo-singers (`training/pseudo_singers.py`, given as `families`), two more aligned views:
- `warped`: the same segment sung by another voice of the recording's family (the source singer or one of its
  warped-vocal-tract copies): same timing and phrasing, another vocal tract (a negative for both encoders);
- `repitched`: the same segment with f0 moved 2-4 semitones and the envelope kept (the same vocal tract in
  another key: a positive for both).
Every view then goes through its own random recording chain (`augment.channel`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import augment
from .data import Clip


@dataclass
class Family:
    """A recording and its WORLD copies, all sample-aligned: `voices` maps an identity to its audio;
    `repitched` maps an identity to its f0-shifted copy."""

    voices: dict[str, np.ndarray] = field(default_factory=dict)
    repitched: dict[str, np.ndarray] = field(default_factory=dict)


class ContrastiveViews(torch.utils.data.Dataset):
    """`length` random training items from `clips`; each item is a dict of four (six with `families`) (samples,)
    float tensors. `families[i]` is clip i's family (then every clip needs one, with `clips[i].singer` in it)."""

    def __init__(
        self,
        clips: list[Clip],
        seconds: float,
        sr: int = 16000,
        length: int = 10_000,
        seed: int = 0,
        voice_semitones: float = 4.0,
        pitch_semitones: tuple[float, float] = (1.0, 3.0),
        stretch_rates: tuple[float, float] = (0.65, 1.7),
        channel_strength: float = 1.0,
        families: list[Family] | None = None,
    ) -> None:
        if not clips:
            raise ValueError("no training clips: check the data sources and singer filters")
        if families is not None:
            lost = [c.path for c, f in zip(clips, families, strict=True) if f is None or c.singer not in f.repitched]
            if lost or any(len(f.voices) < 2 for f in families):
                raise ValueError(f"{len(lost)} clips lack WORLD copies (e.g. {lost[:1]}): rerun pseudo_singers")
        self.families = families
        self.clips, self.sr, self.n, self.length, self.seed = clips, sr, int(seconds * sr), length, seed
        self.voice_semitones, self.pitch_semitones = voice_semitones, pitch_semitones
        self.stretch_rates, self.channel_strength = stretch_rates, channel_strength
        weights = np.array([len(c.audio) for c in clips], dtype=float)
        self.weights = weights / weights.sum()

    def __len__(self) -> int:
        return self.length

    def _segment(self, audio: np.ndarray, start: int, count: int) -> np.ndarray:
        if start + count > len(audio):
            audio = np.tile(audio, (start + count) // len(audio) + 1)
        return audio[start : start + count]

    def _start(self, audio: np.ndarray, count: int, rng: np.random.Generator) -> int:
        """A random start whose segment is not mostly silence (a few tries, then take what we got)."""
        rms = np.sqrt(np.mean(audio**2)) + 1e-9
        hi = max(len(audio) - count, 0)
        start = int(rng.integers(0, hi + 1))
        for _ in range(4):
            if np.sqrt(np.mean(self._segment(audio, start, count) ** 2)) > 0.3 * rms:
                break
            start = int(rng.integers(0, hi + 1))
        return start

    def render(self, audio: np.ndarray, start: int, semitones: float, rate: float = 1.0) -> np.ndarray:
        """`n` samples from `start`, pitch-shifted by resampling, then time-stretched by `rate`."""
        factor = augment.semitone_ratio(semitones) * rate
        x = self._segment(audio, start, augment.source_length(self.n, factor))
        if semitones:
            x = augment.pitch_shift(x, semitones, self.sr)
        if rate != 1.0:
            x = augment.time_stretch(x, rate)
        return augment.fit_length(x, self.n)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self.seed, index, torch.initial_seed() % 2**31))
        i = int(rng.choice(len(self.clips), p=self.weights))
        audio = self.clips[i].audio
        voice = rng.uniform(-self.voice_semitones, self.voice_semitones)
        shift = rng.uniform(*self.pitch_semitones) * rng.choice([-1.0, 1.0])
        rate = float(np.exp(rng.uniform(np.log(self.stretch_rates[0]), np.log(self.stretch_rates[1]))))
        longest = augment.source_length(self.n, augment.semitone_ratio(voice + abs(shift)) * max(rate, 1.0))
        anchor = self._start(audio, longest, rng)
        views = {
            "query": self.render(audio, anchor, voice),
            "key": self.render(audio, self._start(audio, longest, rng), voice),
            "pitched": self.render(audio, anchor, voice + shift),
            "stretched": self.render(audio, anchor, voice, rate),
        }
        if self.families is not None:
            family, singer = self.families[i], self.clips[i].singer
            others = [name for name in family.voices if name != singer]
            other = family.voices[others[int(rng.integers(len(others)))]]
            views["warped"] = self.render(other, anchor, voice)
            views["repitched"] = self.render(family.repitched[singer], anchor, voice)
        return {
            name: torch.from_numpy(augment.channel(x, rng, self.sr, self.channel_strength)) for name, x in views.items()
        }
