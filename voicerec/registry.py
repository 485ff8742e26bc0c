"""Registers the voicerec classes with transformers' Auto classes (done once, on `import voicerec`)."""

from __future__ import annotations

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from .models.configuration_sscl import SSCLConfig
from .models.configuration_tjae import TJAEConfig
from .models.feature_extraction_voicerec import VoicerecFeatureExtractor
from .models.modeling_sscl import SSCLModel
from .models.modeling_tjae import TJAEModel


def register_auto_classes() -> None:
    """Make `AutoModel.from_pretrained(folder)` work on voicerec folders without trust_remote_code."""
    for config_cls, model_cls in ((SSCLConfig, SSCLModel), (TJAEConfig, TJAEModel)):
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
        AutoModel.register(config_cls, model_cls, exist_ok=True)
        AutoFeatureExtractor.register(config_cls, VoicerecFeatureExtractor, exist_ok=True)
