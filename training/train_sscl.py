"""Train one SSCL singing-voice encoder (timbre or expression) with MoCo and export it as a Hub folder.

    python -m training.train_sscl --config training/configs/sscl_timbre.yaml
    accelerate launch -m training.train_sscl --config training/configs/sscl_timbre.yaml   # GPUs / machines

Self-supervised: no singer labels are used for training (labels only select singer-disjoint folds through
`--exclude-singers`). The YAML config holds every setting; command-line flags override a few for folds and
quick runs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from voicerec import SSCLConfig, SSCLModel, load_audio
from voicerec.export import export_model, render_card

from .data import Clip, load_clips
from .moco import POLICIES, MoCo, contrastive_logits, info_nce
from .views import ContrastiveViews, Family

VARIANT_TEXT = {
    "timbre": "**timbre**: who is singing. Trained so that tempo changes do not move the embedding "
    "(time-stretched copies are positives) while pitch/formant shifts do (pitch-shifted copies are negatives).",
    "expression": "**timbre + expression**: who is singing *and how*. Time-stretched and pitch-shifted copies "
    "are both negatives, so the embedding also reflects tempo, phrasing and vibrato rate.",
}

NORMALIZATION_TEXT = {
    "per_band": "each band's per-clip mean removed",
    "level": "only the clip's overall loudness removed, so that its mean spectrum (the vocal-tract envelope) "
    "reaches the network",
}


def load_config(path: str | Path, overrides: argparse.Namespace | None = None) -> dict:
    config = yaml.safe_load(Path(path).read_text())
    if overrides is not None:
        if overrides.steps is not None:
            config["train"]["steps"] = overrides.steps
        if overrides.out is not None:
            config["export"]["out_dir"] = overrides.out
        if overrides.log_dir is not None:
            config["export"]["log_dir"] = overrides.log_dir
        if overrides.exclude_singers is not None:
            config["data"]["exclude_singers"] = [s for s in overrides.exclude_singers.split(",") if s]
        if overrides.results is not None:
            config["export"]["results"] = overrides.results
        if overrides.speed is not None:
            config["export"]["speed"] = overrides.speed
    if config["variant"] not in POLICIES:
        raise ValueError(f"variant must be one of {sorted(POLICIES)}, got {config['variant']!r}")
    return config


def results_markdown(path: str | Path | None) -> str:
    """The evaluation table for the card, taken from the evaluation command's output file (never typed)."""
    if not path or not Path(path).exists():
        return "_Not evaluated yet: run `python -m voicerec evaluate` and re-export the card with `--results`._"
    text = Path(path).read_text()
    if Path(path).suffix == ".json":
        rows = json.loads(text)
        rows = rows if isinstance(rows, list) else rows.get("rows", [rows])
        keys = list(rows[0])
        lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for row in rows:
            cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)
    return text.strip()


def text_block(path: str | Path | None, missing: str) -> str:
    """A benchmark's printed output for the card, verbatim in a code block (never typed by hand)."""
    if not path or not Path(path).exists():
        return missing
    return "```text\n" + Path(path).read_text().strip() + "\n```"


def card_fields(config: dict) -> dict[str, str]:
    export, train = config["export"], config["train"]
    head = (
        f"a {train['head_hidden']}-{train['head_dim']} projection head used only in training"
        if train.get("head_dim")
        else "the loss acts on the shipped embedding itself, with no projection head"
    )
    return {
        "model_id": export["hub_id"],
        "revision": export.get("revision", "main"),  # `voicerec publish --revision` swaps in the published tag
        "variant": config["variant"],
        "variant_text": VARIANT_TEXT[config["variant"]],
        "license": export["license"],
        "datasets": "\n".join(f"- {d}" for d in export.get("datasets", [])) or "[]",
        "training_data": export["training_data"].strip(),
        "excluded": ", ".join(config["data"].get("exclude_singers") or []) or "none",
        "parameters": f"{export.get('parameters', 0) / 1e6:.2f} M",
        "steps": str(config["train"]["steps"]),
        "batch_size": str(config["train"]["batch_size"]),
        "crop_seconds": str(config["views"]["seconds"]),
        "embedding_size": str(config["model"]["embedding_size"]),
        "normalization": NORMALIZATION_TEXT[config["model"].get("input_normalization", "per_band")],
        "momentum": str(train["momentum"]),
        "queue_size": str(train["queue_size"]),
        "temperature": str(train["temperature"]),
        "head_text": head,
        "train_minutes": f"{export.get('train_minutes', 0.0):.1f}",
        "command": export.get("command", ""),
        "results": results_markdown(export.get("results")),
        "speed": text_block(
            export.get("speed"), "_Not measured yet: `python -m training.bench_encoders`, then `--card-only --speed`._"
        ),
    }


def load_real_clips(config: dict) -> list[Clip]:
    """The recorded training clips (`data.sources` minus the excluded singers), without pseudo-singers."""
    data = config["data"]
    exclude = set(data.get("exclude_singers") or [])
    kinds = tuple(data.get("kinds", ["singing"]))
    return [c for source in data["sources"] for c in load_clips(source, sr=16000, kinds=kinds, exclude_singers=exclude)]


def load_families(clips: list[Clip], pseudo_sources: list[str]) -> tuple[list[Clip], list[Family]]:
    """Add the WORLD pseudo-singers of `pseudo_sources` (training/pseudo_singers.py manifests) to `clips`.

    Returns every clip (recorded + pseudo-singer) and, per clip, the family of aligned copies it belongs to.
    """

    def key(path: str) -> str:
        return str(Path(path).resolve())

    families: dict[str, Family] = {}
    for clip in clips:
        families.setdefault(key(clip.path), Family()).voices[clip.singer] = clip.audio
    pseudo = [c for s in pseudo_sources for c in load_clips(s, sr=16000, kinds=("singing", "repitched"))]
    for copy in pseudo:
        family = families.get(key(copy.meta["source"]))
        if family is None:
            continue  # a copy of a clip this run does not train on (e.g. another fold)
        (family.repitched if copy.kind == "repitched" else family.voices)[copy.singer] = copy.audio
    kept = [c for c in pseudo if c.kind == "singing" and key(c.meta["source"]) in families]
    source = {id(c): key(c.meta["source"]) for c in kept}
    everything = clips + kept
    return everything, [families[source.get(id(c)) or key(c.path)] for c in everything]


def build_dataset(config: dict, length: int, seed: int, clips: list[Clip] | None = None) -> ContrastiveViews:
    data, views = config["data"], config["views"]
    clips = load_real_clips(config) if clips is None else clips
    families = None
    if data.get("pseudo_sources"):
        clips, families = load_families(clips, data["pseudo_sources"])
    return ContrastiveViews(
        clips,
        families=families,
        seconds=views["seconds"],
        length=length,
        seed=seed,
        voice_semitones=views["voice_semitones"],
        pitch_semitones=tuple(views["pitch_semitones"]),
        stretch_rates=tuple(views["stretch_rates"]),
        channel_strength=views["channel_strength"],
    )


def fit_center(model: SSCLModel, clips: list[Clip], max_seconds: float = 30.0) -> None:
    """Centre the embedding on the recorded training singers (as the app prepares audio; each clip up to
    `max_seconds`), each singer weighing the same: PJS's 98 songs would otherwise make the centre one voice."""
    n = int(max_seconds * model.config.sampling_rate)
    waves = [torch.from_numpy(load_audio((16000, c.audio)).samples[:n]) for c in clips]
    model.fit_embedding_center(waves, groups=[c.singer or c.path for c in clips])


def lr_factor(step: int, warmup: int, progress: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to zero as `progress` (0..1) runs out.

    Progress is the larger of steps done and time used (`max_minutes`), so a run cut short by its time
    budget on a busy CPU still ends with a fully decayed learning rate.
    """
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train(config: dict, command: str) -> Path:
    tcfg = config["train"]
    if tcfg.get("threads"):
        torch.set_num_threads(tcfg["threads"])  # a shared CPU: leave cores to the data workers and others
    accelerator = Accelerator()
    set_seed(config.get("seed", 0))
    encoder = SSCLModel(SSCLConfig(variant=config["variant"], **config["model"]))
    moco = MoCo(encoder, tcfg["head_hidden"], tcfg["head_dim"], tcfg["queue_size"])
    policy = POLICIES[config["variant"]]
    steps, batch_size = tcfg["steps"], tcfg["batch_size"]
    real = load_real_clips(config)
    dataset = build_dataset(config, steps * batch_size * accelerator.num_processes, config.get("seed", 0), real)
    minutes = sum(len(c.audio) for c in dataset.clips) / 16000 / 60
    accelerator.print(f"{len(dataset.clips)} clips ({len(real)} recorded), {minutes:.1f} min")
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=tcfg["workers"],
        persistent_workers=tcfg["workers"] > 0,
        prefetch_factor=4 if tcfg["workers"] > 0 else None,
        drop_last=True,
    )
    params = [p for p in moco.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=tcfg["lr"], weight_decay=tcfg["weight_decay"])
    moco, optimizer, loader = accelerator.prepare(moco, optimizer, loader)
    inner = accelerator.unwrap_model(moco)
    budget = 60 * tcfg.get("max_minutes", 1e9)
    start = time.monotonic()
    moco.train()
    progress = tqdm(loader, total=steps, disable=not accelerator.is_local_main_process, desc=config["variant"])
    log = []
    for step, batch in enumerate(progress):
        used = max(step / steps, (time.monotonic() - start) / budget)
        lr = tcfg["lr"] * lr_factor(step, tcfg["warmup_steps"], used)
        for group in optimizer.param_groups:
            group["lr"] = lr
        query, copies = moco(batch, policy)
        logits, positive = contrastive_logits(query, copies, policy, inner.queue.keys.clone())
        loss = info_nce(logits, positive, tcfg["temperature"])
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        inner.update_key_encoder(tcfg["momentum"])
        inner.queue.enqueue(accelerator.gather(copies["key"]))
        with torch.no_grad():  # how often the positive key outranks every negative: a cheap health check
            acc = (logits[:, 0] >= logits.masked_fill(positive, float("-inf")).max(1).values).float().mean()
        log.append({"step": step, "loss": loss.item(), "key_top1": acc.item(), "lr": lr})
        progress.set_postfix(loss=f"{loss.item():.3f}", top1=f"{acc.item():.2f}")
        if step + 1 >= steps or time.monotonic() - start > budget:
            break
    elapsed = time.monotonic() - start
    accelerator.wait_for_everyone()
    out = Path(config["export"]["out_dir"])
    if accelerator.is_main_process:
        config["train"]["steps"] = len(log)  # what actually ran (max_minutes may stop early)
        model = inner.encoder.to("cpu").eval()
        if config["export"].get("center"):
            fit_center(model, real)
        parameters = sum(p.numel() for p in model.parameters())
        config["export"].update(train_minutes=round(elapsed / 60, 2), command=command, parameters=parameters)
        export_model(model, out, config["export"]["card"], card_fields(config))
        (out / "training_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        log_path = Path(config["export"].get("log_dir", "runs/sscl")) / f"{out.name}.jsonl"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("\n".join(json.dumps(row) for row in log) + "\n")
        accelerator.print(f"{len(log)} steps in {elapsed / 60:.1f} min -> {out} (log {log_path})")
    return out


def recenter(config: dict) -> None:
    """Refit `embedding_center` of an exported folder (`export.out_dir`) on its training clips, without retraining."""
    out = Path(config["export"]["out_dir"])
    trained = yaml.safe_load((out / "training_config.yaml").read_text())
    model = SSCLModel.from_pretrained(out).eval()
    fit_center(model, load_real_clips(trained))
    export_model(model, out, trained["export"]["card"], card_fields(trained))


def rerender_card(config: dict) -> None:
    """Refresh README.md of an exported folder (e.g. with new evaluation results) without retraining.

    The training settings stay as trained; the card's documentation (data description, license, Hub id,
    where the folder ships) comes from `config`, so a folder trained elsewhere can be moved into `out_dir`.
    """
    out = Path(config["export"]["out_dir"])
    trained = yaml.safe_load((out / "training_config.yaml").read_text())
    for key in ("results", "speed"):
        trained["export"][key] = config["export"].get(key) or trained["export"].get(key)
    for key in ("out_dir", "card", "hub_id", "license", "datasets", "training_data"):
        if key in config["export"]:
            trained["export"][key] = config["export"][key]
    (out / "training_config.yaml").write_text(yaml.safe_dump(trained, sort_keys=False))
    (out / "README.md").write_text(render_card(trained["export"]["card"], **card_fields(trained)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config (training/configs/sscl_*.yaml)")
    parser.add_argument("--steps", type=int, help="override train.steps")
    parser.add_argument("--out", help="override export.out_dir")
    parser.add_argument("--log-dir", help="override export.log_dir (the per-step loss log, never shipped)")
    parser.add_argument("--exclude-singers", help="comma-separated singers to leave out (singer-disjoint folds)")
    parser.add_argument("--results", help="evaluation output file whose table goes into the card")
    parser.add_argument("--speed", help="output of training.bench_encoders for the card's Speed section")
    parser.add_argument("--card-only", action="store_true", help="only re-render README.md of an exported folder")
    parser.add_argument("--recenter", action="store_true", help="only refit embedding_center of an exported folder")
    args = parser.parse_args(argv)
    config = load_config(args.config, args)
    if args.card_only:
        rerender_card(config)
        return
    if args.recenter:
        recenter(config)
        return
    given = argv if argv is not None else sys.argv[1:]
    # the card states what reproduces the weights; where they were written (--out) is not part of that
    where = ("--out", "--log-dir")
    kept = [a for i, a in enumerate(given) if a not in where and (i == 0 or given[i - 1] not in where)]
    command = "python -m training.train_sscl " + " ".join(kept)
    train(config, command)


if __name__ == "__main__":
    main()
