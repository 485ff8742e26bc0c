"""Music behind the voice (`voicerec.audio.accompaniment`): false alarms on real clean vocals, detection on mixes.

    OMP_NUM_THREADS=1 python -m training.evaluate_accompaniment --data ../shared/data --out runs/accompaniment

Clean: every recording of gtsinger-dev (singing and speech), mir1k-dev (the voice channel), edcav-dev (isolated
studio vocals) and pjs (singing and speech), its first 30 s, as the product reads it (`load_audio`, `track_pitch`,
`estimate_range` with the recording). The corpora hold no real voice + music recording (mir1k-dev ships the voice
channel only), so the mixes are real voices over `voicerec.audio.synth.backing_track` (chords, bass, drums in the
voice's key) at 0, +6 and +12 dB voice-to-music: every gtsinger-dev singing take and every `--every`-th mir1k-dev
and pjs song. Each recording gets what the product tells its singer: refused for music, refused otherwise (speech,
too little singing...), or accepted, with or without the music warning;
and whether a live take would show the music hint at some point (`live_hint`). Shares with 95 % bootstrap intervals
over singers. Writes `--out`/cues.csv (one row per recording; computed from the corpora: keep it out of the project).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from voicerec.audio import accompaniment
from voicerec.audio.input import MODEL_RATE, AudioInputError, load_audio
from voicerec.audio.pitch import HOP_SECONDS, PitchTrack, track_pitch
from voicerec.audio.synth import backing_track
from voicerec.audio.vocal_range import estimate_range, held_note_seconds
from voicerec.live import HOP, MUSIC_SECONDS

CORPORA = ("gtsinger-dev", "mir1k-dev", "edcav-dev", "pjs")
RATIOS_DB = (0, 6, 12)


def live_hint(x: np.ndarray) -> bool:
    """Whether a live take of `x` would show the music hint at some point: `accompaniment.measure` on the last
    `MUSIC_SECONDS` once a second, as `LiveSession` decides it (here on the whole take's pitch track, cut)."""
    track = track_pitch(x, MODEL_RATE)
    width = int(round(MUSIC_SECONDS / HOP_SECONDS))
    for end in range(width, len(track.f0) + 1, int(round(1.0 / HOP_SECONDS))):
        part = slice(end - width, end)
        recent = PitchTrack(track.times[part] - track.times[end - width], track.f0[part], track.confidence[part])
        if accompaniment.measure(x[(end - width) * HOP : end * HOP], MODEL_RATE, recent).detected:
            return True
    return False


def told(x: np.ndarray) -> dict:
    """What the product says of this recording (16 kHz mono), with the cues."""
    hint = {"live_hint": live_hint(x)}
    try:
        audio = load_audio((MODEL_RATE, x))
    except AudioInputError:
        return hint | {"outcome": "refused: no singing"}
    track = track_pitch(audio.samples, audio.sampling_rate)
    cues = accompaniment.measure(audio.samples, audio.sampling_rate, track)
    row = hint | {"below_voice": cues.below_voice, "off_voice": cues.off_voice,
                  "window_below_voice": cues.window_below_voice, "detected": cues.detected,
                  "held": held_note_seconds(track)}  # fmt: skip
    try:
        estimate_range(track, audio.samples, audio.sampling_rate)
    except AudioInputError as exc:
        music = str(exc).startswith(accompaniment.MESSAGE)
        return row | {"outcome": "refused: music" if music else "refused: other"}
    return row | {"outcome": "accepted, music warning" if cues.detected else "accepted"}


def _interval(frame: pd.DataFrame, column: str, rng: np.random.Generator, n: int = 2000) -> str:
    """Share of rows with `column` true, and its 95 % bootstrap interval over singers."""
    per = frame.groupby("singer")[column].agg(["sum", "count"])
    share = per["sum"].sum() / per["count"].sum()
    draws = rng.integers(0, len(per), (n, len(per)))
    boot = per["sum"].to_numpy()[draws].sum(1) / per["count"].to_numpy()[draws].sum(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return f"{share:.3f} [{lo:.2f}, {hi:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/accompaniment"))
    parser.add_argument("--every", type=int, default=4, help="mix every n-th mir1k-dev clip and pjs song")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for corpus in CORPORA:
        manifest = pd.read_csv(args.data / corpus / "manifest.csv")
        for i, clip in enumerate(tqdm(list(manifest.itertuples()), desc=corpus)):
            x, _ = librosa.load(args.data / corpus / clip.path, sr=MODEL_RATE, duration=args.seconds)
            base = {"corpus": corpus, "singer": clip.singer, "kind": clip.kind, "path": clip.path}
            rows.append(base | {"mix": "clean"} | told(x))
            if clip.kind != "singing" or corpus == "edcav-dev" or (corpus != "gtsinger-dev" and i % args.every):
                continue
            pitch = track_pitch(x, MODEL_RATE)
            tonic = int(np.round(np.nanmedian(pitch.midi))) if pitch.voiced.any() else 57
            tonic -= 12 * (tonic > 56)  # the key's tonic in the octave of a band's chords
            music = backing_track(tonic, len(x) / MODEL_RATE, MODEL_RATE, seed=i)[: len(x)]
            for ratio in RATIOS_DB:
                gain = np.sqrt(np.mean(x**2) / np.mean(music**2)) * 10 ** (-ratio / 20)
                rows.append(base | {"mix": f"+{ratio} dB"} | told((x + gain * music).astype(np.float32)))
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out / "cues.csv", index=False)
    rng = np.random.default_rng(0)
    frame["flagged"] = frame["outcome"].isin(["refused: music", "accepted, music warning"])
    frame["told_music"] = frame["outcome"] == "refused: music"
    frame["told_other"] = frame["outcome"] == "refused: other"
    print("| recordings | n | singers | music said (refused or warned) | refused for music | refused otherwise | "
          "live hint shown |")
    print("|---|---|---|---|---|---|---|")
    groups = [(f"{c} {k}, clean", frame[(frame.corpus == c) & (frame.kind == k) & (frame.mix == "clean")])
              for c in CORPORA for k in ("singing", "speech")]  # fmt: skip
    groups += [(f"voices over music, {m}", frame[frame.mix == m]) for m in (f"+{r} dB" for r in RATIOS_DB)]
    groups += [(f"{c} over music, {m}", frame[(frame.corpus == c) & (frame.mix == m)])
               for m in (f"+{r} dB" for r in RATIOS_DB) for c in CORPORA if c != "edcav-dev"]  # fmt: skip
    for name, part in groups:
        if len(part):
            print(f"| {name} | {len(part)} | {part.singer.nunique()} | {_interval(part, 'flagged', rng)} | "
                  f"{_interval(part, 'told_music', rng)} | {_interval(part, 'told_other', rng)} | "
                  f"{_interval(part, 'live_hint', rng)} |")  # fmt: skip
    refused = frame[(frame.mix != "clean") & frame.outcome.str.startswith("refused")]
    print(f"\nmixes refused: {len(refused)}; of them told it is the music: {refused.told_music.mean():.3f}")
    clean = frame[frame.mix == "clean"]
    print(f"highest below_voice on clean recordings: {clean.below_voice.max():.4f}; "
          f"with off_voice < {accompaniment.OFF_VOICE_BELOW}: "
          f"{clean[clean.off_voice < accompaniment.OFF_VOICE_BELOW].below_voice.max():.4f}; "
          f"in a {accompaniment.WINDOW_SECONDS:.0f} s window: {clean.window_below_voice.max():.4f}")


if __name__ == "__main__":
    main()
