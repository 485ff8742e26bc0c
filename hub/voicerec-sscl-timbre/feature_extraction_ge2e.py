"""GE2E's preprocessing: loudness raised to -30 dBFS, then a 40-band mel *power* spectrogram (not log), 25 ms
windows every 10 ms, as Resemblyzer computes it with librosa (Slaney mel scale and norm, centred frames)."""

from __future__ import annotations

import numpy as np
import torch
from transformers.audio_utils import mel_filter_bank
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature


class GE2EFeatureExtractor(SequenceFeatureExtractor):
    """Waveforms -> `input_features` (batch, frames, n_mels) and an `attention_mask` of the valid frames.

    Each waveform is followed by one window of silence before the spectrogram is taken, so that the model's last
    window (which may run past the end, as in Resemblyzer) sees zeros, not the next clip of the batch.
    """

    model_input_names = ["input_features", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 40,
        sampling_rate: int = 16000,
        n_fft: int = 400,
        hop_length: int = 160,
        window_frames: int = 160,
        target_dbfs: float = -30.0,
        padding_value: float = 0.0,
        **kwargs,
    ) -> None:
        kwargs.setdefault("return_attention_mask", True)
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.window_frames = window_frames
        self.target_dbfs = target_dbfs
        self.mel_filters = mel_filter_bank(
            num_frequency_bins=n_fft // 2 + 1,
            num_mel_filters=feature_size,
            min_frequency=0.0,
            max_frequency=sampling_rate / 2,
            sampling_rate=sampling_rate,
            norm="slaney",
            mel_scale="slaney",
        ).astype(np.float32)

    def to_dict(self) -> dict:
        out = super().to_dict()
        out.pop("mel_filters", None)  # derived from the other fields
        return out

    def raise_volume(self, wave: np.ndarray) -> np.ndarray:
        """Bring a quieter clip up to `target_dbfs` (never turn a louder one down, as Resemblyzer does)."""
        rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0
        if rms <= 0:
            return wave
        change_db = self.target_dbfs - 20 * np.log10(rms)
        return wave * np.float32(10 ** (change_db / 20)) if change_db > 0 else wave

    def mel_power(self, wave: np.ndarray) -> np.ndarray:
        """(frames, n_mels) mel power spectrogram of a waveform, frames centred on multiples of the hop."""
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        spec = torch.stft(x, self.n_fft, self.hop_length, window=torch.hann_window(self.n_fft), center=True,
                          pad_mode="constant", return_complex=True).abs().square()  # fmt: skip
        return (spec.T.numpy() @ self.mel_filters).astype(np.float32)

    def __call__(
        self,
        raw_audio: np.ndarray | list[np.ndarray],
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """One mono waveform or a list of them, float at `self.sampling_rate` (resample before calling)."""
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(
                f"Audio at {sampling_rate} Hz was given, but this model expects {self.sampling_rate} Hz: "
                "resample it first (voicerec.load_audio does)."
            )
        batch = [raw_audio] if isinstance(raw_audio, np.ndarray) and raw_audio.ndim == 1 else list(raw_audio)
        batch = [np.asarray(a, dtype=np.float32) for a in batch]
        if any(a.ndim != 1 for a in batch):
            raise ValueError("Only mono waveforms are supported: mix down to one channel first.")
        tail = np.zeros(self.window_frames * self.hop_length, dtype=np.float32)
        mels = [self.mel_power(np.concatenate([self.raise_volume(a), tail])) for a in batch]
        valid = [1 + a.size // self.hop_length for a in batch]
        frames = max(m.shape[0] for m in mels)
        features = np.full((len(batch), frames, self.feature_size), self.padding_value, dtype=np.float32)
        mask = np.zeros((len(batch), frames), dtype=np.int32)
        for i, (m, n) in enumerate(zip(mels, valid, strict=True)):
            features[i, : m.shape[0]] = m
            mask[i, :n] = 1
        out = BatchFeature({"input_features": features, "attention_mask": mask})
        return out.convert_to_tensors(return_tensors) if return_tensors is not None else out
