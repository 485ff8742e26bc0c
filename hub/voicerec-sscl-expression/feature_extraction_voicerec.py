"""Thin feature extractor: checks the rate, pads a batch of mono waveforms and gives an attention mask.

The spectrogram is computed inside the models, so this only turns raw audio into `input_values`.
"""

from __future__ import annotations

import numpy as np
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature


class VoicerecFeatureExtractor(SequenceFeatureExtractor):
    model_input_names = ["input_values", "attention_mask"]

    def __init__(self, feature_size: int = 1, sampling_rate: int = 16000, padding_value: float = 0.0, **kwargs) -> None:
        kwargs.setdefault("return_attention_mask", True)
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)

    def __call__(
        self,
        raw_audio: np.ndarray | list[float] | list[np.ndarray],
        sampling_rate: int | None = None,
        padding: bool | str = True,
        return_tensors: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """One waveform or a list of them, float mono at `self.sampling_rate` (resample before calling)."""
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(
                f"Audio at {sampling_rate} Hz was given, but this model expects {self.sampling_rate} Hz: "
                "resample it first (voicerec.load_audio does)."
            )
        if isinstance(raw_audio, np.ndarray) and raw_audio.ndim == 1:
            batch = [raw_audio]
        elif isinstance(raw_audio, np.ndarray) and raw_audio.ndim == 2:
            batch = list(raw_audio)
        elif isinstance(raw_audio, (list, tuple)) and len(raw_audio) and np.ndim(raw_audio[0]) == 0:
            batch = [np.asarray(raw_audio)]
        else:
            batch = list(raw_audio)
        batch = [np.asarray(a, dtype=np.float32) for a in batch]
        if any(a.ndim != 1 for a in batch):
            raise ValueError("Only mono waveforms are supported: mix down to one channel first.")
        padded = self.pad(
            BatchFeature({"input_values": batch}),
            padding=padding,
            return_attention_mask=self.return_attention_mask,
            **kwargs,
        )
        padded["input_values"] = np.asarray(padded["input_values"], dtype=np.float32)
        if "attention_mask" in padded:
            padded["attention_mask"] = np.asarray(padded["attention_mask"], dtype=np.int32)
        if return_tensors is not None:
            padded = padded.convert_to_tensors(return_tensors)
        return padded
