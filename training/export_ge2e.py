"""GE2E weights into the project: Resemblyzer's checkpoint converted once to a safetensors model folder, and the
fine-tuned singing encoders exported with their card.

    python -m training.export_ge2e --output runs/ge2e            # GE2E as Resemblyzer ships it

The checkpoint is read with `torch.load(weights_only=True)` (tensors only, no code runs), here and nowhere else:
at run time the project loads safetensors only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import torch
import yaml

from voicerec import GE2EConfig, GE2EModel
from voicerec.export import export_model


def resemblyzer_checkpoint() -> Path:
    """`pretrained.pt` inside the installed resemblyzer package (`pip install resemblyzer`)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise SystemExit("resemblyzer is not installed: pip install resemblyzer, or pass --weights pretrained.pt")
    return Path(spec.origin).parent / "pretrained.pt"


def convert(weights: str | Path) -> GE2EModel:
    """Resemblyzer's VoiceEncoder state dict (lstm.*, linear.*) as a GE2EModel: the parameter names are the same.
    The GE2E loss's similarity scale and bias (training-only) are left out."""
    state = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
    state = {k: v for k, v in state.items() if not k.startswith("similarity_")}
    model = GE2EModel(GE2EConfig(variant="speaker"))
    state |= {k: v for k, v in model.state_dict().items() if k.startswith("whiten_")}  # GE2E has no WCCN: identity
    model.load_state_dict(state, strict=True)
    return model.eval()


VARIANT_TEXT = {
    "timbre": "**timbre** encoder: who is singing, whatever the tempo (a time-stretched copy of a recording counts "
    "as the same voice).",
    "expression": "**timbre+expression** encoder: who is singing and how (a time-stretched copy counts as another "
    "performance).",
}


def card_fields(model: GE2EModel, config: dict, log: list[dict], command: str) -> dict[str, str]:
    export, train = config["export"], config["train"]
    return {
        "model_id": export["hub_id"],
        "revision": export.get("revision", "main"),  # `voicerec publish --revision` swaps in the published tag
        "license": export["license"],
        "datasets": "\n".join(f"- {d}" for d in export.get("datasets", [])) or "[]",
        "variant_text": VARIANT_TEXT[config["variant"]],
        "embedding_size": str(model.config.embedding_size),
        "window_seconds": f"{model.window_step * model.config.hop_length / model.config.sampling_rate:.2f}",
        "parameters": f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M",
        "pitch_semitones": f"{config['views']['pitch_semitones']:g}",
        **{k: str(train[k]) for k in ("steps", "batch_size", "lr", "distill", "temperature", "momentum", "queue_size")},
        "wccn": f"{train['wccn']:g}" if train.get("wccn") is not None else "none",
        "train_minutes": f"{log[-1].get('minutes', 0.0):.1f}",
        "states_minutes": str(export.get("states_minutes", "?")),
        "command": command,
        "training_data": export["training_data"].strip(),
        "results": Path(export["results"]).read_text().strip() if export.get("results") else "_Not measured yet._",
    }


def export_encoder(model: GE2EModel, out_dir: str | Path, config: dict, log: list[dict], command: str) -> Path:
    """A fine-tuned encoder as a Hub folder: weights, code, feature extractor, card, its training config and log."""
    card = config.get("export", {}).get("card")
    fields = card_fields(model, config, log, command) if card else None
    out = export_model(model, out_dir, card, fields)
    (out / "training_config.yaml").write_text(yaml.safe_dump({**config, "command": command}, sort_keys=False))
    (out / "training_log.jsonl").write_text("\n".join(json.dumps(row) for row in log) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="Resemblyzer's pretrained.pt (default: the installed package's)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    out = export_model(convert(args.weights or resemblyzer_checkpoint()), args.output)
    print(f"GE2E -> {out}")


if __name__ == "__main__":
    main()
