"""Evaluate the pitch tracker, note adjustment and voice type; prints markdown tables for the README.

1. Speed (x real time, one thread) of `voicerec.audio.pitch.track_pitch` against librosa's pyin and yin, and the
   seconds `note_adjust.adjust_to_reference` takes per 15 s clip, each also as a ratio to `voicerec.tools.bench`'s
   reference workload timed before every call (this machine's speed moves 2-3x with other users' load).
2. Accuracy on synthetic singing of known notes (every `voicerec.audio.synth` voice, in its own range): raw pitch
   accuracy (frames on held notes that are voiced and within 50 cents of the note), notes whose median tracked
   pitch is within 50 cents, voicing recall and octave-error rate (voiced frames within 100 cents of a whole
   number of octaves off), without and with vibrato. With vibrato (30-55 cents deep) the frame accuracy
   against the *note* penalises a tracker that follows the vibrato; the note accuracy does not.
3. Agreement with pyin (the slow accuracy reference) on real singing from gtsinger-dev: on frames both call
   voiced, the share within 50 cents and the share an octave apart; and how many of pyin's voiced frames we keep.
4. Voice part on gtsinger-dev's `voice_part` labels, per clip and per singer (the majority of the singer's
   clips; a tie counts as wrong), with the six voice types collapsed to the four labels (bass/baritone -> Bass,
   tenor -> Tenor, alto/mezzo-soprano -> Alto, soprano -> Soprano; leniently, baritone may also be Tenor and
   mezzo-soprano Soprano), on fold A (the singers no constant was fitted on), fold B and all ten, for the
   pitch-only rule and for pitch + formant cue (`estimate_range(track, samples)`), and the confusion matrix.
5. Held notes, singing against speech (`vocal_range.held_note_seconds`, refused under `MIN_HELD_SECONDS`): the
   seconds of held notes in the first 10 s of each file (what a user sings), for gtsinger-dev's singing clips and
   for pjs's singing and speech recordings (`--pjs`), and how many of each fall under the threshold. Files that
   `load_audio` already refuses are counted apart. The same pass reports what the not-a-voice checks see
   (`vocal_range.MIN_HARMONIC_SHARE`, `MAX_STEADY_SHARE`): the lowest overtone share and the highest steady share
   of real singing (gtsinger-dev, mir1k-dev with `--mir1k`, pjs), against a sine and a sawtooth.

Usage: OMP_NUM_THREADS=1 python -m training.evaluate_pitch [--data ../shared/data/gtsinger-dev]
    [--pjs ../shared/data/pjs] [--mir1k ../shared/data/mir1k-dev] [--speed-only | --voice-part-only |
    --held-notes-only]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
from tqdm import tqdm

from voicerec.audio.formants import harmonic_share
from voicerec.audio.input import AudioInputError, load_audio
from voicerec.audio.note_adjust import adjust_to_reference
from voicerec.audio.pitch import track_pitch
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.audio.vocal_range import (
    MIN_HELD_SECONDS,
    VOICE_CENTRES,
    VOICE_TYPES,
    estimate_range,
    held_note_seconds,
    steady_share,
)
from voicerec.tools.bench import Reference

SR = 16000
FMIN, FMAX = 65.0, 1100.0
HOP = 160
FOLD_A = {"DE-Tenor-1", "EN-Alto-1", "ES-Soprano-1", "IT-Bass-2", "KO-Soprano-1"}
PART_OF_TYPE = {
    "bass": "Bass",
    "baritone": "Bass",
    "tenor": "Tenor",
    "alto": "Alto",
    "mezzo-soprano": "Alto",
    "soprano": "Soprano",
}
ALSO_ACCEPTED = {"baritone": "Tenor", "mezzo-soprano": "Soprano"}
"""The in-between types, also counted as right for this neighbouring part in the lenient accuracy."""
TYPE_OF_SYNTH_VOICE = {"mezzo": "mezzo-soprano"}


def pyin_midi(x: np.ndarray) -> np.ndarray:
    f0, _, _ = librosa.pyin(x, fmin=FMIN, fmax=FMAX, sr=SR, frame_length=1024, hop_length=HOP)
    return librosa.hz_to_midi(f0)


def yin_midi(x: np.ndarray) -> np.ndarray:
    return librosa.hz_to_midi(librosa.yin(x, fmin=FMIN, fmax=FMAX, sr=SR, frame_length=1024, hop_length=HOP))


def ours_midi(x: np.ndarray) -> np.ndarray:
    return track_pitch(x, SR, FMIN, FMAX).midi


def ours_unfolded_midi(x: np.ndarray) -> np.ndarray:
    return track_pitch(x, SR, FMIN, FMAX, fix_octaves=False).midi


TRACKERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"ours": ours_midi, "yin": yin_midi, "pyin": pyin_midi}
ABLATION = {"ours without octave folding": ours_unfolded_midi}


def octave_errors(cents: np.ndarray) -> np.ndarray:
    octaves = np.round(cents / 1200)
    return (octaves != 0) & (np.abs(cents - 1200 * octaves) < 100)


def seconds_per_call(fn: Callable[[], object], repeats: int, reference: Reference) -> tuple[float, float]:
    """Median (wall, CPU) seconds per call, a reference pass before each; CPU time is what the method costs when
    other jobs share the cores."""
    fn()  # warm-up: imports, numba compilation
    walls, cpus = [], []
    for _ in range(repeats):
        reference.run()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def speed_table() -> pd.DataFrame:
    x = sing(scale_melody(55, n_notes=30, seconds=0.5, seed=0), VOICES["tenor"], sr=SR)  # 15 s
    seconds = len(x) / SR
    track = track_pitch(x, SR)
    methods = {f"pitch: {name}": (lambda fn=fn: fn(x)) for name, fn in TRACKERS.items()}
    methods["note adjustment (WORLD)"] = lambda: adjust_to_reference(x, SR, track)
    rows, reference = [], Reference()
    for name, fn in methods.items():
        wall, cpu = seconds_per_call(fn, 1 if "pyin" in name else 7, reference)
        rows.append(
            {
                "method": name,
                "wall s per 15 s": wall,
                "CPU s per 15 s": cpu,
                "x real time (wall)": seconds / wall,
                "x real time (CPU)": seconds / cpu,
                "x reference (wall)": reference.ratio(wall),
            }
        )
    print(f"reference workload: {reference.seconds:.3f} s (median of {len(reference.times)} passes)\n")
    return pd.DataFrame(rows)


def note_truth(notes: list[tuple[float, float]], n_frames: int) -> np.ndarray:
    """MIDI of the held part of each note per 10 ms frame (NaN on glides and gaps)."""
    truth, pos = np.full(n_frames, np.nan), 0.0
    for midi, dur in notes:
        truth[int(np.ceil((pos + 0.06) / 0.01)) : int((pos + dur - 0.07) / 0.01)] = midi
        pos += dur
    return truth


def synthetic_table(seeds: int) -> pd.DataFrame:
    stats: dict[tuple[str, str], list[np.ndarray]] = {}
    notes_hit: dict[tuple[str, str], list[bool]] = {}
    jobs = [(cond, name, seed) for cond in ("steady", "vibrato") for name in VOICES for seed in range(seeds)]
    for cond, name, seed in tqdm(jobs, desc="synthetic singing"):
        voice = VOICES[name] if cond == "vibrato" else replace(VOICES[name], vibrato_cents=0.0)
        tonic = int(round(VOICE_CENTRES[TYPE_OF_SYNTH_VOICE.get(name, name)])) - 6
        notes = scale_melody(tonic, n_notes=16, seconds=0.4, seed=seed)
        x = sing(notes, voice, sr=SR, seed=seed)
        for tracker, fn in {**TRACKERS, **ABLATION}.items():
            midi = fn(x)
            truth = note_truth(notes, len(midi))
            held = np.isfinite(truth)
            stats.setdefault((cond, tracker), []).append((midi[held] - truth[held]) * 100)
            for note in np.unique(truth[held]):
                on_note = truth == note  # a repeated note counts once per melody
                notes_hit.setdefault((cond, tracker), []).append(abs(np.nanmedian(midi[on_note]) - note) < 0.5)
    rows = []
    for (cond, tracker), errs in stats.items():
        cents = np.concatenate(errs)
        voiced = np.isfinite(cents)
        rows.append(
            {
                "singing": cond,
                "tracker": tracker,
                "raw pitch acc. (50 c)": np.mean(voiced & (np.abs(np.nan_to_num(cents, nan=1e9)) < 50)),
                "notes within 50 c": np.mean(notes_hit[cond, tracker]),
                "voicing recall": voiced.mean(),
                "octave errors": octave_errors(cents[voiced]).mean(),
            }
        )
    return pd.DataFrame(rows)


def vibrato_table() -> pd.DataFrame:
    """How much of a known vibrato (a held A4, 55 cents deep, no jitter) each tracker reports."""
    voice = replace(VOICES["soprano"], jitter_cents=0.0)
    x = sing([(69.0, 3.0)], voice, sr=SR)
    rows = [{"true depth (cents)": voice.vibrato_cents}]
    for tracker, fn in TRACKERS.items():
        held = fn(x)[40:250]
        rows[0][tracker] = (np.nanpercentile(held, 98) - np.nanpercentile(held, 2)) / 2 * 100
    return pd.DataFrame(rows)


def real_agreement_table(data: Path, manifest: pd.DataFrame, per_singer: int, seconds: float) -> pd.DataFrame:
    clips = manifest.groupby("singer").head(per_singer) if per_singer else manifest
    trackers = {"ours": ours_midi, **ABLATION, "yin": yin_midi}
    stats: dict[str, list[np.ndarray]] = {name: [] for name in trackers}
    kept: dict[str, int] = dict.fromkeys(trackers, 0)
    pyin_voiced = 0
    for row in tqdm(list(clips.itertuples()), desc="pyin agreement"):
        x = load_audio(data / row.path).samples
        x = x[: int(seconds * SR)] if seconds else x
        ref = pyin_midi(x)
        pyin_voiced += int(np.isfinite(ref).sum())
        for tracker, fn in trackers.items():
            midi = fn(x)
            n = min(len(ref), len(midi))
            both = np.isfinite(ref[:n]) & np.isfinite(midi[:n])
            stats[tracker].append((midi[:n] - ref[:n])[both] * 100)
            kept[tracker] += int(both.sum())
    rows = []
    for tracker, errs in stats.items():
        cents = np.concatenate(errs)
        rows.append(
            {
                "tracker": tracker,
                "clips": len(clips),
                "within 50 c of pyin": np.mean(np.abs(cents) < 50),
                "octave apart": octave_errors(cents).mean(),
                "median |diff| (cents)": np.median(np.abs(cents)),
                "pyin-voiced frames kept": kept[tracker] / pyin_voiced,
            }
        )
    return pd.DataFrame(rows)


def _accuracy_rows(rule: str, results: list[tuple[str, str, str]]) -> list[dict]:
    """Strict and lenient voice-part accuracy of (singer, label, predicted type) triples, per clip and per singer."""
    per_singer = []
    for singer in sorted({s for s, _, _ in results}):
        parts = Counter(PART_OF_TYPE[pred] for s, _, pred in results if s == singer).most_common()
        label = next(part for s, part, _ in results if s == singer)
        majority = parts[0][0] if len(parts) == 1 or parts[0][1] > parts[1][1] else "tie"
        per_singer.append((singer, label, majority))
    rows = []
    for unit in ("clip", "singer"):
        for fold, keep in (("fold A", lambda s: s in FOLD_A), ("fold B", lambda s: s not in FOLD_A), ("all", bool)):
            if unit == "clip":
                chosen = [(part, pred) for s, part, pred in results if keep(s)]
                strict = [PART_OF_TYPE[pred] == part for part, pred in chosen]
                lenient = [part in (PART_OF_TYPE[pred], ALSO_ACCEPTED.get(pred)) for part, pred in chosen]
            else:
                chosen = [(part, pred) for s, part, pred in per_singer if keep(s)]
                strict = lenient = [part == pred for part, pred in chosen]
            rows.append(
                {
                    "rule": rule,
                    "unit": unit,
                    "singers": fold,
                    "n": len(chosen),
                    "voice-part accuracy": np.mean(strict),
                    "lenient (in-between types)": np.mean(lenient),
                }
            )
    return rows


def voice_part_tables(data: Path, manifest: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    pitch_only, with_formants = [], []
    for row in tqdm(list(manifest.itertuples()), desc="voice part"):
        audio = load_audio(data / row.path)
        track = track_pitch(audio.samples, SR, voiced=audio.voiced)
        pitch_only.append((row.singer, row.voice_part, estimate_range(track).voice_type))
        with_formants.append((row.singer, row.voice_part, estimate_range(track, audio.samples, SR).voice_type))
    rows = _accuracy_rows("pitch only", pitch_only) + _accuracy_rows("pitch + F4", with_formants)
    confusion = pd.crosstab(
        pd.Series([p for _, p, _ in with_formants], name="label"),
        pd.Series([t for _, _, t in with_formants], name="predicted"),
    ).reindex(columns=list(VOICE_TYPES), fill_value=0)
    return pd.DataFrame(rows), confusion


def print_voice_part(data: Path, fmt: dict) -> None:
    manifest = pd.read_csv(data / "manifest.csv")
    accuracy, confusion = voice_part_tables(data, manifest[manifest["kind"] == "singing"])
    print("\n## Voice part (gtsinger-dev singing clips)\n")
    print(accuracy.to_markdown(**fmt))
    print("\nConfusion, pitch + F4 (clips; rows: label, columns: predicted voice type)\n")
    print(confusion.to_markdown())


def held_notes_table(sets: dict[str, tuple[Path, pd.DataFrame]], seconds: float = 10.0) -> pd.DataFrame:
    """Held-note seconds in the first `seconds` of each file of each named set (folder, manifest rows)."""
    rows = []
    for name, (folder, manifest) in sets.items():
        held, harmonic, steady, refused = [], [], [], 0
        for row in tqdm(list(manifest.itertuples()), desc=f"held notes, {name}"):
            audio, sr = librosa.load(folder / row.path, sr=SR, mono=True, duration=seconds)
            try:
                clean = load_audio((sr, audio))
            except AudioInputError:
                refused += 1
                continue
            track = track_pitch(clean.samples, SR, voiced=clean.voiced)
            held.append(held_note_seconds(track))
            if track.voiced.any():  # what the not-a-voice checks see
                harmonic.append(harmonic_share(clean.samples, SR, track))
                steady.append(steady_share(track))
        held = np.array(held)
        rows.append(
            {
                "recordings": name,
                "files": len(manifest),
                "refused by load_audio": refused,
                "held s, min": held.min(),
                "10th pct": np.percentile(held, 10),
                "median": np.median(held),
                "max": held.max(),
                f"under {MIN_HELD_SECONDS:g} s (refused)": int((held < MIN_HELD_SECONDS).sum()),
                "overtone share, min": np.nanmin(harmonic),
                "steady share, max": max(steady),
            }
        )
    return pd.DataFrame(rows)


def print_held_notes(data: Path, pjs: Path, mir1k: Path, fmt: dict) -> None:
    sets = {}
    gtsinger = pd.read_csv(data / "manifest.csv")
    sets["gtsinger-dev singing"] = (data, gtsinger[gtsinger["kind"] == "singing"])
    if (mir1k / "manifest.csv").exists():
        sets["mir1k-dev singing"] = (mir1k, pd.read_csv(mir1k / "manifest.csv"))
    if (pjs / "manifest.csv").exists():
        pjs_manifest = pd.read_csv(pjs / "manifest.csv")
        for kind in ("singing", "speech"):
            sets[f"pjs {kind}"] = (pjs, pjs_manifest[pjs_manifest["kind"] == kind])
    print("\n## Held notes in the first 10 s: singing against speech; what the not-a-voice checks see\n")
    print(held_notes_table(sets).to_markdown(**fmt))
    t = np.arange(10 * SR) / SR
    for name, tone in (
        ("220 Hz sine", 0.3 * np.sin(2 * np.pi * 220 * t)),
        ("110 Hz sawtooth", 0.3 * ((110 * t) % 1 - 0.5)),
    ):
        clean = load_audio((SR, tone.astype(np.float32)))
        track = track_pitch(clean.samples, SR, voiced=clean.voiced)
        print(
            f"\n{name}: overtone share {harmonic_share(clean.samples, SR, track):.2g}, "
            f"steady share {steady_share(track):.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/gtsinger-dev"))
    parser.add_argument("--seeds", type=int, default=1, help="synthetic melodies per voice and condition")
    parser.add_argument("--per-singer", type=int, default=0, help="clips per singer for the pyin check (0: all)")
    parser.add_argument("--seconds", type=float, default=0.0, help="seconds of each clip for the pyin check (0: all)")
    parser.add_argument("--pjs", type=Path, default=Path("../shared/data/pjs"), help="singing and speech")
    parser.add_argument("--mir1k", type=Path, default=Path("../shared/data/mir1k-dev"), help="amateur singing")
    parser.add_argument("--speed-only", action="store_true", help="only the speed table (half a minute)")
    parser.add_argument("--voice-part-only", action="store_true", help="only the voice-part evaluation (a minute)")
    parser.add_argument("--held-notes-only", action="store_true", help="only the held-note evaluation (a minute)")
    args = parser.parse_args()
    fmt = {"floatfmt": ".3f", "index": False}
    if args.voice_part_only:
        print_voice_part(args.data, fmt)
        return
    if args.held_notes_only:
        print_held_notes(args.data, args.pjs, args.mir1k, fmt)
        return
    print("## Speed (one thread, 15 s of synthetic singing)\n")
    print(speed_table().to_markdown(**fmt))
    if args.speed_only:
        return
    print("\n## Synthetic singing of known notes\n")
    print(synthetic_table(args.seeds).to_markdown(**fmt))
    print("\nVibrato depth reported (half peak-to-peak, cents):\n")
    print(vibrato_table().to_markdown(**fmt))
    if not (args.data / "manifest.csv").exists():
        print(f"\n{args.data}/manifest.csv not found: skipping the real-singing evaluations.")
        return
    manifest = pd.read_csv(args.data / "manifest.csv")
    manifest = manifest[manifest["kind"] == "singing"]
    span = f"first {args.seconds:.0f} s of each clip" if args.seconds else "whole clips"
    print(f"\n## Agreement with pyin on real singing (gtsinger-dev, {span})\n")
    print(real_agreement_table(args.data, manifest, args.per_singer, args.seconds).to_markdown(**fmt))
    print_voice_part(args.data, fmt)
    print_held_notes(args.data, args.pjs, args.mir1k, fmt)


if __name__ == "__main__":
    main()
