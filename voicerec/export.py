"""Write a Hub-ready model folder: weights, config with `auto_map`, the self-contained code, the
feature extractor config and a README rendered from `model_cards/`."""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

from transformers import PreTrainedModel

from .models.configuration_ge2e import GE2EConfig
from .models.feature_extraction_ge2e import GE2EFeatureExtractor
from .models.feature_extraction_voicerec import VoicerecFeatureExtractor

MODEL_CARDS = Path(__file__).resolve().parent.parent / "model_cards"


def render_card(template: str | Path, **fields: str) -> str:
    """Fill a `model_cards/*.md` template (string.Template `$name` fields); unknown fields stay as is."""
    path = Path(template)
    if not path.is_absolute() and not path.exists():
        path = MODEL_CARDS / path
    return Template(path.read_text()).safe_substitute(**fields)


def export_model(
    model: PreTrainedModel,
    out_dir: str | Path,
    card_template: str | Path | None = None,
    card_fields: dict[str, str] | None = None,
) -> Path:
    """Save `model` so that `AutoModel.from_pretrained(out_dir, trust_remote_code=True)` works anywhere.

    Registering the classes for the Auto API makes `save_pretrained` write `auto_map` and copy the model
    code (and the files it imports relatively) next to the weights, as transformers documents for custom
    models.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.config.register_for_auto_class()
    model.register_for_auto_class("AutoModel")
    model.save_pretrained(out, safe_serialization=True)
    config = model.config
    if isinstance(config, GE2EConfig):
        extractor = GE2EFeatureExtractor(
            feature_size=config.n_mels, sampling_rate=config.sampling_rate, n_fft=config.n_fft,
            hop_length=config.hop_length, window_frames=config.window_frames, target_dbfs=config.target_dbfs,
        )  # fmt: skip
    else:
        extractor = VoicerecFeatureExtractor(sampling_rate=config.sampling_rate)
    extractor.register_for_auto_class("AutoFeatureExtractor")
    extractor.save_pretrained(out)
    if card_template is not None:
        (out / "README.md").write_text(render_card(card_template, **(card_fields or {})))
    return out


def read_config(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "config.json").read_text())
