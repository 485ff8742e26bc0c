"""GE2E's preprocessing: loudness raised to -30 dBFS, then a 40-band mel *power* spectrogram (not log), 25 ms
windows every 10 ms, as Resemblyzer computes it with librosa (Slaney mel scale and norm, centred frames).

It can also give the spectrogram of the same singing in another key, formants kept (`semitones`, `f0`): the
key-free embeddings read the voice moved onto one reference note. Done here, on the spectrum the encoder reads,
it costs a few milliseconds, where resynthesising the waveform with a vocoder (WORLD) was half of a request.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers.audio_utils import mel_filter_bank
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

_HANN_STEPS = 32
"""Table steps per bin of `_HANN_LOG_POWER`."""


def _hann_log_power(reach: int = 128) -> np.ndarray:
    """Log power of a Hann window's spectrum at 0, 1/_HANN_STEPS, ... `reach` bins from a sinusoid: (sinc(d) /
    (1 - d^2))^2, floored at the first side lobe's -31 dB; tabulated once for `shift_harmonics`."""
    d = np.arange(reach * _HANN_STEPS + 1) / _HANN_STEPS
    with np.errstate(divide="ignore", invalid="ignore"):
        amplitude = np.where(np.isclose(d, 1.0), 0.5, np.sinc(d) / (1.0 - d**2))
    return np.log(np.maximum(amplitude**2, 10 ** (-31 / 10))).astype(np.float32)


_HANN_LOG_POWER = _hann_log_power()


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

    def power_spectrogram(self, wave: np.ndarray) -> np.ndarray:
        """(frames, n_fft // 2 + 1) power spectrogram of a waveform, frames centred on multiples of the hop."""
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        spec = torch.stft(x, self.n_fft, self.hop_length, window=torch.hann_window(self.n_fft), center=True,
                          pad_mode="constant", return_complex=True).abs().square()  # fmt: skip
        return spec.T.numpy()

    def mel_power(self, wave: np.ndarray, semitones: float = 0.0, f0: np.ndarray | None = None) -> np.ndarray:
        """(frames, n_mels) mel power spectrogram of a waveform, its harmonics moved by `semitones` if not 0 (the
        waveform's f0 per frame is then needed, `shift_harmonics`)."""
        return self.mel_of(self.power_spectrogram(wave), semitones, f0)

    def mel_of(self, power: np.ndarray, semitones: float = 0.0, f0: np.ndarray | None = None) -> np.ndarray:
        """`mel_power` from the power spectrogram."""
        if semitones:
            if f0 is None:
                raise ValueError("Shifting the harmonics needs the clip's f0 per frame (f0=...).")
            power = self.shift_harmonics(power, semitones, f0)
        return (power @ self.mel_filters).astype(np.float32)

    def shift_harmonics(
        self, power: np.ndarray, semitones: float, f0: np.ndarray, cut: int | None = None, floor: float | None = None
    ) -> np.ndarray:
        """`power` (frames, bins) as if sung `semitones` higher with the same vocal tract: new harmonics under the
        old envelope.

        Each voiced frame's log spectrum is split by cepstral liftering into its envelope (the formants:
        quefrencies under half the clip's median pitch period) and its fine structure. The fine structure is
        replaced by a harmonic comb at the frame's f0 times 2**(semitones/12), each harmonic drawn as the analysis
        window's main lobe, and scaled to the depth the frame's own harmonics had (breathy stays breathy). This is
        what a vocoder's resynthesis gives, computed in the spectrogram itself. Frames without f0 (`f0` NaN or 0:
        silence, consonants) are noise, not harmonics, and stay as they are.

        Every frame is moved on its own except for two figures of the whole clip, `cut` (the envelope's
        quefrencies, `envelope_cut`) and `floor` (added before the log, 100 dB under the clip's loudest bin): a
        stream that shifts a clip window by window passes the whole clip's.
        """
        frames, bins = power.shape
        f0 = np.nan_to_num(np.asarray(f0, dtype=np.float64), nan=0.0)[:frames]
        f0 = np.pad(f0, (0, frames - f0.size))
        voiced = np.flatnonzero(f0 > 0)
        if voiced.size == 0:
            return power
        floor = np.float32(max(float(power.max()), 1e-20) * 1e-10 if floor is None else floor)
        log_power = np.log(power[voiced].astype(np.float32) + floor)  # float32 throughout: half the time of float64
        cut = self.envelope_cut(f0[voiced]) if cut is None else cut
        to_cepstrum, from_cepstrum = self._cepstral_basis(bins, cut)
        envelope = (log_power @ to_cepstrum) @ from_cepstrum
        bin_hz = self.sampling_rate / self.n_fft
        harmonic_bins = (f0[voiced] * 2.0 ** (semitones / 12.0) / bin_hz).astype(np.float32)[:, None]  # new f0
        position = np.arange(bins, dtype=np.float32)[None, :] / harmonic_bins
        offset = np.abs(position - np.maximum(1.0, np.rint(position))) * harmonic_bins  # bins to nearest harmonic
        comb = _HANN_LOG_POWER[np.minimum(np.rint(offset * _HANN_STEPS).astype(int), len(_HANN_LOG_POWER) - 1)]
        comb -= (comb @ to_cepstrum) @ from_cepstrum
        fine = log_power - envelope
        depth = fine.std(axis=1, keepdims=True) / np.maximum(comb.std(axis=1, keepdims=True), 1e-9)
        out = power.astype(np.float32)  # a copy
        out[voiced] = np.maximum(np.exp(envelope + depth * comb) - floor, 0.0)
        return out

    def envelope_cut(self, voiced_f0: np.ndarray) -> int:
        """Quefrencies kept as the envelope: those under half the clip's median pitch period."""
        return max(4, int(0.5 * self.sampling_rate / np.median(voiced_f0)))

    def _cepstral_basis(self, bins: int, cut: int) -> tuple[np.ndarray, np.ndarray]:
        """(bins, cut) and (cut, bins) matrices whose product keeps a log spectrum's first `cut` quefrencies (its
        envelope). A log power spectrum is real and even, so its cepstrum is a cosine transform; going through the
        `cut` kept coefficients costs cut/bins of a full (bins, bins) smoothing matrix."""
        angle = 2 * np.pi * np.outer(np.arange(bins), np.arange(cut)) / self.n_fft
        edge = np.ones(bins)
        edge[1 : self.n_fft - bins + 1] = 2.0  # the bins between 0 and Nyquist stand for two of the full spectrum's
        to_cepstrum = edge[:, None] * np.cos(angle) / self.n_fft
        from_cepstrum = np.where(np.arange(cut) == 0, 1.0, 2.0)[:, None] * np.cos(angle).T
        return to_cepstrum.astype(np.float32), from_cepstrum.astype(np.float32)

    def __call__(
        self,
        raw_audio: np.ndarray | list[np.ndarray],
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        semitones: list[float] | None = None,
        f0: list[np.ndarray | None] | None = None,
        **kwargs,
    ) -> BatchFeature:
        """One mono waveform or a list of them, float at `self.sampling_rate` (resample before calling).

        `semitones` (one per clip, 0 for none) moves each clip's harmonics, formants kept; `f0` then gives each
        shifted clip's f0 in Hz per frame (NaN or 0 where unvoiced), frames centred on multiples of the hop.
        """
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(
                f"Audio at {sampling_rate} Hz was given, but this model expects {self.sampling_rate} Hz: "
                "resample it first (voicerec.load_audio does)."
            )
        batch = [raw_audio] if isinstance(raw_audio, np.ndarray) and raw_audio.ndim == 1 else list(raw_audio)
        batch = [np.asarray(a, dtype=np.float32) for a in batch]
        if any(a.ndim != 1 for a in batch):
            raise ValueError("Only mono waveforms are supported: mix down to one channel first.")
        semitones = [0.0] * len(batch) if semitones is None else list(semitones)
        f0 = [None] * len(batch) if f0 is None else list(f0)
        if not len(semitones) == len(f0) == len(batch):
            raise ValueError(f"Give one semitones and one f0 per clip: {len(batch)} clips, {len(semitones)} "
                             f"semitones, {len(f0)} f0 tracks.")  # fmt: skip
        tail = np.zeros(self.window_frames * self.hop_length, dtype=np.float32)
        powers = {}  # one spectrogram per waveform, however many shifts of it are asked for
        for a in batch:
            if id(a) not in powers:
                powers[id(a)] = self.power_spectrogram(np.concatenate([self.raise_volume(a), tail]))
        mels = [self.mel_of(powers[id(a)], s, f) for a, s, f in zip(batch, semitones, f0, strict=True)]
        valid = [1 + a.size // self.hop_length for a in batch]
        frames = max(m.shape[0] for m in mels)
        features = np.full((len(batch), frames, self.feature_size), self.padding_value, dtype=np.float32)
        mask = np.zeros((len(batch), frames), dtype=np.int32)
        for i, (m, n) in enumerate(zip(mels, valid, strict=True)):
            features[i, : m.shape[0]] = m
            mask[i, :n] = 1
        out = BatchFeature({"input_features": features, "attention_mask": mask})
        return out.convert_to_tensors(return_tensors) if return_tensors is not None else out
