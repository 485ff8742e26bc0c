"""Train the Time Jump AutoEncoder (TJAE) whose pooled latent is voicerec's `mood` embedding.

Self-supervised: random crops of singing are encoded and rebuilt. Runs through `accelerate`, so the same
command trains on this CPU, on a GPU, or on several machines (`accelerate launch training/train_tjae.py ...`).
Clips listed under `data.heldout` never reach training; `training/evaluate_tjae.py` and
`training/ablate_tjae.py` measure on them.

    python training/train_tjae.py --config training/configs/tjae.yaml --output-dir runs/tjae
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from accelerate import Accelerator
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.data import Clip, RandomCrops, load_clips  # noqa: E402
from voicerec import TJAEConfig, TJAEModel  # noqa: E402
from voicerec.audio.synth import VOICES, scale_melody, sing  # noqa: E402


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    """The YAML config, with `section.key=value` overrides (values parsed as YAML) applied on top."""
    cfg = yaml.safe_load(Path(path).read_text())
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override must look like section.key=value, got {item!r}")
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return cfg


def synth_clips(n: int, seed: int, sr: int = 16000) -> list[Clip]:
    """Synthetic singing (known voices and melodies) to widen the range of voices seen in training."""
    rng = np.random.default_rng(seed)
    names = sorted(VOICES)
    clips = []
    for i in range(n):
        name = names[i % len(names)]
        notes = scale_melody(int(rng.integers(45, 72)), n_notes=16, seconds=float(rng.uniform(0.3, 0.7)), seed=i)
        audio = sing(notes, VOICES[name], sr=sr, seed=i).astype(np.float32)
        clips.append(Clip(audio, f"synth:{i}", singer=f"synth-{name}", song=f"synth-{i}"))
    return clips


def is_heldout(clip: Clip, heldout: dict) -> bool:
    return clip.singer in set(heldout.get("singers") or []) or clip.song in set(heldout.get("songs") or [])


def load_data(data_cfg: dict, sr: int = 16000, seed: int = 0) -> tuple[list[Clip], list[Clip]]:
    """(training clips, held-out clips): singing from every source, split by the `heldout` singers/songs."""
    clips = [clip for source in data_cfg["sources"] for clip in load_clips(source, sr=sr, kinds=("singing",))]
    heldout_cfg = data_cfg.get("heldout") or {}
    train = [c for c in clips if not is_heldout(c, heldout_cfg)]
    held = [c for c in clips if is_heldout(c, heldout_cfg)]
    train += synth_clips(int(data_cfg.get("synth_clips") or 0), seed, sr)
    if not train:
        raise ValueError("no training clips: check data.sources and data.heldout")
    return train, held


def fit_center(model: TJAEModel, clips: list[Clip], max_seconds: float = 30.0) -> None:
    """Centre the mood embedding on the training clips' mean pooled latent (each clip up to `max_seconds`)."""
    n = int(max_seconds * model.config.sampling_rate)
    model.eval().fit_embedding_center([torch.from_numpy(c.audio[:n]) for c in clips])


def train(cfg: dict, train_clips: list[Clip], output_dir: str | Path | None = None) -> tuple[TJAEModel, list[dict]]:
    """Train a TJAE from `cfg['model']` on random crops; returns the unwrapped model and the loss log."""
    tcfg = cfg["train"]
    torch.set_num_threads(int(cfg.get("threads") or torch.get_num_threads()))
    seed = int(cfg.get("seed", 0))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    accelerator = Accelerator()
    model = TJAEModel(TJAEConfig(**cfg["model"]))
    steps, batch = int(tcfg["steps"]), int(tcfg["batch_size"])
    crops = RandomCrops(
        train_clips, tcfg["crop_seconds"], sr=model.config.sampling_rate, length=steps * batch, seed=seed
    )
    loader = torch.utils.data.DataLoader(
        crops, batch_size=batch, shuffle=False, num_workers=int(tcfg.get("num_workers", 0)), drop_last=True
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=float(tcfg["learning_rate"]), weight_decay=float(tcfg["weight_decay"])
    )
    warmup = int(tcfg.get("warmup_steps", 0))
    budget = math.inf if tcfg.get("max_minutes") is None else 60 * float(tcfg["max_minutes"])
    if budget <= 0:
        raise ValueError(f"train.max_minutes must be positive or null, got {tcfg['max_minutes']!r}")

    def lr_factor(step: int, progress: float) -> float:
        """Linear warm-up, then cosine decay to zero as `progress` (0..1) runs out.

        Progress is the larger of steps done and time used (`max_minutes`), so a run cut short by its time
        budget on a busy CPU still ends with a fully decayed learning rate.
        """
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()
    log, running, done, lr = [], [], 0, 0.0
    start = time.monotonic()
    bar = tqdm(loader, total=len(loader), desc="tjae", disable=not accelerator.is_local_main_process)
    for step, (audio, _) in enumerate(bar):
        # the slowest process's clock decides, so every process stops at the same step
        elapsed = accelerator.reduce(torch.tensor([time.monotonic() - start]), reduction="max").item()
        progress = max(step / steps, elapsed / budget)
        if progress >= 1.0:
            break
        lr = float(tcfg["learning_rate"]) * lr_factor(step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = model(input_values=audio).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), float(tcfg.get("grad_clip", 1.0)))
        optimizer.step()
        optimizer.zero_grad()
        done += 1
        running.append(accelerator.gather(loss.detach()[None]).mean().item())
        if done % int(tcfg.get("log_every", 100)) == 0 or done == len(loader):
            log.append({"step": done, "loss": float(np.mean(running)), "lr": lr})
            bar.set_postfix(loss=f"{log[-1]['loss']:.4f}")
            running = []
    if running:  # the partial interval before a time-budget stop
        log.append({"step": done, "loss": float(np.mean(running)), "lr": lr})
    accelerator.wait_for_everyone()
    seconds = time.monotonic() - start
    model = accelerator.unwrap_model(model).eval()
    fit_center(model, train_clips)
    if output_dir is not None and accelerator.is_main_process:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        (out / "train_log.json").write_text(
            json.dumps({"config": cfg, "train_seconds": seconds, "steps": done, "log": log}, indent=2)
        )
    return model, log


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="training/configs/tjae.yaml")
    parser.add_argument("--output-dir", required=True, help="where the trained model and its loss log go")
    parser.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE", help="config overrides")
    parser.add_argument(
        "--fit-center-only", action="store_true", help="only refit the embedding centre of the model in --output-dir"
    )
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.set)
    torch.set_num_threads(int(cfg.get("threads") or torch.get_num_threads()))
    train_clips, held = load_data(cfg["data"], seed=int(cfg.get("seed", 0)))
    if args.fit_center_only:
        model = TJAEModel.from_pretrained(args.output_dir)
        fit_center(model, train_clips)
        model.save_pretrained(args.output_dir, safe_serialization=True)
        print(f"embedding centre fitted on {len(train_clips)} clips; model in {args.output_dir}")
        return
    hours = sum(len(c.audio) for c in train_clips) / 16000 / 3600
    print(f"training on {len(train_clips)} clips ({hours * 60:.1f} min), {len(held)} clips held out")
    _, log = train(cfg, train_clips, args.output_dir)
    if log:
        print(f"{log[-1]['step']} steps, final loss {log[-1]['loss']:.4f}; model in {args.output_dir}")


if __name__ == "__main__":
    main()
