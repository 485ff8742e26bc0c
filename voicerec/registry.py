"""Registers the voicerec classes with transformers' Auto classes (done once, on `import voicerec`)."""

from __future__ import annotations

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from .models.configuration_ge2e import GE2EConfig
from .models.configuration_sscl import SSCLConfig
from .models.configuration_tjae import TJAEConfig
from .models.feature_extraction_ge2e import GE2EFeatureExtractor
from .models.feature_extraction_voicerec import VoicerecFeatureExtractor
from .models.modeling_ge2e import GE2EModel
from .models.modeling_sscl import SSCLModel
from .models.modeling_tjae import TJAEModel


def register_auto_classes() -> None:
    """Make `AutoModel.from_pretrained(folder)` work on voicerec folders without trust_remote_code."""
    for config_cls, model_cls, extractor_cls in (
        (SSCLConfig, SSCLModel, VoicerecFeatureExtractor),
        (TJAEConfig, TJAEModel, VoicerecFeatureExtractor),
        (GE2EConfig, GE2EModel, GE2EFeatureExtractor),
    ):
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
        AutoModel.register(config_cls, model_cls, exist_ok=True)
        AutoFeatureExtractor.register(config_cls, extractor_cls, exist_ok=True)
