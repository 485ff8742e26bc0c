"""Build the default catalog shipped in hub/voicerec-catalog: real people singing real songs.

    OMP_NUM_THREADS=1 python -m training.build_default_catalog --data ../shared/data --output hub/voicerec-catalog

One entry per singer and song, from the singing takes of three corpora in `--data` (nothing is copied: songs.csv
goes to a temporary folder and `voicerec catalog build` reads the audio in place; only embeddings and metadata
reach the output, never audio):

- gtsinger-dev: ten singers of the GTSinger corpus, every song they sing; the takes of a song (plain and with a
  technique) are one entry.
- mir1k-dev: twelve amateur singers of MIR-1K, every song; the clips of a song are one entry.
- pjs: one singer and 98 short songs, so a fixed selection (every `--pjs-every`-th song number: pjs005, pjs010,
  ...) keeps that one voice to about a fifth of the entries.

Where a song is one we know, `title` is its usual title and `artist` its original performer (for classical pieces,
the composer); `KNOWN` lists them, the rest keep the corpus's title (MIR-1K's is the first lyric line) and no
artist. Range, tessitura and key come from the recordings' pitch track. Analyses are cached by the build (file
content + encoder weights), so a rebuild after new encoders only analyses again, and a repeat is fast.
"""

from __future__ import annotations

import argparse
import csv
import re
import tempfile
from collections import Counter
from pathlib import Path

from voicerec.defaults import HUB_DIR
from voicerec.embeddings import EMBEDDING_NAMES
from voicerec.search.catalog import build_catalog

BUILD_COMMAND = (
    "OMP_NUM_THREADS=1 python -m training.build_default_catalog --data ../shared/data --output hub/voicerec-catalog"
)
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
SOURCES = {
    "gtsinger-dev": ("GTSinger (Zhang et al., NeurIPS 2024), public demo recordings", "cc-by-nc-sa-4.0"),
    "mir1k-dev": ("MIR-1K (Hsu & Jang, IEEE TASLP 2010), MIR Lab, National Tsing Hua University", "research use only"),
    "pjs": ("PJS v1.1 (Koguchi, Takamichi et al., 2020)", "cc-by-sa-4.0"),
}
LICENSE_TEXT = """\
# Terms of the voicerec catalog of real voices

This dataset holds no audio: metadata, pitch-tracked ranges and keys, and embeddings computed from recordings of
three research corpora. Each entry's `source` and `license` columns name its corpus and terms:

- GTSinger (Zhang et al., NeurIPS 2024; https://github.com/AaronZ345/GTSinger): CC BY-NC-SA 4.0, non-commercial,
  with attribution to the GTSinger authors, share-alike.
- MIR-1K (Hsu & Jang, IEEE TASLP 18(2), 2010; MIR Lab, National Tsing Hua University): distributed by its
  authors for research use.
- PJS v1.1 (Koguchi, Takamichi et al., 2020): CC BY-SA 4.0, with attribution, share-alike.

The dataset as a whole is for non-commercial research use only: the most restrictive of these terms apply.
"""
DESCRIPTION = """\
**Real people singing real songs, as a demo.** Each entry is one singer's recording of one song, taken from three
research corpora of singing. It shows what voicerec does with real voices; it is not a music service's catalog:
a few hundred voices would be needed for that, and no entry links to the song itself.

- **GTSinger**, $gtsinger entries: the public demo recordings of ten singers of the GTSinger corpus (Zhang et al.,
  "GTSinger: A Global Multi-Technique Singing Corpus with Realistic Music Scores for All Singing Tasks", NeurIPS 2024;
  https://github.com/AaronZ345/GTSinger). License: CC BY-NC-SA 4.0, non-commercial, with attribution to the
  GTSinger authors (Zhejiang University), share-alike.
- **MIR-1K**, $mir1k entries: twelve amateur singers of Mandarin pop songs (Hsu & Jang, "On the improvement of
  singing voice separation for monaural recordings using the MIR-1K dataset", IEEE TASLP 18(2), 2010; MIR Lab,
  National Tsing Hua University). Terms: distributed by its authors for research use.
- **PJS**, $pjs entries: one singer and short songs written for the Phoneme-balanced Japanese Singing-voice corpus
  v1.1 (Koguchi, Takamichi et al., 2020), a fixed selection (the songs whose number $pjs_every divides). License:
  CC BY-SA 4.0, with attribution, share-alike.

**The dataset as a whole is for non-commercial research use only** (the most restrictive of its sources'
terms apply). No audio is included: only metadata, the pitch-tracked range, tessitura and key, and the
embeddings of each recording.

- One entry per singer and song: where a singer recorded several takes of a song (GTSinger's plain and
  technique takes, MIR-1K's clips of one song), the entry's embeddings are averaged over the takes and
  re-normalised, and its range, tessitura and key come from the takes' pooled pitch track.
- `voice` names the corpus's singer ("GTSinger ES-Soprano-1", "MIR-1K Ani", "PJS").
- `title` and `artist`: where the song is a known one, its usual title and original performer (for classical
  pieces, the composer): $known entries. Otherwise the corpus's title (for MIR-1K, which gives no titles, the first
  lyric line, ending in "…") and no artist. Unknown artists are left empty rather than guessed.
- `key` is the key the recording is sung in, estimated from its pitch track (Krumhansl-Kessler profiles), not the
  original recording's key."""


def _lyric_line(title: str) -> str:
    """MIR-1K's 'lyrics: <first line> [MIR-1K <singer> song <n>]' -> '<first line>…'."""
    return re.sub(r"\s*\[MIR-1K[^\]]*\]\s*$", "", title.removeprefix("lyrics:").strip()) + "…"


def _read(data: Path, corpus: str) -> list[dict]:
    with (data / corpus / "manifest.csv").open(newline="") as f:
        return [row for row in csv.DictReader(f) if row["kind"] == "singing"]


def catalog_rows(data: Path, pjs_every: int = 5) -> list[dict]:
    """songs.csv rows (file relative to `data`) for every singing take; takes of one entry share `song_id`."""
    rows = []
    for corpus, (source, license_) in SOURCES.items():
        for take in _read(data, corpus):
            song = take["song"]
            if corpus == "gtsinger-dev":
                song_id, voice, title = song, f"GTSinger {take['singer']}", take["title"]
                title = title[:1].upper() + title[1:]
            elif corpus == "mir1k-dev":  # one song id may be sung by several singers
                singer = take["singer"].removeprefix("mir1k_")
                song_id, voice, title = f"{take['singer']}:{song}", f"MIR-1K {singer}", _lyric_line(take["title"])
            else:
                if int(song.removeprefix("pjs")) % pjs_every:
                    continue
                song_id, voice, title = song, "PJS", f"{song} (PJS original short song)"
            title, artist = KNOWN.get(song, (title, ""))
            rows.append({"file": f"{corpus}/{take['path']}", "song_id": song_id, "title": title, "artist": artist,
                         "language": take["language"].lower(), "source": source, "license": license_,
                         "voice": voice})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="gtsinger-dev, mir1k-dev, pjs")
    parser.add_argument("--output", type=Path, default=HUB_DIR / "voicerec-catalog")
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--pjs-every", type=int, default=5, help="take pjs songs whose number this divides")
    parser.add_argument("--cache-dir", help="analysis cache (default: the build's, ~/.cache/voicerec)")
    args = parser.parse_args()
    rows = catalog_rows(args.data, args.pjs_every)
    entries = {row["song_id"]: row for row in rows}.values()
    per_corpus = Counter(row["file"].split("/", 1)[0] for row in entries)
    description = DESCRIPTION
    for name, count in (("$gtsinger", per_corpus["gtsinger-dev"]), ("$mir1k", per_corpus["mir1k-dev"]),
                        ("$pjs_every", args.pjs_every), ("$pjs", per_corpus["pjs"]),
                        ("$known", sum(1 for row in entries if row["artist"]))):  # fmt: skip
        description = description.replace(name, str(count))
    with tempfile.TemporaryDirectory() as tmp:
        metadata = Path(tmp) / "songs.csv"
        with metadata.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        # `fused` weighs all five embeddings equally, so that the index proposes candidates exactly for any
        # request's weights (ranking.py scales the query by w_request / sqrt(w_catalog)); a zero weight here would
        # leave that embedding out of the candidate search whatever a request asked.
        report = build_catalog(
            args.data, args.output, metadata, num_proc=args.num_proc, cache=args.cache_dir,
            weights=dict.fromkeys(EMBEDDING_NAMES, 1.0),
            card={"pretty_name": "voicerec catalog of real voices (demo, non-commercial research use)",
                  "license": "other", "license_name": "voicerec-catalog-research-noncommercial",
                  "license_text": LICENSE_TEXT, "repo_id": "voicerec/voicerec-catalog", "description": description,
                  "build_command": BUILD_COMMAND},
        )  # fmt: skip
    voices = Counter(row["voice"] for row in entries)
    print(
        f"{report.output}: {report.rows} entries from {len(voices)} singers (largest share "
        f"{max(voices.values()) / max(report.rows, 1):.0%}), {len(rows)} takes ({report.computed} analysed, "
        f"{report.cached} cached, {len(report.failed)} failed) in {report.seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
