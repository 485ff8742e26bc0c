"""The one API the app and the CLI share: a recording in, a voice profile and ranked songs out.

rec = Recommender.from_pretrained()          # default encoders and catalog (see voicerec.defaults)
result = rec.recommend("me.wav", top=10)     # path, (sr, array) microphone tuple or VoiceAudio
result.to_frame(); result.to_dict()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .audio import accompaniment
from .audio.frame_cues import KnownFrames
from .audio.input import VoiceAudio, load_audio
from .audio.pitch import PitchTrack, track_pitch
from .audio.range_test import MeasuredRange
from .audio.vocal_range import VocalRange, estimate_range, note_name
from .defaults import resolve
from .embeddings import EMBEDDING_NAMES, SIDE_WORK, Embedder
from .search.catalog import Catalog
from .search.index import VectorIndex
from .search.ranking import DEFAULT_RANGE_WEIGHT, Recommendation, rank
from .voice_type import VoiceType, VoiceTypeClassifier, decide_voice_type


def load_voice_classifier(
    source: str | Path | None, embedder: Embedder
) -> tuple[VoiceTypeClassifier | None, str]:
    """The voice-type classifier for `embedder`'s timbre encoder, or None and why not (then the voice type comes
    from pitch and formants alone): missing, unreadable, or fitted on another encoder (fingerprint or size)."""
    source = resolve("voice_type", source)
    try:
        classifier = VoiceTypeClassifier.from_pretrained(source)
    except Exception as exc:  # no file, no network, a corrupt file: the app still answers, less sure
        return None, f"no voice-type classifier at {source} ({type(exc).__name__})"
    size = embedder.dimensions.get(classifier.embedding)
    if size != classifier.coef.size:
        return None, f"the voice-type classifier reads {classifier.coef.size}-d {classifier.embedding} embeddings"
    fingerprint = embedder.fingerprints.get(classifier.embedding, "")
    if fingerprint and classifier.encoder_fingerprint and fingerprint != classifier.encoder_fingerprint:
        return None, (f"the voice-type classifier was fitted on other {classifier.embedding} weights; refit it with "
                      "python -m training.fit_voice_type")  # fmt: skip
    return classifier, ""


@dataclass
class VoiceProfile:
    """What the recording says about the singer: range and voice type, the five embeddings, warnings."""

    range: VocalRange
    embeddings: dict[str, np.ndarray]
    track: PitchTrack
    seconds: float
    voiced_seconds: float
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    voice: VoiceType | None = None
    """The voice type with its confidence (`range.voice_type` is its label)."""

    def to_dict(self) -> dict:
        return {
            "range": self.range.to_dict(),
            "voice": self.voice.to_dict() if self.voice else None,
            "seconds": round(self.seconds, 2),
            "voiced_seconds": round(self.voiced_seconds, 2),
            "warnings": list(self.warnings),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


@dataclass
class Recommendations:
    profile: VoiceProfile
    items: list[Recommendation]
    timings: dict[str, float]

    def to_dict(self) -> dict:
        """JSON-able: the profile (without embeddings) and the ranked items."""
        return {
            "profile": self.profile.to_dict(),
            "items": [item.to_dict() for item in self.items],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per song; the five similarities as columns."""
        rows = []
        for item in self.items:
            row = item.to_dict()
            row.update(row.pop("similarities"))
            rows.append(row)
        columns = ["rank", "title", "artist", "own_artist", "voice", "language", "match", "score",
                   *EMBEDDING_NAMES, "range_fit", "transpose",
                   "key", "suggested_key", "reason", "song_id", "range_low", "range_high"]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    def to_text(self) -> str:
        """A readable table for the terminal: the voice, then one line per song and the reasons below."""
        r = self.profile.range
        voice = self.profile.voice
        head = (
            f"Your voice: {voice.headline if voice else r.voice_type}, comfortable range {note_name(r.low)}-"
            f"{note_name(r.high)} (tessitura {note_name(r.tessitura_low)}-{note_name(r.tessitura_high)}), "
            f"{self.profile.voiced_seconds:.1f} s of singing; {self.timings['total']:.2f} s."
        )
        if voice and voice.advice:
            head += f"\n{voice.advice}"
        table = pd.DataFrame(
            {
                "#": [i.rank for i in self.items],
                "song": [f"{i.title} ({i.artist})" if i.artist else i.title for i in self.items],
                "sung by": ["its artist" if i.own_artist else f"cover: {i.voice}" for i in self.items],
                "match": [f"{i.match:.2f}" for i in self.items],
                "similarity": [f"{i.score:.2f}" for i in self.items],
                "range fit": [f"{i.range_fit:.2f}" for i in self.items],
                "key change": [f"{i.transpose:+d}" if i.transpose else "0" for i in self.items],
                "sing in": [i.suggested_key or "-" for i in self.items],
            }
        )
        reasons = [f"{i.rank:>2}. {i.reason}" for i in self.items]
        left = {c: f"{{:<{max(len(c), table[c].str.len().max())}}}".format for c in ("song", "sung by", "sing in")}
        text = table.to_string(index=False, formatters=left, justify="left")
        lines = [head, *(f"warning: {w}" for w in self.profile.warnings), "", text, ""]
        return "\n".join(lines + reasons)


class Recommender:
    """Encoders + catalog + index, loaded once; `recommend` is then cheap per request."""

    def __init__(self, embedder: Embedder, catalog: Catalog, voice_classifier: VoiceTypeClassifier | None = None,
                 voice_note: str = ""):  # fmt: skip
        """`voice_classifier`: the timbre cue of the voice type (None: pitch and formants only, and `voice_note`
        says why in each profile's warnings)."""
        dims = {n: catalog.matrix(n).shape[1] for n in EMBEDDING_NAMES}
        if dims != embedder.dimensions:
            raise ValueError(
                f"The catalog {catalog.source} has embeddings of sizes {dims}, but the encoders give "
                f"{embedder.dimensions}: rebuild the catalog with these encoders (python -m voicerec catalog build)."
            )
        self.embedder = embedder
        self.catalog = catalog
        self.voice_classifier = voice_classifier
        self.voice_note = voice_note
        self.index = VectorIndex(catalog.matrix("fused"))
        catalog.table()  # load the descriptive columns now, not on the first request
        self.stale = sorted(
            name
            for name, fp in embedder.fingerprints.items()
            if catalog.models.get(name) and fp and not catalog.models[name].endswith(f"@{fp}")
        )

    @classmethod
    def from_pretrained(
        cls,
        timbre: str | Path | None = None,
        expression: str | Path | None = None,
        mood: str | Path | None = None,
        catalog: str | Path | None = None,
        voice_type: str | Path | None = None,
    ) -> Recommender:
        """Each argument: a folder or Hub id; None -> environment variable -> hub/ folder -> Hub id."""
        embedder = Embedder.from_pretrained(timbre, expression, mood)
        classifier, note = load_voice_classifier(voice_type, embedder)
        return cls(embedder, Catalog.load(catalog), classifier, note)

    def warm_up(self) -> None:
        """Analyse 6 s of synthetic singing once, at start-up: the one-off costs of a first call (torch's thread
        pool and kernels, lazily built caches) are then not paid by the first singer."""
        from .audio.synth import VOICES, scale_melody, sing

        rate = 16000
        self.recommend((rate, sing(scale_melody(50, n_notes=12, seconds=0.5), VOICES["baritone"], rate)), top=1)

    def analyse(
        self,
        audio: str | Path | tuple[int, np.ndarray] | VoiceAudio,
        measured_range: MeasuredRange | None = None,
        separate: bool = False,
    ) -> VoiceProfile:
        """Range, voice type and embeddings of a recording (raises AudioInputError for unusable input).

        `measured_range` (a guided range test's lowest and highest comfortable notes) replaces the range the
        recording shows, for the voice type and every song's range fit. `separate`: sung over music, so take the
        vocals out first (demucs, `voicerec.audio.separation`; SeparationError where it is not available)."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if not isinstance(audio, VoiceAudio):
            if separate:
                from .audio.separation import separate_recording

                audio = separate_recording(audio)
                timings["separation"] = time.perf_counter() - start
            audio = load_audio(audio)
        timings["load"] = time.perf_counter() - start
        start = time.perf_counter()
        track = track_pitch(audio.samples, audio.sampling_rate)
        timings["pitch"] = time.perf_counter() - start
        return self.profile(audio, track, lambda: self.embedder.embed(audio, track, timings), timings, measured_range)

    def profile(
        self,
        audio: VoiceAudio,
        track: PitchTrack,
        embed: Callable[[], dict[str, np.ndarray]],
        timings: dict[str, float],
        measured_range: MeasuredRange | None = None,
        known: KnownFrames | None = None,
    ) -> VoiceProfile:
        """The profile of a recording whose pitch is tracked; `embed()` gives its embeddings (a live session has
        most of them already, and `known`, the range's and the music check's frames).

        The range and the music check run on another thread (`SIDE_WORK`) while `embed()` runs: they read only the
        recording and its pitch, and numpy and torch release the GIL, so the answer comes sooner on a machine with
        a core to spare. A refusal (no singing found) is raised before an error of `embed()`: it is the one to tell."""
        checks = SIDE_WORK.submit(self._checks, audio, track, measured_range, timings, known)
        try:
            embeddings, failure = embed(), None
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the checks' own refusal
            embeddings, failure = None, exc
        sung, music = checks.result()
        if failure is not None:
            raise failure
        voice = decide_voice_type(sung, embeddings, self.voice_classifier)
        sung.voice_type = voice.label
        warnings = list(audio.warnings)
        if music:
            warnings.append(accompaniment.WARNING)
        if self.voice_classifier is None and self.voice_note:
            warnings.append(f"Voice type from pitch and formants only: {self.voice_note}.")
        if self.stale:
            warnings.append(
                f"The catalog was built with other {', '.join(self.stale)} weights: similarities may be off; "
                "rebuild it with python -m voicerec catalog build."
            )
        return VoiceProfile(sung, embeddings, track, audio.seconds, audio.voiced_seconds, warnings, timings, voice)

    @staticmethod
    def _checks(audio: VoiceAudio, track: PitchTrack, measured_range: MeasuredRange | None,
                timings: dict[str, float], known: KnownFrames | None) -> tuple[VocalRange, bool]:  # fmt: skip
        """The range (raises AudioInputError if the recording shows no singing) and whether music is behind it."""
        start = time.perf_counter()
        known = known or KnownFrames()
        sung = estimate_range(track, audio.samples, audio.sampling_rate, known=known)  # adds the formant cue
        if measured_range is not None:
            sung = measured_range.apply(sung)
        timings["range"] = time.perf_counter() - start
        start = time.perf_counter()
        music = accompaniment.measure(audio.samples, audio.sampling_rate, track, known.music).detected
        timings["accompaniment"] = time.perf_counter() - start
        return sung, music

    def recommend(
        self,
        audio: str | Path | tuple[int, np.ndarray] | VoiceAudio,
        top: int = 10,
        weights: dict[str, float] | None = None,
        range_weight: float = DEFAULT_RANGE_WEIGHT,
        distinct_titles: bool = True,
        languages: Collection[str] | None = None,
        measured_range: MeasuredRange | None = None,
        separate: bool = False,
    ) -> Recommendations:
        """The `top` songs for the singer of `audio`; `weights` override the default embedding weights;
        `languages` (codes such as "en") keeps only songs sung in those languages; `measured_range` (a range
        test's notes) stands for the recording's range; `separate` takes the vocals out of music first."""
        start = time.perf_counter()
        profile = self.analyse(audio, measured_range, separate)
        return self.rank_profile(profile, start, top, weights, range_weight, distinct_titles, languages)

    def rank_profile(
        self,
        profile: VoiceProfile,
        start: float,
        top: int = 10,
        weights: dict[str, float] | None = None,
        range_weight: float = DEFAULT_RANGE_WEIGHT,
        distinct_titles: bool = True,
        languages: Collection[str] | None = None,
    ) -> Recommendations:
        """The songs for an analysed voice; `start` (perf_counter) is when the request began, for the total."""
        search_start = time.perf_counter()
        items = rank(profile.embeddings, profile.range, self.catalog, self.index, top, weights, range_weight,
                     distinct_titles, languages)  # fmt: skip
        if languages and len(items) < top:
            codes = ", ".join(sorted({c.strip().lower() for c in languages}))
            profile.warnings.append(
                f"Only {len(items)} catalog song{'s' if len(items) != 1 else ''} in {codes}: fewer than the {top} "
                "asked for. Add languages to see more."
            )
        timings = dict(profile.timings)
        timings["search"] = time.perf_counter() - search_start
        timings["total"] = time.perf_counter() - start
        return Recommendations(profile, items, timings)
