"""How right the product's voice type is on singers with known voice parts, clip by clip and singer by singer.

Figures (each with a 95 % bootstrap interval over singers, 2,000 resamples of the singers):
- man/woman: the sex of the stated type against the label;
- strict part: the stated type collapsed to the four labels (bass/baritone -> Bass, tenor -> Tenor,
  alto/mezzo-soprano -> Alto, soprano -> Soprano);
- lenient part: baritone may also be Tenor, mezzo-soprano also Soprano (the in-between types);
- named: the label is the stated type's part or, when the answer hedges, its alternative's;
- commits: how often the answer names one type only; strict where it commits;
- opposite sex for a bass or a soprano: must be 0.
Singer level: the majority of the singer's clips (a tie counts as wrong), and the singer's commit share.
`commit_tradeoff`: the commit rate and strict part where it commits, had the answer committed at other thresholds;
`commit_chosen_elsewhere`: each singer's answers committed at the threshold chosen on the other singers.

`fit_voice_type` reports the leave-singers-out figures on the dev singers with these functions. On another folder
with the same manifest columns (the held-out singers), the shipped model is measured as the app runs it:

    OMP_NUM_THREADS=1 python -m training.evaluate_voice_type --data ../shared/data/gtsinger-heldout
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from training.evaluate_pitch import ALSO_ACCEPTED, PART_OF_TYPE
from voicerec.audio.vocal_range import FEMALE_TYPES
from voicerec.voice_type import VoiceType


@dataclass
class Outcome:
    """One clip's labels and the answer given for it."""

    singer: str
    sex: str
    part: str
    answer: VoiceType

    @property
    def sex_right(self) -> bool:
        return ("female" if self.answer.label in FEMALE_TYPES else "male") == self.sex

    @property
    def strict(self) -> bool:
        return PART_OF_TYPE[self.answer.label] == self.part

    @property
    def lenient(self) -> bool:
        return self.part in (PART_OF_TYPE[self.answer.label], ALSO_ACCEPTED.get(self.answer.label))

    @property
    def named(self) -> bool:
        alternative = self.answer.alternative
        return self.strict or (alternative is not None and PART_OF_TYPE[alternative] == self.part)


def _interval(values: pd.Series, singers: pd.Series, seed: int = 0, n: int = 2000) -> tuple[float, float]:
    """95 % bootstrap interval over singers of the pooled mean of `values` (NaN rows ignored)."""
    rng = np.random.default_rng(seed)
    groups = {s: values[singers == s].dropna().to_numpy(dtype=float) for s in singers.unique()}
    names = list(groups)
    stats = []
    for _ in range(n):
        pick = np.concatenate([groups[names[i]] for i in rng.integers(0, len(names), len(names))])
        if pick.size:
            stats.append(pick.mean())
    if not stats:
        return float("nan"), float("nan")
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def _figure(values: pd.Series, singers: pd.Series) -> str:
    values = values.astype(float)
    if values.notna().sum() == 0:
        return "–"
    low, high = _interval(values, singers)
    return f"{values.mean():.3f} [{low:.2f}, {high:.2f}] (n={int(values.notna().sum())})"


def clip_frame(outcomes: list[Outcome]) -> pd.DataFrame:
    rows = []
    for o in outcomes:
        rows.append({"singer": o.singer, "sex": o.sex, "part": o.part, "label": o.answer.label,
                     "alternative": o.answer.alternative, "committed": o.answer.committed,
                     "female_probability": o.answer.female_probability, "sex_right": o.sex_right,
                     "strict": o.strict if o.part else np.nan, "lenient": o.lenient if o.part else np.nan,
                     "named": o.named if o.part else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def summary_rows(name: str, outcomes: list[Outcome]) -> list[dict]:
    """The figures of the module doc for one way of answering, clip level and singer level."""
    df = clip_frame(outcomes)
    with_part = df[df["part"] != ""]
    committed = with_part["strict"].where(with_part["committed"])
    outer = df[df["part"].isin(["Bass", "Soprano"])]
    clip = {
        "answer": name,
        "unit": "clip",
        "man/woman": _figure(df["sex_right"], df["singer"]),
        "strict part": _figure(with_part["strict"], with_part["singer"]),
        "lenient part": _figure(with_part["lenient"], with_part["singer"]),
        "named (type or alternative)": _figure(with_part["named"], with_part["singer"]),
        "commits": _figure(with_part["committed"], with_part["singer"]),
        "strict where it commits": _figure(committed, with_part["singer"]),
        "bass/soprano called the other sex": int((~outer["sex_right"]).sum()),
    }
    singers = []
    for singer, group in df.groupby("singer"):
        counts = Counter(PART_OF_TYPE[label] for label in group["label"]).most_common()
        majority = counts[0][0] if len(counts) == 1 or counts[0][1] > counts[1][1] else "tie"
        sexes = Counter(group["sex_right"]).most_common()
        sex_majority = sexes[0][0] if len(sexes) == 1 or sexes[0][1] > sexes[1][1] else False
        part = group["part"].iloc[0]
        singers.append({"singer": singer, "sex_right": bool(sex_majority),
                        "strict": majority == part if part else np.nan,
                        "commits": group["committed"].mean() if part else np.nan})  # fmt: skip
    per_singer = pd.DataFrame(singers)
    with_part_s = per_singer[per_singer["strict"].notna()]
    singer = {
        "answer": name,
        "unit": "singer",
        "man/woman": f"{int(per_singer['sex_right'].sum())}/{len(per_singer)}",
        "strict part": f"{int(with_part_s['strict'].sum())}/{len(with_part_s)}",
        "lenient part": "",
        "named (type or alternative)": "",
        "commits": f"{with_part_s['commits'].mean():.3f} (mean share)",
        "strict where it commits": "",
        "bass/soprano called the other sex": "",
    }
    return [clip, singer]


COMMIT_THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75)
MIN_COMMITS = 3
"""A threshold is chosen only where the other singers' answers commit at least this often (else none commits)."""


def committed_at(outcomes: list[Outcome], threshold: float) -> list[Outcome]:
    """The same answers, committing when the top type is at least `threshold` likely."""
    return [replace(o, answer=replace(o.answer, committed=max(o.answer.probabilities.values()) >= threshold))
            for o in outcomes]  # fmt: skip


def commit_tradeoff(outcomes: list[Outcome], thresholds: tuple[float, ...] = COMMIT_THRESHOLDS) -> pd.DataFrame:
    """Commit rate and strict part where it commits, at each threshold (clips with a part)."""
    rows = []
    for threshold in thresholds:
        clip = summary_rows("", committed_at([o for o in outcomes if o.part], threshold))[0]
        rows.append({"commit when the top type reaches": threshold, "commits": clip["commits"],
                     "strict where it commits": clip["strict where it commits"]})  # fmt: skip
    return pd.DataFrame(rows)


def commit_chosen_elsewhere(
    outcomes: list[Outcome], target: float = 0.7, thresholds: tuple[float, ...] = COMMIT_THRESHOLDS
) -> tuple[list[Outcome], dict[str, float]]:
    """Each singer's answers committed at the lowest threshold at which the *other* singers' committed answers are
    strictly right at least `target` of the time (at least `MIN_COMMITS` of them): whether choosing the threshold on
    some singers holds on a new one. Returns the answers and each singer's threshold."""
    with_part = [o for o in outcomes if o.part]
    out, chosen = [], {}
    for singer in dict.fromkeys(o.singer for o in with_part):
        others = [o for o in with_part if o.singer != singer]
        good = []
        for threshold in thresholds:
            strict = [o.strict for o in committed_at(others, threshold) if o.answer.committed]
            if len(strict) >= MIN_COMMITS and np.mean(strict) >= target:
                good.append(threshold)
        chosen[singer] = min(good) if good else 1.0
        out += committed_at([o for o in with_part if o.singer == singer], chosen[singer])
    return out, chosen


def main() -> None:
    from training.voice_type_data import analyse_clips, embed_clips
    from voicerec.embeddings import Embedder
    from voicerec.recommender import load_voice_classifier
    from voicerec.voice_type import decide_voice_type

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder with manifest.csv (gender, voice_part)")
    parser.add_argument("--cache", type=Path, default=Path("runs/voice_type/features.pkl"))
    parser.add_argument("--timbre-model", help="default: the shipped timbre encoder")
    parser.add_argument("--voice-type-model", help="default: hub/voicerec-voice-type")
    args = parser.parse_args()

    manifest = pd.read_csv(args.data / "manifest.csv")
    manifest = manifest[manifest["kind"] == "singing"]
    rows = pd.DataFrame({"path": [str(args.data / p) for p in manifest["path"]], "singer": manifest["singer"],
                         "sex": manifest["gender"], "part": manifest["voice_part"].fillna(""),
                         "corpus": args.data.name})  # fmt: skip
    clips = analyse_clips(rows, args.cache)
    embedder = Embedder.from_pretrained(args.timbre_model)
    classifier, why = load_voice_classifier(args.voice_type_model, embedder)
    if classifier is None:
        print(f"No classifier: {why}; pitch and formants only.")
    embeddings = embed_clips(clips, embedder)
    with_classifier = [Outcome(c.singer, c.sex, c.part, decide_voice_type(c.range, {"timbre": e}, classifier))
                       for c, e in zip(clips, embeddings["timbre"], strict=True)]  # fmt: skip
    fallback = [Outcome(c.singer, c.sex, c.part, decide_voice_type(c.range)) for c in clips]
    before = [Outcome(c.singer, c.sex, c.part, VoiceType(c.range.voice_type, "", 0.0, {}, True)) for c in clips]
    table = pd.DataFrame(summary_rows("classifier + pitch/formants (shipped)", with_classifier)
                         + summary_rows("pitch/formants only (fallback)", fallback)
                         + summary_rows("the former rule", before))  # fmt: skip
    print(f"\n## Voice type on {args.data.name} ({len(clips)} singing clips, {rows['singer'].nunique()} singers)\n")
    print(table.to_markdown(index=False))
    print(f"\nCommit rate against strict part where it commits (shipped answer):\n\n"
          f"{commit_tradeoff(with_classifier).to_markdown(index=False)}")  # fmt: skip


if __name__ == "__main__":
    main()
