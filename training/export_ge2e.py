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
    model.load_state_dict(state, strict=True)
    return model.eval()


def export_encoder(model: GE2EModel, out_dir: str | Path, config: dict, log: list[dict], command: str) -> Path:
    """A fine-tuned encoder as a Hub folder: weights, code, feature extractor, its training config and log."""
    out = export_model(model, out_dir)
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
