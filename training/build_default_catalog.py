"""Build the default catalog shipped in hub/voicerec-catalog: real people singing real songs.

    OMP_NUM_THREADS=1 python -m training.build_default_catalog --data ../shared/data --output hub/voicerec-catalog

One entry per singer and song, from the singing takes of four corpora in `--data` (songs.csv and EDCAV's joined
clips go to a temporary folder, the other audio is read in place; only embeddings and metadata reach the output,
never audio):

- edcav-dev: 28 artists, each singing one of their own songs (isolated lead vocals): the entries sung by the song's
  own artist. Its clips (2-6 s each) are joined into recordings of up to a minute (`join_clips`), pooled as takes.
- gtsinger-dev: ten singers of the GTSinger corpus, every song they sing; the takes of a song (plain and with a
  technique) are one entry. Their voice type is the corpus's label for the singer's part.
- mir1k-dev: twelve amateur singers of MIR-1K, every song; the clips of a song are one entry.
- pjs: one man and 98 short songs written for the corpus, so a fixed selection (every `--pjs-every`-th song
  number: pjs005, pjs010, ...) keeps that one voice to about a sixth of the entries.

Titles are the songs' own, spelled as people write them; where the source names none (MIR-1K's songs, PJS's), the
title is "untitled" and MIR-1K's first lyric line goes to `lyrics`. `artist` is the original performer (for
classical pieces, the composer) where known (`KNOWN`, EDCAV's artists), never guessed. A singer's voice type is
decided once over all of their entries (the catalog build's `singer_voice_types`); range, tessitura and key come
from each song's own pitch track. Analyses are cached by the build (file content + encoder weights), so a rebuild
after new encoders only analyses again, and a repeat is fast.
"""

from __future__ import annotations

import argparse
import csv
import functools
import math
import re
import tempfile
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd
import soundfile as sf

from voicerec.defaults import HUB_DIR
from voicerec.embeddings import EMBEDDING_NAMES
from voicerec.search.catalog import UNTITLED, build_catalog

BUILD_COMMAND = (
    "OMP_NUM_THREADS=1 python -m training.build_default_catalog --data ../shared/data --output hub/voicerec-catalog"
)
JOIN_SECONDS = 55.0
"""EDCAV clips are joined into recordings of about this length at most (an analysis reads the first 60 s)."""
GAP_SECONDS = 0.2
# song id (the corpus's) -> (usual title, original performer); only songs we are sure of
KNOWN = {
    "en-tenor-1-song2": ("Long Live", "Taylor Swift"),
    "es-soprano-1-song2": ("Si Yo Fuera un Chico", "Beyoncé"),
    "ko-tenor-1-song1": ("IF YOU", "BIGBANG"),
    "ko-soprano-1-song2": ("내 손을 잡아", "IU"),
    "it-soprano-1-song1": ("Pur dicesti, o bocca bella", "Antonio Lotti"),
    "it-soprano-1-song2": ("Già il sole dal Gange", "Alessandro Scarlatti"),
    "it-soprano-1-song3": ("Batti, batti, o bel Masetto", "Wolfgang Amadeus Mozart"),
    "zh-alto-1-song1": ("奇妙能力歌", "陈粒"),
    "zh-alto-1-song3": ("逆光", "孙燕姿"),
    "zh-alto-1-song4": ("亲爱的那不是爱情", "张韶涵"),
    "zh-alto-1-song5": ("贝加尔湖畔", "李健"),
    "mir1k_Ani2+fdps2+geniusturtle4": ("童話", "光良"),
    "mir1k_Ani_5": ("Lydia", "F.I.R. 飛兒樂團"),
    "mir1k_davidson2+fdps5": ("黑色毛衣", "周杰倫"),
    "mir1k_Kenshin5+fdps3+leon2": ("安靜", "周杰倫"),
    "mir1k_davidson_4": ("朋友", "周華健"),
    "mir1k_stool_1": ("男人哭吧不是罪", "劉德華"),
}
EDCAV_TITLES = {  # EDCAV spells titles without spaces; these need more than a CamelCase split (checked by eye)
    "APlaceForUs": "A Place For Us",
    "ChildrenOfNoone": "Children Of No-one",
    "EverybodysFallingApart": "Everybody's Falling Apart",
    "ForIAmTheMoon": "For I Am The Moon",
    "MikesSulking": "Mike's Sulking",
}
EDCAV_ARTISTS = {"Sambasevam Shanmugam chica": "Sambasevam Shanmugam"}
"""EDCAV's artist names where they differ from the DSD100 song's own credit ("Sambasevam Shanmugam - Kaathaadi")."""
EDCAV_LANGUAGES = {"Kaathaadi": "ta"}
"""Kaathaadi (காத்தாடி, "kite") is a Tamil song, a Tamil film-style track in DSD100; the manifest says en for all of
EDCAV."""
SOURCES = {
    "edcav-dev": ("EDCAV2018 isolated vocals of DSD100 songs (Liutkus et al., SiSEC 2016; Mixing Secrets library)",
                  "research use only (non-commercial)"),
    "gtsinger-dev": ("GTSinger (Zhang et al., NeurIPS 2024), public demo recordings", "cc-by-nc-sa-4.0"),
    "mir1k-dev": ("MIR-1K (Hsu & Jang, IEEE TASLP 2010), MIR Lab, National Tsing Hua University", "research use only"),
    "pjs": ("PJS v1.1 (Koguchi, Takamichi et al., 2020)", "cc-by-sa-4.0"),
}
LICENSE_TEXT = """\
# Terms of the voicerec catalog of real voices

This dataset holds no audio: metadata, pitch-tracked ranges and keys, and embeddings computed from recordings of
four research corpora. Each entry's `source` and `license` columns name its corpus and terms:

- EDCAV2018 (the isolated lead vocals of the DSD100 songs: Liutkus et al., SiSEC 2016; the songs from the "Mixing
  Secrets" free multitrack library of Cambridge Music Technology, their artists' own recordings): for
  non-commercial research use only.
- GTSinger (Zhang et al., NeurIPS 2024; https://github.com/AaronZ345/GTSinger): CC BY-NC-SA 4.0, non-commercial,
  with attribution to the GTSinger authors, share-alike.
- MIR-1K (Hsu & Jang, IEEE TASLP 18(2), 2010; MIR Lab, National Tsing Hua University): distributed by its
  authors for research use.
- PJS v1.1 (Koguchi, Takamichi et al., 2020): CC BY-SA 4.0, with attribution, share-alike.

The dataset as a whole is for non-commercial research use only: the most restrictive of these terms apply.
"""
DESCRIPTION = """\
**Real people singing real songs, as a demo.** Each entry is one singer's recording of one song, taken from four
research corpora of singing. It shows what voicerec does with real voices; it is not a music service's catalog:
a few hundred voices would be needed for that, and no entry links to the song itself.

- **EDCAV2018**, $edcav entries, **each sung by the song's own artist**: $edcav of the set's 28 bands and solo
  artists (the other $edcav_left sing screamed or growled metal vocals, on which no pitch track follows a melody,
  so they have no range or key to give) singing one of their own songs, the isolated lead vocals
  of the DSD100 songs (Liutkus et al., "The 2016 Signal Separation
  Evaluation Campaign", LVA/ICA 2017; the songs come from the "Mixing Secrets" free multitrack library of Cambridge
  Music Technology), as cut into clips by the EDCAV2018 singer-classification set. Terms: non-commercial research
  use only. English rock, pop, folk and metal (one Tamil song).
- **GTSinger**, $gtsinger entries, covers: the public demo recordings of ten singers of the GTSinger corpus (Zhang
  et al., "GTSinger: A Global Multi-Technique Singing Corpus with Realistic Music Scores for All Singing Tasks",
  NeurIPS 2024; https://github.com/AaronZ345/GTSinger). License: CC BY-NC-SA 4.0, non-commercial, with attribution
  to the GTSinger authors (Zhejiang University), share-alike.
- **MIR-1K**, $mir1k entries, covers: twelve amateur singers of Mandarin pop songs (Hsu & Jang, "On the improvement
  of singing voice separation for monaural recordings using the MIR-1K dataset", IEEE TASLP 18(2), 2010; MIR Lab,
  National Tsing Hua University). Terms: distributed by its authors for research use.
- **PJS**, $pjs entries: one man singing short songs written for the Phoneme-balanced Japanese Singing-voice corpus
  v1.1 (Koguchi, Takamichi et al., 2020), a fixed selection (the songs whose number $pjs_every divides). License:
  CC BY-SA 4.0, with attribution, share-alike.

**The dataset as a whole is for non-commercial research use only** (the most restrictive of its sources'
terms apply). No audio is included: only metadata, the pitch-tracked range, tessitura and key, and the
embeddings of each recording.

- One entry per singer and song: where a singer recorded several takes of a song (GTSinger's plain and
  technique takes, MIR-1K's clips of one song), the entry's embeddings are averaged over the takes and
  re-normalised, and its range, tessitura and key come from the takes' pooled pitch track. EDCAV's clips of a
  song (2-6 s each) are first joined, in order, into recordings of up to a minute.
- `voice` names who sings ("Al James", "GTSinger ES-Soprano-1", "MIR-1K Ani", "PJS"); `own_artist` is true where
  that is the song's own artist ($own entries), false for covers.
- `title`: the song's title as people write it (EDCAV's, which the source spells without spaces, re-spaced and
  checked by hand: "SchoolboyFascination" -> "Schoolboy Fascination"), or "untitled" where the source names none
  ($untitled entries: MIR-1K's songs, whose first lyric line is in `lyrics`, and PJS's). `artist`: the original
  performer (for classical pieces, the composer) where known ($known entries); unknown artists are left empty
  rather than guessed.
- `voice_type` is the singer's, not one song's: GTSinger's label for the singer's part; for the others the type
  voicerec estimates from all of that singer's entries pooled (PJS's one singer among the male types), so no singer
  is listed with two types. Range, tessitura and key stay per song.
- `key` is the key the recording is sung in, estimated from its pitch track (Krumhansl-Kessler profiles), not the
  original recording's key."""


def describe(table: pd.DataFrame, edcav_artists: int, pjs_every: int) -> str:
    """DESCRIPTION with the built catalog's counts (`table`: its metadata columns), so the card states what the
    build wrote."""
    per_source = table["source"].value_counts()
    counts = {corpus.split("-")[0]: int(per_source.get(source, 0))
              for corpus, (source, _) in SOURCES.items()}  # fmt: skip
    return Template(DESCRIPTION).substitute(
        counts, edcav_left=edcav_artists - counts["edcav"], pjs_every=pjs_every, own=int(table["own_artist"].sum()),
        untitled=int((table["title"] == UNTITLED).sum()), known=int((table["artist"] != "").sum()),
    )


def _lyric_line(title: str) -> str:
    """MIR-1K's 'lyrics: <first line> [MIR-1K <singer> song <n>]' -> '<first line>'."""
    return re.sub(r"\s*\[MIR-1K[^\]]*\]\s*$", "", title.removeprefix("lyrics:").strip())


def edcav_title(name: str) -> str:
    """EDCAV's title without spaces, spelled as people write it: EDCAV_TITLES, else its CamelCase split."""
    return EDCAV_TITLES.get(name) or re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\()", " ", name)


def _read(data: Path, corpus: str) -> list[dict]:
    with (data / corpus / "manifest.csv").open(newline="") as f:
        return [row for row in csv.DictReader(f) if row["kind"] == "singing"]


def join_clips(data: Path, clips: list[dict], folder: Path, song: str) -> list[str]:
    """Join one song's clips (in take order, GAP_SECONDS of silence between) into recordings of at most about
    JOIN_SECONDS, of roughly equal length, written as 16-bit WAV under `folder`; their names, relative to it.

    EDCAV's clips are 2-6 s, and many hold under the 3 s of singing voicerec needs: joined, every clip counts, and
    the recordings stay under the 60 s an analysis reads. The same clips give the same bytes, so the build's
    analysis cache (keyed by file content) recognises them from one build to the next."""
    folder.mkdir(parents=True, exist_ok=True)
    clips = sorted(clips, key=lambda clip: int(clip["take"]))
    audio = [sf.read(data / "edcav-dev" / clip["path"], dtype="int16") for clip in clips]
    rate = audio[0][1]
    total = sum(len(samples) for samples, _ in audio) / rate
    target = total / max(1, math.ceil(total / JOIN_SECONDS))
    groups: list[list[int]] = [[]]
    length = 0.0
    for i, (samples, _) in enumerate(audio):
        if groups[-1] and length + len(samples) / rate > target * 1.1:
            groups.append([])
            length = 0.0
        groups[-1].append(i)
        length += len(samples) / rate + GAP_SECONDS
    gap = np.zeros(int(GAP_SECONDS * rate), dtype=np.int16)
    names = []
    for group in groups:
        name = f"{song}_clips{int(clips[group[0]]['take']):02d}-{int(clips[group[-1]]['take']):02d}.wav"
        joined = np.concatenate([part for i in group for part in (audio[i][0], gap)][:-1])
        sf.write(folder / name, joined, rate, subtype="PCM_16")
        names.append(name)
    return names


def catalog_rows(data: Path, audio_root: Path, pjs_every: int = 5) -> list[dict]:
    """songs.csv rows (file relative to `audio_root`, which links to the corpora of `data` and holds EDCAV's joined
    clips) for every singing take; takes of one entry share `song_id`."""
    for corpus in SOURCES:
        if corpus != "edcav-dev":
            (audio_root / corpus).symlink_to((data / corpus).resolve(), target_is_directory=True)
    rows = []
    for corpus, (source, license_) in SOURCES.items():
        takes = _read(data, corpus)
        if corpus == "edcav-dev":  # one song per artist, cut in clips: join them (see join_clips)
            songs: dict[str, list[dict]] = {}
            for take in takes:
                songs.setdefault(take["song"], []).append(take)
            takes = [clips[0] | {"path": name} for clips in songs.values()
                     for name in join_clips(data, clips, audio_root / corpus, clips[0]["singer"])]  # fmt: skip
        for take in takes:
            song = take["song"]
            row = {"song_id": song, "title": UNTITLED, "artist": "", "own_artist": "", "lyrics": "",
                   "language": take["language"].lower(), "voice_type": "", "gender": take["gender"]}  # fmt: skip
            if corpus == "gtsinger-dev":  # a corpus label for the singer's part: Tenor -> tenor
                row |= {"voice": f"GTSinger {take['singer']}", "voice_type": take["voice_part"].lower(),
                        "title": take["title"][:1].upper() + take["title"][1:]}  # fmt: skip
            elif corpus == "mir1k-dev":  # one song id may be sung by several singers; MIR-1K gives no titles
                singer = take["singer"].removeprefix("mir1k_")
                row |= {"song_id": f"{take['singer']}:{song}", "voice": f"MIR-1K {singer}",
                        "lyrics": _lyric_line(take["title"])}  # fmt: skip
            elif corpus == "pjs":  # songs written for the corpus, untitled; one man sings them all
                if int(song.removeprefix("pjs")) % pjs_every:
                    continue
                row |= {"voice": "PJS", "gender": "male"}
            else:
                language = EDCAV_LANGUAGES.get(take["title"], row["language"])
                artist = EDCAV_ARTISTS.get(take["artist"], take["artist"])
                row |= {"voice": artist, "title": edcav_title(take["title"]), "artist": artist,
                        "own_artist": "true", "language": language}  # fmt: skip
            if song in KNOWN:
                row["title"], row["artist"] = KNOWN[song]
            rows.append({"file": f"{corpus}/{take['path']}", **row, "source": source, "license": license_})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="edcav-dev, gtsinger-dev, mir1k-dev, pjs")  # fmt: skip
    parser.add_argument("--output", type=Path, default=HUB_DIR / "voicerec-catalog")
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--pjs-every", type=int, default=5, help="take pjs songs whose number this divides")
    parser.add_argument("--cache-dir", help="analysis cache (default: the build's, ~/.cache/voicerec)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        audio_root = Path(tmp) / "audio"
        audio_root.mkdir()
        rows = catalog_rows(args.data, audio_root, args.pjs_every)
        edcav_artists = len({row["artist"] for row in rows if row["file"].startswith("edcav-dev/")})
        metadata = Path(tmp) / "songs.csv"
        with metadata.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        # `fused` weighs all five embeddings equally, so that the index proposes candidates exactly for any
        # request's weights (ranking.py scales the query by w_request / sqrt(w_catalog)); a zero weight here would
        # leave that embedding out of the candidate search whatever a request asked.
        report = build_catalog(
            audio_root, args.output, metadata, num_proc=args.num_proc, cache=args.cache_dir,
            weights=dict.fromkeys(EMBEDDING_NAMES, 1.0),
            card={"pretty_name": "voicerec catalog of real voices (demo, non-commercial research use)",
                  "license": "other", "license_name": "voicerec-catalog-research-noncommercial",
                  "license_text": LICENSE_TEXT, "repo_id": "voicerec/voicerec-catalog",
                  "description": functools.partial(describe, edcav_artists=edcav_artists, pjs_every=args.pjs_every),
                  "build_command": BUILD_COMMAND},
        )  # fmt: skip
    print(
        f"{report.output}: {report.rows} entries, {len(rows)} takes ({report.computed} analysed, "
        f"{report.cached} cached, {len(report.failed)} failed) in {report.seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
