"""The singer's voice type from every cue the product has, with how sure it is, in words.

Two decisions, both probabilities:

1. **Man or woman.** Two independent cues, whose log-odds add (naive Bayes):
   - *pitch and vocal-tract size*: `vocal_range.is_female`'s score, median pitch + 4 x F4 semitones above 3.8 kHz,
     through a logistic (`SEX_SLOPE`, `SEX_BOUNDARY`, fitted on the labelled dev singers);
   - *timbre*: a logistic regression on the timbre encoder's embedding (`VoiceTypeClassifier`, small weights in
     `hub/voicerec-voice-type`, refitted by `python -m training.fit_voice_type` whenever the encoder changes),
     scaled by `TIMBRE_WEIGHT`: the cues are not independent (the classifier learns mostly from singers labelled by
     the first cue), so adding its log-odds in full made the answer surer than it is right. It reads the embedding
     of the exact encoder it was fitted on (its weights' fingerprint); with another encoder, or without the file,
     only the first cue speaks.
2. **The part within that sex** (bass, baritone, tenor; alto, mezzo-soprano, soprano): where the singer's
   tessitura sits, a Cauchy density around each type's centre in everyday singing (`PART_CENTRES`) with scale
   `PART_SPREAD` (heavy tails: a tessitura far from every centre, such as a tenor singing one song around B♭2,
   says "lower than most", not "surely a bass", so the tessitura alone rarely decides); and notes sung beyond a
   type's classical comfortable range (`VOICE_TYPES`, moved to that centre) count against it, `RANGE_PENALTY`
   nats per semitone past `RANGE_TOLERANCE`. A few seconds of a song in a comfortable key rarely decide between
   neighbouring parts, so the answer commits to one type only when its probability (sex and part together)
   reaches `COMMIT_PROBABILITY`; otherwise it names the most likely type and the runner-up ("baritone — could be
   tenor") and asks for lower and higher notes, or the range test.

Constants and the classifier are fitted leave-singers-out on gtsinger-dev (10 singers with voice parts), pjs (one
man) and the singers of mir1k-dev and edcav-dev whose sex the pitch-and-formant cue makes clear at singer level
(training/fit_voice_type.py; figures in docs/pitch_and_range.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .audio.vocal_range import FEMALE_TYPES, FORMANT_REFERENCE_HZ, FORMANT_WEIGHT, MALE_TYPES, VOICE_TYPES, VocalRange

FORMANT_MAX_MEDIAN = 67.0
"""Above a median of G4 most sung frames are too high for formants (`formants.MAX_F0_HZ`), and the F4 comes from the
lowest few notes, where the LPC fit follows the harmonics: a synthetic soprano singing F4–G5 read 3.06 kHz, a man's.
No dev man sings that high (highest median 64.7)."""
TYPES_OF_SEX: dict[str, tuple[str, ...]] = {"male": MALE_TYPES, "female": FEMALE_TYPES}
SEX_SLOPE = 1.26
"""Log-odds of "female" per unit of the size score (median + 4 x F4 semitones), fitted on the labelled singers."""
SEX_BOUNDARY = 63.04
"""Size score at which the pitch-and-formant cue is undecided (the rule's `FEMALE_ABOVE_MIDI` is 62.4)."""
PART_CENTRES: dict[str, float] = {"bass": 54.86, "baritone": 56.29, "tenor": 57.72, "alto": 61.59,
                                  "mezzo-soprano": 62.83, "soprano": 64.06}  # fmt: skip
"""Tessitura centre (MIDI) of each type in everyday singing: the mean over the singers of each labelled part, the
in-between type midway. Everyday singers sing pop songs in comfortable keys, well below the classical tessituras,
and the parts of one sex barely differ there (the bass sings where the tenors do)."""
PART_SPREAD = 3.64
"""Spread (semitones) of a singer's tessitura centre around their type's, from song to song."""
RANGE_TOLERANCE = 2.0
RANGE_PENALTY = 1.0
"""Notes sung more than `RANGE_TOLERANCE` semitones beyond a type's comfortable range (moved by the sex's offset)
cost `RANGE_PENALTY` nats of log-likelihood per semitone: singing a clear A4 rules out a bass."""
TIMBRE_WEIGHT = 0.25
"""Weight of the timbre classifier's log-odds in the man/woman decision: the value of `TIMBRE_WEIGHTS` with the
lowest leave-singers-out log-loss of "female" on the labelled singers (`training.fit_voice_type`): 0.0566 against
0.0568 without the cue and 0.0626 at full weight, which was surer than it was right."""
TIMBRE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
COMMIT_PROBABILITY = 0.7
"""The answer names one type only when it is at least this likely. Lower thresholds commit more often, but a
threshold chosen on nine singers does not hold on the tenth (leave-singers-out table in docs/pitch_and_range.md)."""
OTHER_SEX_PROBABILITY = 0.1
"""When the other sex is at least this likely, the alternative named is its most likely type ("tenor — could be
alto"), whatever the runner-up within the sex."""
NEIGHBOUR_WORDS = "Sing lower and higher notes, or take the range test, to be sure."
CLASSIFIER_FILES = ("config.json", "model.safetensors")


@dataclass(frozen=True)
class Constants:
    """The fitted constants above, as one value: the cross-validation refits them on each fold's singers."""

    sex_slope: float = SEX_SLOPE
    sex_boundary: float = SEX_BOUNDARY
    part_centres: tuple[tuple[str, float], ...] = tuple(PART_CENTRES.items())
    part_spread: float = PART_SPREAD
    range_penalty: float = RANGE_PENALTY
    commit_probability: float = COMMIT_PROBABILITY
    timbre_weight: float = TIMBRE_WEIGHT

    def but(self, **changes) -> Constants:
        return replace(self, **changes)


SHIPPED = Constants()


def size_score(median_midi: float, fourth_formant_hz: float | None) -> float:
    """Median pitch + 4 x F4 semitones above 3.8 kHz (F4 unknown, or the median above `FORMANT_MAX_MEDIAN`: taken
    at 3.8 kHz, so pitch alone speaks)."""
    known = fourth_formant_hz is not None and np.isfinite(fourth_formant_hz) and median_midi <= FORMANT_MAX_MEDIAN
    f4 = fourth_formant_hz if known else FORMANT_REFERENCE_HZ
    return float(median_midi + FORMANT_WEIGHT * 12.0 * np.log2(f4 / FORMANT_REFERENCE_HZ))


def pitch_formant_logit(sung: VocalRange, constants: Constants = SHIPPED) -> float:
    """Log-odds of a female voice from pitch and vocal-tract size alone."""
    return constants.sex_slope * (size_score(sung.median, sung.fourth_formant) - constants.sex_boundary)


def part_probabilities(sung: VocalRange, sex: str, constants: Constants = SHIPPED) -> dict[str, float]:
    """P(type | sex) for the three types of `sex`, from the tessitura and the notes sung (see module doc)."""
    centres = dict(constants.part_centres)
    centre = (sung.tessitura_low + sung.tessitura_high) / 2
    loglik = {}
    for name in TYPES_OF_SEX[sex]:
        offset = centres[name] - sum(VOICE_TYPES[name]) / 2
        low, high = (bound + offset for bound in VOICE_TYPES[name])
        beyond = max(0.0, low - sung.low - RANGE_TOLERANCE) + max(0.0, sung.high - high - RANGE_TOLERANCE)
        spread = constants.part_spread
        z = (centre - centres[name]) / spread
        loglik[name] = -np.log1p(z**2) - constants.range_penalty * beyond  # Cauchy: heavy tails (module doc)
    top = max(loglik.values())
    weights = {name: np.exp(value - top) for name, value in loglik.items()}
    total = sum(weights.values())
    return {name: float(w / total) for name, w in weights.items()}


@dataclass
class VoiceType:
    """The voice type as the product states it: the most likely type, how sure, and the words to say it."""

    label: str
    """Most likely of the six types."""
    sex: str
    """"male" or "female" (the more likely)."""
    female_probability: float
    probabilities: dict[str, float]
    """All six types (sum 1)."""
    committed: bool
    """Whether the evidence decides one type (its probability >= COMMIT_PROBABILITY)."""
    alternative: str | None = None
    """The runner-up, named when not committed."""
    method: str = "timbre classifier + pitch and formants"
    cues: dict[str, float] = field(default_factory=dict)
    """The log-odds of "female" from each cue, as added (the timbre cue already scaled by its weight)."""

    @property
    def headline(self) -> str:
        """'tenor', or 'baritone — could be tenor'."""
        return self.label if self.committed else f"{self.label} — could be {self.alternative}"

    @property
    def advice(self) -> str:
        """What would make the answer sure ("" when it is)."""
        return "" if self.committed else NEIGHBOUR_WORDS

    @property
    def text(self) -> str:
        """The headline, with what would make it sure when it is not."""
        return f"{self.headline}. {self.advice}" if self.advice else self.headline

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "sex": self.sex,
            "female_probability": round(self.female_probability, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "committed": self.committed,
            "alternative": self.alternative,
            "method": self.method,
            "cues": {k: round(v, 3) for k, v in self.cues.items()},
            "text": self.text,
        }


class VoiceTypeClassifier:
    """Logistic regression for "female" on one encoder's unit embedding: logit = coef . (x - mean) + intercept."""

    def __init__(self, coef: np.ndarray, mean: np.ndarray, intercept: float, config: dict):
        self.coef = np.asarray(coef, dtype=np.float64)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.intercept = float(intercept)
        self.config = config

    @property
    def embedding(self) -> str:
        """Which embedding it reads ("timbre")."""
        return self.config["embedding"]

    @property
    def encoder_fingerprint(self) -> str:
        """Fingerprint (`embeddings.weights_fingerprint`) of the encoder whose embeddings it was fitted on."""
        return self.config.get("encoder_fingerprint", "")

    def logit(self, embedding: np.ndarray) -> float:
        return float(self.coef @ (np.asarray(embedding, dtype=np.float64) - self.mean) + self.intercept)

    def save_pretrained(self, folder: str | Path) -> None:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"coef": self.coef.astype(np.float32), "mean": self.mean.astype(np.float32),
                   "intercept": np.array([self.intercept], dtype=np.float32)}  # fmt: skip
        save_file(tensors, str(folder / CLASSIFIER_FILES[1]))
        (folder / CLASSIFIER_FILES[0]).write_text(json.dumps(self.config, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, source: str | Path, revision: str | None = None) -> VoiceTypeClassifier:
        """A folder, or a Hub id at `revision` (its two files through huggingface_hub's cache)."""
        from safetensors.numpy import load_file

        if Path(source).is_dir():
            paths = [Path(source) / name for name in CLASSIFIER_FILES]
        else:
            from huggingface_hub import hf_hub_download

            paths = [Path(hf_hub_download(str(source), name, revision=revision)) for name in CLASSIFIER_FILES]
        if not all(p.is_file() for p in paths):
            raise OSError(f"No voice-type classifier in {source} (expected {', '.join(CLASSIFIER_FILES)}).")
        config = json.loads(paths[0].read_text())
        tensors = load_file(str(paths[1]))
        return cls(tensors["coef"], tensors["mean"], float(tensors["intercept"][0]), config)


def decide_voice_type(
    sung: VocalRange,
    embeddings: dict[str, np.ndarray] | None = None,
    classifier: VoiceTypeClassifier | None = None,
    constants: Constants = SHIPPED,
) -> VoiceType:
    """The voice type from the range (pitch, tessitura, F4) and, with a classifier, the timbre embedding."""
    cues = {"pitch and formants": pitch_formant_logit(sung, constants)}
    method = "pitch and formants"
    if classifier is not None and embeddings is not None and classifier.embedding in embeddings:
        cues["timbre"] = constants.timbre_weight * classifier.logit(embeddings[classifier.embedding])
        method = "timbre classifier + pitch and formants"
    female = float(1.0 / (1.0 + np.exp(-np.clip(sum(cues.values()), -50, 50))))
    probabilities = {}
    for sex, p_sex in (("male", 1.0 - female), ("female", female)):
        for name, p in part_probabilities(sung, sex, constants).items():
            probabilities[name] = p_sex * p
    probabilities = {name: probabilities[name] for name in VOICE_TYPES}
    ranked = sorted(probabilities, key=probabilities.get, reverse=True)
    label = ranked[0]
    committed = probabilities[label] >= constants.commit_probability
    other = "male" if label in FEMALE_TYPES else "female"
    p_other = female if other == "female" else 1.0 - female
    runner_up = next(n for n in ranked if n in TYPES_OF_SEX[other]) if p_other >= OTHER_SEX_PROBABILITY else ranked[1]
    return VoiceType(
        label=label,
        sex="female" if label in FEMALE_TYPES else "male",
        female_probability=female,
        probabilities=probabilities,
        committed=committed,
        alternative=None if committed else runner_up,
        method=method,
        cues=cues,
    )
