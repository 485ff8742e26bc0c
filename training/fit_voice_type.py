"""Fit the voice type's classifier and constants (`voicerec.voice_type`), and measure them leave-singers-out.

    OMP_NUM_THREADS=1 python -m training.fit_voice_type --data ../shared/data [--out hub/voicerec-voice-type]

What is fitted, each singer weighing the same whatever their number of clips:
- the pitch-and-formant cue of man/woman (`SEX_SLOPE`, `SEX_BOUNDARY`): a logistic regression on the size score
  over the labelled singers (gtsinger-dev's 10, pjs's man);
- the timbre classifier: a logistic regression (L2, C=`--C`) on the timbre encoder's embedding over the labelled
  singers and the singers of mir1k-dev and edcav-dev whose sex is clear from the pitch-and-formant cue at singer
  level (every clip on one side of the boundary and the singer's median more than `CLEAR_MARGIN` beyond it): their
  corpora have no labels, and ten labelled singers are too few to learn a sex direction in 256 dimensions (alone
  they give pjs's man a female timbre);
- the part constants (`PART_CENTRES`, `PART_SPREAD`): the mean tessitura centre of each gtsinger-dev part's singers
  and the clips' spread around it;
- the timbre cue's weight (`TIMBRE_WEIGHT`): of `TIMBRE_WEIGHTS`, the one whose sum of the two cues has the lowest
  log-loss of "female" over the labelled singers' leave-singers-out cues (inside the cross-validation, chosen on the
  other singers' cues).

The commit threshold is not fitted: the table of commit rate against strict part at other thresholds is printed,
and so is the answer with each singer's threshold chosen on the other singers (does a lower threshold hold on a
new singer?).

Leave-singers-out: each labelled singer in turn is left out of every fit above (its pseudo-labelled helpers stay),
and the held-out singer's clips are answered by the fold's models; figures by `training.evaluate_voice_type`.
Then everything is refitted on all singers and written to `--out` (the classifier, with the timbre encoder's
fingerprint; the constants are printed beside the shipped ones in voicerec/voice_type.py, which must be edited by
hand if they move). Pitch and formants are cached per file (`--cache`), so a refit after new encoder weights only
recomputes the embeddings.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from training.evaluate_voice_type import Outcome, commit_chosen_elsewhere, commit_tradeoff, summary_rows
from training.voice_type_data import Clip, analyse_clips, embed_clips, labelled_clips, unlabelled_clips
from voicerec.audio.vocal_range import VOICE_TYPES
from voicerec.embeddings import Embedder
from voicerec.export import MODEL_CARDS
from voicerec.tools.bench import Reference
from voicerec.voice_type import (
    SHIPPED,
    TIMBRE_WEIGHTS,
    TYPES_OF_SEX,
    Constants,
    VoiceType,
    VoiceTypeClassifier,
    decide_voice_type,
    pitch_formant_logit,
    size_score,
)

CLEAR_MARGIN = 3.0
"""Semitones of size score beyond the boundary that a singer's median must reach to be labelled from it."""
PART_CENTRE = {"Bass": "bass", "Tenor": "tenor", "Alto": "alto", "Soprano": "soprano"}
PARTS_OF_SEX = {"male": ("Bass", "Tenor"), "female": ("Alto", "Soprano")}
SEX_C = 10.0
"""Weak L2 on the one-feature pitch-and-formant logistic."""
LICENSE_NOTE = """Fitted on the embeddings of: GTSinger demo recordings (gtsinger-dev, CC BY-NC-SA 4.0, Zhang et al.,
NeurIPS 2024), PJS (CC BY-SA 4.0, Koguchi, Takamichi et al., 2020), MIR-1K (research use, Hsu & Jang 2010) and
EDCAV2018 isolated vocals of DSD100 (non-commercial research use). As a work derived from gtsinger-dev these
weights are under CC BY-NC-SA 4.0: non-commercial use, with attribution, share-alike."""


def singer_weights(singers: np.ndarray) -> np.ndarray:
    """Sample weights that give every singer the same total weight (mean 1)."""
    counts = pd.Series(singers).map(pd.Series(singers).value_counts()).to_numpy(dtype=float)
    weights = 1.0 / counts
    return weights / weights.mean()


def sizes(clips: list[Clip]) -> np.ndarray:
    return np.array([size_score(c.range.median, c.range.fourth_formant) for c in clips])


def fit_sex_cue(clips: list[Clip]) -> tuple[float, float]:
    """(slope, boundary) of the logistic of "female" on the size score."""
    x = (sizes(clips) - 62.0) / 4.0
    y = np.array([c.sex == "female" for c in clips], dtype=int)
    model = LogisticRegression(C=SEX_C, max_iter=5000).fit(x[:, None], y, sample_weight=singer_weights(
        np.array([c.singer for c in clips])))  # fmt: skip
    slope = float(model.coef_[0, 0]) / 4.0
    return slope, 62.0 - float(model.intercept_[0]) / slope


def fit_parts(clips: list[Clip]) -> tuple[tuple[tuple[str, float], ...], float]:
    """Each type's tessitura centre (the mean of its part's singers; a part no training singer has sits the
    classical gap from the other; the in-between type midway) and the spread of the clips around their part's."""
    rows = pd.DataFrame([{"singer": c.singer, "sex": c.sex, "part": c.part,
                          "centre": (c.range.tessitura_low + c.range.tessitura_high) / 2}
                         for c in clips if c.part])  # fmt: skip
    singer_means = rows.groupby(["sex", "part", "singer"])["centre"].mean()
    part_means = singer_means.groupby(["sex", "part"]).mean().to_dict()
    centres: dict[str, float] = {}
    for sex, (low, high) in PARTS_OF_SEX.items():
        gap = np.mean(VOICE_TYPES[PART_CENTRE[high]]) - np.mean(VOICE_TYPES[PART_CENTRE[low]])
        lo, hi = part_means.get((sex, low)), part_means.get((sex, high))
        lo = hi - gap if lo is None else lo
        hi = lo + gap if hi is None else hi
        names = TYPES_OF_SEX[sex]
        centres |= {names[0]: float(lo), names[1]: float((lo + hi) / 2), names[2]: float(hi)}
    residual = rows["centre"] - [centres[PART_CENTRE[p]] for p in rows["part"]]
    spread = float(np.sqrt(np.average(residual**2, weights=singer_weights(rows["singer"].to_numpy()))))
    return tuple((name, round(centres[name], 2)) for name in VOICE_TYPES), spread


def clear_singers(clips: list[Clip], constants: Constants) -> dict[str, str]:
    """Unlabelled singers whose sex the pitch-and-formant cue makes clear at singer level (see module doc)."""
    frame = pd.DataFrame({"singer": [c.singer for c in clips], "size": sizes(clips)})
    out = {}
    for singer, group in frame.groupby("singer"):
        side = group["size"] > constants.sex_boundary
        if side.all() or not side.any():
            if abs(group["size"].median() - constants.sex_boundary) > CLEAR_MARGIN:
                out[singer] = "female" if side.all() else "male"
    return out


def fit_classifier(embeddings: np.ndarray, sexes: list[str], singers: np.ndarray, C: float,
                   config: dict) -> VoiceTypeClassifier:  # fmt: skip
    y = np.array([s == "female" for s in sexes], dtype=int)
    mean = embeddings.mean(axis=0)
    model = LogisticRegression(C=C, max_iter=5000).fit(embeddings - mean, y, sample_weight=singer_weights(singers))
    return VoiceTypeClassifier(model.coef_[0], mean, float(model.intercept_[0]), config)


def fit(labelled: list[Clip], labelled_emb: np.ndarray, unlabelled: list[Clip], unlabelled_emb: np.ndarray,
        C: float, config: dict) -> tuple[Constants, VoiceTypeClassifier, dict[str, str]]:  # fmt: skip
    """Constants and classifier from these singers (the unlabelled ones labelled where clear)."""
    slope, boundary = fit_sex_cue(labelled)
    centres, spread = fit_parts(labelled)
    constants = SHIPPED.but(sex_slope=slope, sex_boundary=boundary, part_centres=centres, part_spread=spread)
    helpers = clear_singers(unlabelled, constants)
    keep = np.array([c.singer in helpers for c in unlabelled], dtype=bool)
    embeddings = np.concatenate([labelled_emb, unlabelled_emb[keep]])
    sexes = [c.sex for c in labelled] + [helpers[c.singer] for c, k in zip(unlabelled, keep, strict=True) if k]
    singers = np.array([c.singer for c in labelled] + [c.singer for c, k in zip(unlabelled, keep, strict=True) if k])
    return constants, fit_classifier(embeddings, sexes, singers, C, config), helpers


def sex_log_loss(pitch: np.ndarray, timbre: np.ndarray, weight: float, female: np.ndarray,
                 singers: np.ndarray) -> float:  # fmt: skip
    """Log-loss of "female" from pitch + weight x timbre log-odds, each singer weighing the same."""
    z = np.clip(pitch + weight * timbre, -50, 50)
    return float(np.average(np.logaddexp(0.0, np.where(female, -z, z)), weights=singer_weights(singers)))


def choose_timbre_weight(pitch: np.ndarray, timbre: np.ndarray, female: np.ndarray, singers: np.ndarray) -> float:
    """The `TIMBRE_WEIGHTS` value with the lowest `sex_log_loss`."""
    return min(TIMBRE_WEIGHTS, key=lambda w: sex_log_loss(pitch, timbre, w, female, singers))


@dataclass
class CrossValidation:
    """Leave-one-labelled-singer-out answers, and each clip's two cues (log-odds of "female") from its fold."""

    outcomes: dict[str, list[Outcome]]
    pitch: np.ndarray
    timbre: np.ndarray
    """The timbre classifier's log-odds, unweighted."""
    weights: dict[str, float]
    """The timbre weight each held-out singer's answers used (chosen on the other singers' cues)."""


def cross_validate(labelled: list[Clip], labelled_emb: np.ndarray, unlabelled: list[Clip],
                   unlabelled_emb: np.ndarray, C: float, range_penalty: float,
                   commit: float) -> CrossValidation:  # fmt: skip
    """Leave-one-labelled-singer-out answers: with the classifier (its weight chosen on the other singers, and at
    full weight as before), without it, and the former rule."""
    singers = np.array([c.singer for c in labelled])
    fold_of = {}
    for singer in dict.fromkeys(singers):
        train = singers != singer
        constants, classifier, _ = fit([c for c, t in zip(labelled, train, strict=True) if t], labelled_emb[train],
                                       unlabelled, unlabelled_emb, C, {"embedding": "timbre"})  # fmt: skip
        fold_of[singer] = (constants.but(range_penalty=range_penalty, commit_probability=commit), classifier)
    pitch = np.array([pitch_formant_logit(clip.range, fold_of[clip.singer][0]) for clip in labelled])
    timbre = np.array([fold_of[clip.singer][1].logit(e) for clip, e in zip(labelled, labelled_emb, strict=True)])
    female = np.array([c.sex == "female" for c in labelled])
    weights = {singer: choose_timbre_weight(pitch[singers != singer], timbre[singers != singer],
                                            female[singers != singer], singers[singers != singer])
               for singer in fold_of}  # fmt: skip
    names = ("classifier + pitch/formants", "classifier at full weight (before)", "pitch/formants only (fallback)",
             "the former rule (estimate_range)")
    out: dict[str, list[Outcome]] = {name: [] for name in names}
    for i, clip in enumerate(labelled):
        constants, classifier = fold_of[clip.singer]
        embeddings = {"timbre": labelled_emb[i]}
        for name, answer in (
            ("classifier + pitch/formants", decide_voice_type(clip.range, embeddings, classifier,
                                                              constants.but(timbre_weight=weights[clip.singer]))),
            ("classifier at full weight (before)", decide_voice_type(clip.range, embeddings, classifier,
                                                                     constants.but(timbre_weight=1.0))),
            ("pitch/formants only (fallback)", decide_voice_type(clip.range, None, None, constants)),
            ("the former rule (estimate_range)", VoiceType(clip.range.voice_type, "", 0.0, {}, True)),
        ):  # fmt: skip
            out[name].append(Outcome(clip.singer, clip.sex, clip.part, answer))
    return CrossValidation(out, pitch, timbre, weights)


VOICE_TYPE_CARD = MODEL_CARDS / "voice_type.md"


def write_card(folder: Path, config: dict, table: str) -> None:
    """The card, rendered from model_cards/voice_type.md (as the encoders' cards are from theirs)."""
    fields = {
        "license": "cc-by-nc-sa-4.0", "datasets": "- GTSinger/GTSinger", "model_id": "voicerec/voicerec-voice-type",
        "encoder": config["encoder"], "encoder_fingerprint": config["encoder_fingerprint"],
        "labelled_singers": config["labelled_singers"], "helper_singers": config["helper_singers"],
        "helper_female": config["helper_female"], "c": config["C"], "table": table, "license_note": LICENSE_NOTE,
        "timbre_weight": config.get("timbre_weight", SHIPPED.timbre_weight),
    }  # fmt: skip
    (folder / "README.md").write_text(Template(VOICE_TYPE_CARD.read_text()).substitute(fields))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("hub/voicerec-voice-type"))
    parser.add_argument("--cache", type=Path, default=Path("runs/voice_type/features.pkl"))
    parser.add_argument("--timbre-model", help="default: the shipped timbre encoder (hub/voicerec-sscl-timbre)")
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the timbre classifier")
    parser.add_argument("--range-penalty", type=float, default=SHIPPED.range_penalty)
    parser.add_argument("--commit", type=float, default=SHIPPED.commit_probability)
    parser.add_argument("--no-save", action="store_true", help="only the cross-validation")
    args = parser.parse_args()
    reference = Reference()
    reference.run()
    start = time.perf_counter()
    labelled = analyse_clips(labelled_clips(args.data), args.cache)
    unlabelled = analyse_clips(unlabelled_clips(args.data), args.cache)
    features_s = time.perf_counter() - start
    embedder = Embedder.from_pretrained(args.timbre_model)
    start = time.perf_counter()
    labelled_emb = embed_clips(labelled, embedder)["timbre"]
    unlabelled_emb = embed_clips(unlabelled, embedder)["timbre"]
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    cv = cross_validate(labelled, labelled_emb, unlabelled, unlabelled_emb, args.C, args.range_penalty, args.commit)
    outcomes = cv.outcomes
    shipped = outcomes["classifier + pitch/formants"]
    elsewhere, thresholds = commit_chosen_elsewhere(shipped)
    outcomes["classifier + pitch/formants, commit threshold chosen on the other singers"] = elsewhere
    rows = [row for name, result in outcomes.items() for row in summary_rows(name, [o for o in result if o.part])]
    table = pd.DataFrame(rows).to_markdown(index=False)
    print(f"\n## Voice type on gtsinger-dev, leave-singers-out ({sum(bool(c.part) for c in labelled)} clips, "
          f"{len({c.singer for c in labelled if c.part})} singers)\n\n{table}\n")  # fmt: skip
    print(f"Commit rate against strict part where it commits (classifier + pitch/formants):\n\n"
          f"{commit_tradeoff(shipped).to_markdown(index=False)}\n\nThreshold chosen on the other singers "
          f"(strict >= 0.7 where it commits): {json.dumps(thresholds)}\n")  # fmt: skip
    singers = np.array([c.singer for c in labelled])
    female = np.array([c.sex == "female" for c in labelled])
    losses = {w: round(sex_log_loss(cv.pitch, cv.timbre, w, female, singers), 4) for w in TIMBRE_WEIGHTS}
    timbre_weight = choose_timbre_weight(cv.pitch, cv.timbre, female, singers)
    print(f"Man/woman log-loss by timbre weight (leave-singers-out cues, {len(set(singers))} singers): {losses}; "
          f"per held-out singer: {json.dumps(cv.weights)}")  # fmt: skip
    for name, result in outcomes.items():
        man = [o.sex_right for o in result if o.singer == "pjs_singer"]
        if man:
            print(f"pjs (male), man/woman, {name}: {np.mean(man):.3f} of {len(man)} clips")
    cv_s = time.perf_counter() - start
    source = embedder.sources["timbre"]
    config = {"embedding": "timbre", "encoder": Path(source).name if Path(source).is_dir() else source,
              "encoder_fingerprint": embedder.fingerprints["timbre"],
              "embedding_size": int(labelled_emb.shape[1]), "C": args.C}  # fmt: skip
    constants, classifier, helpers = fit(labelled, labelled_emb, unlabelled, unlabelled_emb, args.C, config)
    config |= {"labelled_singers": len({c.singer for c in labelled}), "helper_singers": len(helpers),
               "helper_female": sum(s == "female" for s in helpers.values()), "clear_margin": CLEAR_MARGIN,
               "timbre_weight": timbre_weight}  # fmt: skip
    classifier.config = config
    constants = constants.but(timbre_weight=timbre_weight)
    print("\nConstants fitted on all singers (shipped in voicerec/voice_type.py):")
    for key in ("sex_slope", "sex_boundary", "part_centres", "part_spread", "timbre_weight"):
        print(f"  {key}: fitted {getattr(constants, key)}, shipped {getattr(SHIPPED, key)}")
    print(f"  helper singers: {json.dumps(helpers)}")
    if not args.no_save:
        classifier.save_pretrained(args.out)
        write_card(args.out, config, table)
        print(f"\nWrote {args.out}")
    for _ in range(3):
        reference.run()
    seconds = features_s + embed_s + cv_s
    print(f"\nTime: pitch and formants {features_s:.1f} s (cached), embeddings {embed_s:.1f} s, fits and "
          f"cross-validation {cv_s:.1f} s: {seconds:.1f} s = {reference.ratio(seconds):.0f}x the reference workload "
          f"({reference.seconds:.3f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
