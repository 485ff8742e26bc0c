"""Build the default catalog shipped in hub/voicerec-catalog: public-domain melodies sung by synthetic voices.

    OMP_NUM_THREADS=1 python -m training.build_demo_catalog --work runs/demo_catalog --num-proc 2

Melodies come from music21's bundled corpus (pip install music21; used by this script only): the soprano lines
of J. S. Bach's four-part chorales (the hymn tunes, 16th-18th century) and German folk songs of the Essen
Folksong Collection. Each melody is rendered with `voicerec.synth` by three synthetic voices spanning the voice
types, transposed so that it sits in that voice's typical range; each entry's range and tessitura come from the
(transposed) score. The audio stays in --work; the catalog ships embeddings and metadata only.
"""

from __future__ import annotations

import argparse
import csv
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from voicerec.catalog import build_catalog
from voicerec.defaults import HUB_DIR
from voicerec.embeddings import EMBEDDING_NAMES
from voicerec.ranking import transpose_key
from voicerec.synth import VOICES, Voice, sing
from voicerec.vocal_range import VOICE_CENTRES

RATE = 16000
CLIP_SECONDS = 10.0
QUARTER_SECONDS = 0.55
TYPE_OF_PRESET = {"bass": "bass", "baritone": "baritone", "tenor": "tenor", "alto": "alto", "mezzo": "mezzo-soprano",
                  "soprano": "soprano"}  # fmt: skip
PRESETS = list(TYPE_OF_PRESET)
LICENSE = "cc0-1.0"


def synthetic_voices() -> dict[str, Voice]:
    """Two distinct synthetic singers per voice type: the preset, and a brighter, breathier variant of it."""
    voices = {}
    for name in PRESETS:
        v = VOICES[name]
        voices[f"{name}-a"] = replace(v, name=f"{name}-a")
        voices[f"{name}-b"] = replace(
            v, name=f"{name}-b", formant_scale=v.formant_scale * 1.04, tilt_db_per_octave=v.tilt_db_per_octave + 1.5,
            breathiness=v.breathiness * 1.8, vibrato_hz=v.vibrato_hz + 0.6, vibrato_cents=v.vibrato_cents * 0.7,
        )  # fmt: skip
    return voices


def melody_of(score) -> tuple[list[tuple[float, float]], str]:
    """[(MIDI or NaN, quarter lengths)] of the top line, ties merged, and the key ('G major')."""
    part = score.parts[0] if score.parts else score
    flat = part.stripTies().flatten()
    notes = []
    for n in flat.notesAndRests:
        if n.quarterLength <= 0:
            continue
        if n.isRest:
            notes.append((float("nan"), float(n.quarterLength)))
        else:
            pitch = max(n.pitches, key=lambda p: p.midi) if n.isChord else n.pitch
            notes.append((float(pitch.midi), float(n.quarterLength)))
    while notes and np.isnan(notes[0][0]):
        notes.pop(0)
    key = score.analyze("key")
    return notes, f"{key.tonic.name.replace('-', 'b')} {key.mode}"


def score_range(notes: list[tuple[float, float]]) -> tuple[float, float, float, float, float]:
    """(lowest, highest, tessitura low, tessitura high, median): tessitura = duration-weighted 25th..75th pct."""
    pitched = [(m, d) for m, d in notes if not np.isnan(m)]
    midi = np.array([m for m, _ in pitched])
    weights = np.array([d for _, d in pitched])
    order = np.argsort(midi)
    cum = np.cumsum(weights[order]) / weights.sum()
    pct = {q: float(midi[order][np.searchsorted(cum, q)]) for q in (0.25, 0.5, 0.75)}
    return float(midi.min()), float(midi.max()), pct[0.25], pct[0.75], pct[0.5]


def collect_melodies(bach: int, folk: int) -> list[dict]:
    """`bach` chorale melodies and `folk` Essen folk songs, distinct titles, 16..200 notes each."""
    from music21 import corpus
    from music21.corpus.chorales import ChoraleList

    melodies, titles = [], set()
    for bwv, info in tqdm(sorted(ChoraleList().byBWV.items()), desc="Bach chorales"):
        if len(melodies) >= bach:
            break
        title = info["title"].strip()
        if title in titles:
            continue
        try:
            score = corpus.parse(f"bach/bwv{bwv}")
        except Exception:  # not every catalogued chorale is in the bundled corpus
            continue
        notes, key = melody_of(score)
        if 16 <= sum(not np.isnan(m) for m, _ in notes) <= 200:
            titles.add(title)
            melodies.append({"title": title, "artist": "J. S. Bach (chorale melody)", "language": "de",
                             "source": f"music21 corpus bach/bwv{bwv} (soprano line)", "notes": notes, "key": key,
                             "id": f"bwv{bwv}"})  # fmt: skip
    for opus_name in ("essenFolksong/altdeu10", "essenFolksong/kinder0"):
        for score in corpus.parse(opus_name).scores:
            if len(melodies) >= bach + folk:
                break
            title = (score.metadata.title or "").strip()
            if not title or title in titles:
                continue
            notes, key = melody_of(score)
            if 16 <= sum(not np.isnan(m) for m, _ in notes) <= 200:
                titles.add(title)
                number = score.metadata.number or len(melodies)
                melodies.append({"title": title, "artist": "traditional (German folk song)", "language": "de",
                                 "source": f"Essen Folksong Collection via music21 corpus {opus_name} #{number}",
                                 "notes": notes, "key": key, "id": f"{opus_name.split('/')[1]}-{number}"})  # fmt: skip
    return melodies


def _render_one(path: Path, notes: list[tuple[float, float]], voice: Voice, seed: int) -> None:
    tmp = path.with_suffix(".tmp.wav")
    sf.write(tmp, sing(notes, voice, RATE, seed=seed), RATE)
    tmp.replace(path)  # a killed run never leaves a truncated file that looks finished


def render(melodies: list[dict], audio_dir: Path, num_proc: int = 1) -> list[dict]:
    """Each melody by three voices two voice types apart, transposed to the voice's range; returns the CSV rows."""
    voices = synthetic_voices()
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows, jobs = [], []
    for i, mel in enumerate(melodies):
        low, high, t_low, t_high, median = score_range(mel["notes"])
        variant = "ab"[(i // len(PRESETS)) % 2]
        for preset in (PRESETS[i % 6], PRESETS[(i + 2) % 6], PRESETS[(i + 4) % 6]):
            voice = voices[f"{preset}-{variant}"]
            shift = int(round(VOICE_CENTRES[TYPE_OF_PRESET[preset]] - median))
            song_id = f"{mel['id']}--{voice.name}"
            file = f"{song_id}.wav"
            if not (audio_dir / file).exists():
                clip, total = [], 0.0
                for m, q in mel["notes"]:
                    if total >= CLIP_SECONDS:
                        break
                    clip.append((m + shift, q * QUARTER_SECONDS))
                    total += q * QUARTER_SECONDS
                jobs.append((audio_dir / file, clip, voice, i))
            rows.append({
                "file": file, "song_id": song_id, "title": mel["title"], "artist": mel["artist"],
                "language": mel["language"], "source": mel["source"], "license": LICENSE,
                "voice": f"synthetic {voice.name}", "key": transpose_key(mel["key"], shift),
                "range_low": low + shift, "range_high": high + shift,
                "tessitura_low": t_low + shift, "tessitura_high": t_high + shift,
            })  # fmt: skip
    with ProcessPoolExecutor(num_proc) as pool:
        for future in tqdm(as_completed([pool.submit(_render_one, *job) for job in jobs]), total=len(jobs),
                           desc="rendering"):  # fmt: skip
            future.result()
    return rows


DESCRIPTION = """**This catalog is synthetic.** Every entry is a public-domain melody sung by a *synthetic* voice
(voicerec's small source-filter synthesiser, `voicerec.synth`), not by a person. It exists so that voicerec works
out of the box and can be tested end to end; its similarities say which synthetic voice sounds most like you,
not which real singer does. Build a catalog of real recordings with `python -m voicerec catalog build`.

- Melodies: $melodies public-domain melodies from music21's bundled corpus: soprano lines of J. S. Bach's
  four-part chorales (hymn tunes) and German folk songs from the Essen Folksong Collection.
- Renditions: each melody sung by three of twelve synthetic voices (two per voice type: bass, baritone, tenor,
  alto, mezzo-soprano, soprano), transposed so it sits in that voice's typical range; the first 10 s are
  rendered and embedded.
- Range, tessitura and key: from the (transposed) score, not from the audio.
- No audio is included: only metadata, ranges and the embeddings of the renditions. The entries are released
  under CC0-1.0; the melodies are in the public domain (the Essen Folksong Collection was encoded by Helmut
  Schaffrath and colleagues; the encodings used are those bundled with music21). The embeddings come from
  voicerec's encoders (voicerec-sscl-timbre, voicerec-sscl-expression, voicerec-tjae): see their cards for
  their training data."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/demo_catalog", help="audio, songs.csv and analysis cache")
    parser.add_argument("--output", default=str(HUB_DIR / "voicerec-catalog"))
    parser.add_argument("--bach", type=int, default=36, help="number of chorale melodies")
    parser.add_argument("--folk", type=int, default=36, help="number of folk-song melodies")
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--render-only", action="store_true", help="write the audio and songs.csv, do not build")
    args = parser.parse_args()
    work = Path(args.work)
    metadata = work / "songs.csv"
    if not metadata.exists():
        cached = work / "melodies.json"  # parsing the corpus takes minutes: keep what it gave
        if not cached.exists():
            work.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps(collect_melodies(args.bach, args.folk)))
        melodies = json.loads(cached.read_text())
        rows = render(melodies, work / "audio", args.num_proc)
        tmp = metadata.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(metadata)
    if args.render_only:
        return
    with metadata.open() as f:
        n_melodies = len({row["title"] for row in csv.DictReader(f)})
    # `fused` weighs all five embeddings equally, so that the index proposes candidates exactly for any request's
    # weights (ranking.py scales the query by w_request / sqrt(w_catalog)); a zero weight here would leave that
    # embedding out of the candidate search whatever a request asked. The default ranking weights apply per request.
    report = build_catalog(
        work / "audio", args.output, metadata, num_proc=args.num_proc, cache=work / "cache",
        weights=dict.fromkeys(EMBEDDING_NAMES, 1.0),
        card={"pretty_name": "voicerec demo catalog (synthetic voices)", "license": LICENSE,
              "repo_id": "voicerec/voicerec-catalog",
              "description": DESCRIPTION.replace("$melodies", str(n_melodies)),
              "build_command": "OMP_NUM_THREADS=1 python -m training.build_demo_catalog --num-proc 2"},
    )  # fmt: skip
    print(
        f"{report.output}: {report.rows} entries ({report.computed} analysed, {report.cached} cached, "
        f"{len(report.failed)} failed) in {report.seconds:.0f} s, {report.realtime_factor:.1f}x real time"
    )


if __name__ == "__main__":
    main()
