"""Fine-tune the GE2E speech encoder into the singing encoders (`timbre`, `expression`) with MoCo + InfoNCE.

Why start from GE2E: it learned voices from thousands of speakers, and the project has a few hours of singing by
23 people; trained from scratch, the encoders matched MFCC statistics on unseen singers (issue #15). Fine-tuning
keeps what GE2E knows (lower LSTM layers frozen, a distillation term towards the frozen GE2E, a small learning
rate) and teaches what singing needs, with the seed's contrastive policy (training/moco.py): a copy pitch-shifted
by resampling (formants move: another voice) is a negative; a time-stretched copy is a positive for `timbre` and
a negative for `expression`; another moment of the same recording is a positive.

Speed: every clip and its transformed copies are turned into mel spectrograms once; a training step then draws
aligned 1.6 s windows from them, so a step costs three LSTM passes over a batch of windows and no audio work.

    python -m training.finetune_ge2e --config training/configs/ge2e_timbre.yaml
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from training.augment import pitch_shift, semitone_ratio, time_stretch
from training.moco import POLICIES, KeyQueue, contrastive_logits, info_nce, momentum_update
from voicerec import GE2EFeatureExtractor, GE2EModel, load_audio
from voicerec.audio import AudioInputError


@dataclass
class MelViews:
    """Mel power spectrograms of one recording and of its transformed copies, frames aligned by time ratio."""

    singer: str
    plain: np.ndarray  # (frames, n_mels)
    pitched: dict[float, np.ndarray]  # semitones -> mel of the copy resampled by that many semitones
    stretched: dict[float, np.ndarray]  # rate -> mel of the copy played `rate` times faster


def _same_level(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """`y` at `x`'s RMS: a transform must not become a loudness cue (GE2E reads mel power, not log-mel)."""
    return (y * np.sqrt(np.mean(x**2) / max(float(np.mean(y**2)), 1e-12))).astype(np.float32)


def make_views(audio: np.ndarray, singer: str, extractor: GE2EFeatureExtractor, views: dict) -> MelViews:
    x = extractor.raise_volume(audio)
    mel = extractor.mel_power
    pitched = {s: mel(_same_level(pitch_shift(x, s), x)) for sign in (1, -1) for s in [sign * views["pitch_semitones"]]}
    stretched = {r: mel(_same_level(time_stretch(x, r), x)) for r in views["stretch_rates"]}
    return MelViews(singer, mel(x), pitched, stretched)


def load_views(sources: list[str], exclude: set[str], extractor: GE2EFeatureExtractor, views: dict) -> list[MelViews]:
    """Every singing clip of the manifests, decoded and normalised as the app does (`voicerec.load_audio`)."""
    import pandas as pd

    out = []
    for source in sources:
        manifest = pd.read_csv(Path(source) / "manifest.csv")
        rows = manifest[(manifest["kind"] == "singing") & ~manifest["singer"].isin(exclude)]
        for row in tqdm(rows.itertuples(), total=len(rows), desc=f"views {Path(source).name}", leave=False):
            try:
                audio = load_audio(Path(source) / row.path).samples
            except AudioInputError:
                continue
            out.append(make_views(audio, row.singer, extractor, views))
    return out


class WindowSampler:
    """Batches of aligned windows: a query, a positive key (another moment of the recording), and the same
    moment pitch-shifted and time-stretched. Singers are drawn uniformly (PJS's 98 songs are one voice), then a
    recording by its length. Each window gets its own random gain and smooth EQ, so the microphone is no cue."""

    def __init__(self, views: list[MelViews], window: int, eq_db: float, seed: int) -> None:
        self.views, self.window, self.eq_db = views, window, eq_db
        self.rng = np.random.default_rng(seed)
        self.singers = sorted({v.singer for v in views})
        self.by_singer = {s: [i for i, v in enumerate(views) if v.singer == s] for s in self.singers}

    def _crop(self, mel: np.ndarray, start: int) -> np.ndarray:
        start = int(np.clip(start, 0, max(0, len(mel) - self.window)))
        out = mel[start : start + self.window]
        return np.pad(out, ((0, self.window - len(out)), (0, 0))) if len(out) < self.window else out

    def _eq(self, windows: np.ndarray) -> np.ndarray:
        n, _, bands = windows.shape
        axis = np.linspace(-1, 1, bands)
        db = self.rng.uniform(-1, 1, (n, 1)) * self.eq_db * axis  # tilt
        centre, width = self.rng.uniform(-1, 1, (n, 1)), self.rng.uniform(0.2, 0.8, (n, 1))
        db = db + self.rng.uniform(-1, 1, (n, 1)) * self.eq_db * np.exp(-0.5 * ((axis - centre) / width) ** 2)
        db = db + self.rng.uniform(-self.eq_db, self.eq_db, (n, 1))  # gain
        return (windows * 10 ** (db[:, None, :] / 10)).astype(np.float32)

    def batch(self, size: int) -> dict[str, torch.Tensor]:
        parts: dict[str, list[np.ndarray]] = {"query": [], "key": [], "pitched": [], "stretched": []}
        for _ in range(size):
            members = self.by_singer[self.singers[int(self.rng.integers(len(self.singers)))]]
            lengths = np.array([len(self.views[i].plain) for i in members], dtype=float)
            v = self.views[members[int(self.rng.choice(len(members), p=lengths / lengths.sum()))]]
            last = max(1, len(v.plain) - self.window)
            t, t_key = int(self.rng.integers(last)), int(self.rng.integers(last))
            semitones = list(v.pitched)[int(self.rng.integers(len(v.pitched)))]
            rate = list(v.stretched)[int(self.rng.integers(len(v.stretched)))]
            parts["query"].append(self._crop(v.plain, t))
            parts["key"].append(self._crop(v.plain, t_key))
            parts["pitched"].append(self._crop(v.pitched[semitones], round(t / semitone_ratio(semitones))))
            parts["stretched"].append(self._crop(v.stretched[rate], round(t / rate)))
        return {name: torch.from_numpy(self._eq(np.stack(w))) for name, w in parts.items()}


def freeze_lower_layers(model: GE2EModel, layers: int) -> None:
    """Keep GE2E's lower LSTM layers as they are: they hold most of what it learned from speakers."""
    for name, param in model.lstm.named_parameters():
        if int(name.rsplit("_l", 1)[1].split("_")[0]) < layers:
            param.requires_grad_(False)


def train(config: dict, views: list[MelViews] | None = None) -> tuple[GE2EModel, list[dict]]:
    """Fine-tune `config["init"]` (a GE2E folder) with the variant's policy; returns the model and the log."""
    tcfg = config["train"]
    if tcfg.get("threads"):
        torch.set_num_threads(tcfg["threads"])
    accelerator = Accelerator()
    set_seed(config.get("seed", 0))
    student = GE2EModel.from_pretrained(config["init"])
    student.config.variant = config["variant"]
    extractor = GE2EFeatureExtractor.from_pretrained(config["init"])
    if views is None:
        data = config["data"]
        views = load_views(data["sources"], set(data.get("exclude_singers") or []), extractor, config["views"])
    teacher = copy.deepcopy(student).eval().requires_grad_(False)
    freeze_lower_layers(student, tcfg["freeze_layers"])
    key_encoder = copy.deepcopy(student).requires_grad_(False)
    queue = KeyQueue(tcfg["queue_size"], student.config.embedding_size)
    policy = {name: POLICIES[config["variant"]][name] for name in ("key", "stretched", "pitched")}
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=tcfg["lr"], weight_decay=tcfg["weight_decay"])
    student, optimizer = accelerator.prepare(student, optimizer)
    inner = accelerator.unwrap_model(student)
    sampler = WindowSampler(views, inner.config.window_frames, config["views"]["eq_db"],
                            config.get("seed", 0) + accelerator.process_index)  # fmt: skip
    log = []
    start = time.monotonic()
    student.train()
    progress = tqdm(range(tcfg["steps"]), disable=not accelerator.is_local_main_process, desc=config["variant"])
    for step in progress:
        batch = {k: v.to(accelerator.device) for k, v in sampler.batch(tcfg["batch_size"]).items()}
        query = student(input_features=batch["query"]).embeddings
        with torch.no_grad():
            names = list(policy)
            keys = key_encoder(input_features=torch.cat([batch[n] for n in names])).embeddings
            copies = dict(zip(names, keys.chunk(len(names)), strict=True))
            target = teacher(input_features=batch["query"]).embeddings
        logits, positive = contrastive_logits(query, copies, policy, queue.keys.clone())
        contrastive = info_nce(logits, positive, tcfg["temperature"])
        distill = (1 - (query * target).sum(-1)).mean()
        loss = contrastive + tcfg["distill"] * distill
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        momentum_update(inner, key_encoder, tcfg["momentum"])
        queue.enqueue(accelerator.gather(copies["key"]))
        log.append({"step": step, "loss": loss.item(), "contrastive": contrastive.item(), "distill": distill.item()})
        progress.set_postfix(loss=f"{loss.item():.3f}", distill=f"{distill.item():.3f}")
    log.append({"minutes": (time.monotonic() - start) / 60, "clips": len(views)})
    return inner.cpu().eval().requires_grad_(True), log


def load_config(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--output", help="model folder (default: the config's export.out_dir)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    model, log = train(config)
    from training.export_ge2e import export_encoder

    command = shlex.join(["python", "-m", "training.finetune_ge2e", *(argv or sys.argv[1:])])
    out = export_encoder(model, args.output or config["export"]["out_dir"], config, log, command)
    print(json.dumps(log[-1]), "->", out)


if __name__ == "__main__":
    main()
