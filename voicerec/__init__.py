"""voicerec: recommend songs to sing from a short recording of the singer's voice."""

from .audio.input import MAX_SECONDS, MIN_VOICED_SECONDS, MODEL_RATE, AudioInputError, VoiceAudio, load_audio
from .models.configuration_ge2e import GE2EConfig
from .models.configuration_sscl import SSCLConfig
from .models.configuration_tjae import TJAEConfig
from .models.feature_extraction_ge2e import GE2EFeatureExtractor
from .models.feature_extraction_voicerec import VoicerecFeatureExtractor
from .models.modeling_ge2e import GE2EModel
from .models.modeling_sscl import SSCLModel
from .models.modeling_tjae import TJAEModel
from .registry import register_auto_classes

register_auto_classes()

__version__ = "0.1.0"

__all__ = [
    "MAX_SECONDS",
    "MIN_VOICED_SECONDS",
    "MODEL_RATE",
    "AudioInputError",
    "GE2EConfig",
    "GE2EFeatureExtractor",
    "GE2EModel",
    "SSCLConfig",
    "SSCLModel",
    "TJAEConfig",
    "TJAEModel",
    "VoiceAudio",
    "VoicerecFeatureExtractor",
    "load_audio",
    "register_auto_classes",
]
