"""Export a trained TJAE as a Hub folder whose card is filled from the training log, evaluation and ablation files.

Nothing in the card's tables is typed by hand: they are rendered from the JSON written by `train_tjae.py`,
`evaluate_tjae.py` and `ablate_tjae.py`.

    python training/export_tjae.py --model runs/tjae/shipped --evaluation runs/tjae/evaluation.json \
        --ablation runs/tjae/ablation.json --control runs/tjae/evaluation-nodrop.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from transformers import AutoModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.ablate_tjae import COMPARED, latent_matters  # noqa: E402
from training.ablate_tjae import markdown_table as ablation_table  # noqa: E402
from training.evaluate_tjae import markdown_tables  # noqa: E402
from training.train_tjae import load_config  # noqa: E402
from voicerec.audio.synth import VOICES, scale_melody, sing  # noqa: E402
from voicerec.export import export_model  # noqa: E402

FIGURE = "reconstruction.png"

TRAIN_COMMAND = "python training/train_tjae.py --config training/configs/tjae.yaml --output-dir runs/tjae"


def design_verdict(ablation: dict, shipped: dict) -> str:
    """One paragraph, computed from the ablation JSON: which compared design won, by how much, and what shipped."""
    variants = ablation["variants"]
    winner = ablation["winner"]
    if winner is None:
        return "No compared design passed the latent guard in the ablation."
    mse = {name: r["reconstruction"]["true latent"] for name, r in variants.items() if name in COMPARED}
    others = ", ".join(f"{name} {value:.3f}" for name, value in mse.items() if name != winner)
    text = (
        f"Among the compared designs whose latent matters (zeroed and shuffled latent both ≥ {ablation['guard']:g}× "
        f"the true latent's error), **{winner}** rebuilt the held-out clips best: MSE {mse[winner]:.3f} against "
        f"{others}."
    )
    failing = [name for name, r in variants.items() if not latent_matters(r, ablation["guard"])]
    if failing:
        text += f" Failing the latent guard: {', '.join(failing)}."
    matches = all(shipped.get(k) == v for k, v in variants[winner]["model"].items() if k in COMPARED[winner])
    text += (
        " The shipped checkpoint uses this design."
        if matches
        else " The shipped checkpoint does **not** use this design (see Limits)."
    )
    return text


def run_row(name: str, evaluation: dict) -> str:
    """One row of the full-length jump-dropout check, from an evaluation JSON and its run's train_log.json."""
    train_log = json.loads((Path(evaluation["model"]) / "train_log.json").read_text())
    rec, emb, pooling = evaluation["reconstruction"], evaluation["embeddings"], evaluation["pooling"]
    base = rec["true latent"]
    mood = "mood (TJAE)"
    timbre = next((c for n, c in emb["similarity_correlation"].items() if n.startswith(f"{mood} vs timbre")), None)
    r_timbre = f"{timbre['all pairs']['pearson']:.3f}" if timbre else "n/a (no timbre model)"
    return (
        f"| {name} | {train_log['steps']} | {base:.3f} | {rec['latent zeroed']:.3f} "
        f"({rec['latent zeroed'] / base:.0f}×) | {rec['latent shuffled in time']:.3f} "
        f"({rec['latent shuffled in time'] / base:.0f}×) "
        f"| {pooling['mean']['training (fold B)']['same_song']['mAP']:.3f} "
        f"| {emb['same_song_retrieval'][mood]['mAP']:.3f} | {emb['singer_retrieval'][mood]['top1']:.3f} | {r_timbre} |"
    )


def dropout_table(evaluation: dict, control: dict | None) -> str:
    if control is None:
        return "_No full-length control run was evaluated._"
    return (
        "| full-length run | steps | held-out MSE | latent zeroed | latent shuffled | same-song mAP (fold B) "
        "| same-song mAP (fold A) | singer top-1 (fold A) | Pearson r with timbre |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        + run_row("jump dropout 0.5 (shipped)", evaluation)
        + "\n"
        + run_row("no jump dropout (control)", control)
    )


@torch.no_grad()
def reconstruction_figure(model, path: str | Path, seed: int = 0) -> Path:
    """Input and reconstructions (true, zeroed, time-shuffled latent) of a synthetic sung phrase, as a PNG.

    Synthetic singing (voicerec.audio.synth) keeps the corpora's audio, and anything computed from it, out of the
    published folder; the held-out figures are in the card's tables.
    """
    audio = sing(scale_melody(55, n_notes=10, seconds=0.3, seed=seed), VOICES["tenor"], sr=16000, seed=seed)
    x = torch.from_numpy(audio.astype(np.float32))[None]
    panels = []
    for title, mode in (("rebuilt, true latent", None), ("latent zeroed", "zero"), ("latent shuffled", "shuffle")):
        torch.manual_seed(seed)
        out = model.eval()(input_values=x, latent_mode=mode)
        panels.append((f"{title} (MSE {float(out.loss):.3f})", out.reconstruction[0].numpy()))
    panels.insert(0, ("input: normalised log-mel of a synthetic phrase", out.target[0].numpy()))
    fig = Figure(figsize=(9, 7), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True)
    for ax, (title, image) in zip(axes, panels, strict=True):
        ax.imshow(image, origin="lower", aspect="auto", vmin=-3, vmax=3, cmap="magma")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("mel band")
    axes[-1].set_xlabel("frame (10 ms)")
    fig.savefig(path, dpi=80)
    return Path(path)


def card_fields(
    cfg: dict, train_log: dict, evaluation: dict, ablation: dict, model, control: dict | None = None
) -> dict[str, str]:
    export, mcfg = cfg["export"], model.config
    heldout = cfg["data"].get("heldout") or {}
    receptive = 1 + sum(d * (mcfg.kernel_size - 1) for d in mcfg.layer_dilations)
    tables = markdown_tables(evaluation)
    return {
        "model_id": export["hub_id"],
        "license": export["license"],
        "datasets": "\n".join(f"- {d}" for d in export.get("datasets", [])) or "[]",
        "parameters": f"{sum(p.numel() for p in model.parameters()):,}",
        "embedding_size": str(mcfg.embedding_size),
        "pooling_text": (
            "its time average" if mcfg.pooling == "mean" else "its time average and standard deviation, concatenated"
        ),
        "pooling_table": tables["pooling_table"],
        "latent_size": str(mcfg.latent_size),
        "hidden_size": str(mcfg.hidden_size),
        "dilations": ", ".join(str(d) for d in mcfg.layer_dilations),
        "receptive_ms": str(receptive * 1000 * mcfg.hop_length // mcfg.sampling_rate),
        "jump_size": str(mcfg.jump_size),
        "jump_dropout": f"{mcfg.jump_dropout:g}",
        "convolutions": "causal" if mcfg.causal else "non-causal (centred)",
        "time_jumps": "with" if mcfg.time_jumps else "without",
        "steps": str(train_log["steps"]),
        "batch_size": str(cfg["train"]["batch_size"]),
        "crop_seconds": f"{cfg['train']['crop_seconds']:g}",
        "train_minutes": f"{train_log['train_seconds'] / 60:.1f}",
        "final_loss": f"{train_log['log'][-1]['loss']:.3f}",
        "command": TRAIN_COMMAND,
        "training_data": export["training_data"].strip(),
        "excluded": ", ".join(heldout.get("singers") or []),
        "heldout_songs": ", ".join(heldout.get("songs") or []),
        "heldout_clips": str(evaluation["heldout_clips"]),
        "latent_table": tables["latent_table"],
        "same_song_table": tables["same_song_table"],
        "redundancy_table": tables["redundancy_table"],
        "timbre_reference": (
            "the SSCL timbre embedding (`voicerec/voicerec-sscl-timbre`) and MFCC statistics"
            if evaluation["timbre_model"]
            else "MFCC statistics only (the SSCL timbre checkpoint was not available when this card was made)"
        ),
        "ablation_table": ablation_table(ablation),
        "ablation_steps": str(ablation["steps"]),
        "ablation_batch": str(ablation["batch_size"]),
        "ablation_crop": f"{ablation['crop_seconds']:g}",
        "ablation_command": (
            f"python training/ablate_tjae.py --config training/configs/tjae.yaml --steps {ablation['steps']} "
            + (f"--set {' '.join(ablation['overrides'])} " if ablation.get("overrides") else "")
            + "--output runs/tjae/ablation.json"
        ),
        "design_verdict": design_verdict(ablation, cfg["model"]),
        "dropout_table": dropout_table(evaluation, control),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="trained TJAE folder (with train_log.json)")
    parser.add_argument("--evaluation", required=True, help="evaluate_tjae.py JSON")
    parser.add_argument("--ablation", required=True, help="ablate_tjae.py JSON")
    parser.add_argument("--control", help="evaluate_tjae.py JSON of a full-length run without jump dropout")
    parser.add_argument("--config", default="training/configs/tjae.yaml")
    parser.add_argument("--out", help="Hub folder (default: the config's export.dir)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    model = AutoModel.from_pretrained(args.model).eval()
    train_log = json.loads((Path(args.model) / "train_log.json").read_text())
    evaluation = json.loads(Path(args.evaluation).read_text())
    ablation = json.loads(Path(args.ablation).read_text())
    control = json.loads(Path(args.control).read_text()) if args.control else None
    fields = card_fields(cfg, train_log, evaluation, ablation, model, control)
    out = export_model(model, args.out or cfg["export"]["dir"], cfg["export"]["card"], fields)
    reconstruction_figure(model, out / FIGURE)
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    print(f"exported to {out} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
