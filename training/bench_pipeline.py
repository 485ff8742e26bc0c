"""Throughput of the SSCL training pipeline: augmentation (items/s, per transform) vs. training (steps/s).

    python -m training.bench_pipeline --config training/configs/sscl_timbre.yaml

Uses synthesised singing unless `--real` (then the config's data sources, with the WORLD pseudo-singers of
`data.pseudo_sources`: six views per item instead of four), so it runs anywhere. If the
DataLoader's items/s with `workers` workers is below batch_size x steps/s, training waits for data.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from voicerec import SSCLConfig, SSCLModel
from voicerec.synth import VOICES, scale_melody, sing

from . import augment
from .data import Clip
from .moco import POLICIES, MoCo, contrastive_logits, info_nce
from .train_sscl import build_dataset, load_config
from .views import ContrastiveViews


def synthetic_clips(n: int = 8, seconds: float = 12.0) -> list[Clip]:
    voices = list(VOICES.values())
    notes = int(seconds / 0.5)
    return [
        Clip(sing(scale_melody(45 + 2 * i, notes, 0.5, seed=i), voices[i % len(voices)], 16000, seed=i), f"synth{i}")
        for i in range(n)
    ]


def timed(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="training/configs/sscl_timbre.yaml")
    parser.add_argument("--real", action="store_true", help="use the config's data sources")
    parser.add_argument("--items", type=int, default=64, help="items per DataLoader measurement")
    parser.add_argument("--steps", type=int, default=3, help="training steps to time")
    args = parser.parse_args()
    config = load_config(args.config)
    views, tcfg = config["views"], config["train"]
    n = int(views["seconds"] * 16000)
    rng = np.random.default_rng(0)
    x = synthetic_clips(1, views["seconds"] * 2)[0].audio

    print(f"== per-transform cost on one {views['seconds']} s view (ms) ==")
    transforms = {
        "pitch_shift (resample)": lambda: augment.pitch_shift(x[: augment.source_length(n, 1.19)], 3.0),
        "time_stretch (phase vocoder)": lambda: augment.time_stretch(x[: augment.source_length(n, 1.7)], 1.7),
        "random_eq": lambda: augment.random_eq(x[:n], rng),
        "add_noise": lambda: augment.add_noise(x[:n], rng),
        "reverb": lambda: augment.reverb(x[:n], rng),
        "phone": lambda: augment.phone(x[:n], rng),
        "channel (random chain)": lambda: augment.channel(x[:n], rng),
    }
    for name, fn in transforms.items():
        print(f"{name:30s} {1000 * timed(fn, 20):7.2f}")

    torch.manual_seed(0)
    dataset = (
        build_dataset(config, length=10**6, seed=0)
        if args.real
        else ContrastiveViews(synthetic_clips(), views["seconds"], length=10**6)
    )
    names = list(dataset[0])
    one_item = timed(lambda: dataset[int(rng.integers(10**6))], 20)
    print(
        f"\n== one item ({len(names)} views) in the main process: {1000 * one_item:.1f} ms"
        f" = {1 / one_item:.1f} items/s =="
    )
    for workers in sorted({0, 1, tcfg["workers"], 2}):
        loader = torch.utils.data.DataLoader(dataset, batch_size=16, num_workers=workers)
        it = iter(loader)
        next(it)
        start = time.perf_counter()
        for _ in range(args.items // 16):
            next(it)
        rate = 16 * (args.items // 16) / (time.perf_counter() - start)
        print(f"DataLoader, {workers} workers: {rate:6.1f} items/s")
        del it, loader

    encoder = SSCLModel(SSCLConfig(variant=config["variant"], **config["model"]))
    moco = MoCo(encoder, tcfg["head_hidden"], tcfg["head_dim"], tcfg["queue_size"]).train()
    optimizer = torch.optim.AdamW([p for p in moco.parameters() if p.requires_grad], lr=1e-4)
    policy = POLICIES[config["variant"]]
    batch = {k: torch.randn(tcfg["batch_size"], n) * 0.1 for k in names}

    def step() -> None:
        query, copies = moco(batch, policy)
        loss = info_nce(*contrastive_logits(query, copies, policy, moco.queue.keys.clone()), tcfg["temperature"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        moco.update_key_encoder(tcfg["momentum"])
        moco.queue.enqueue(copies["key"])

    seconds = timed(step, args.steps)
    print(
        f"\n== training step, batch {tcfg['batch_size']} x {views['seconds']} s,"
        f" hidden {config['model']['hidden_size']}"
        f" ({len(names)} views, {torch.get_num_threads()} threads): {seconds:.2f} s = {1 / seconds:.2f} steps/s"
        f" = {tcfg['batch_size'] / seconds:.1f} items/s needed =="
    )


if __name__ == "__main__":
    main()
