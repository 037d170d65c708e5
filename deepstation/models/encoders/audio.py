"""Speech: waveform -> log-mel spectrogram -> two strided convolutions (time / 4) -> a bidirectional GRU.

The spectrogram is computed here, in torch, so it runs wherever the model runs (the GPU when there is one).
Each utterance's log-mel bands are normalised to zero mean and unit variance over its own frames, which takes
away recording level and channel colour. While training, SpecAugment-style masks blank random bands and
stretches of time. Padding is tracked throughout: every utterance's true number of steps is returned, the GRU
reads packed sequences, and CTC sees only real steps.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from deepstation.data.audio import mel_filterbank
from deepstation.models.encoders import register

WINDOW_S, HOP_S = 0.025, 0.010  # 25 ms frames every 10 ms, the usual for speech
FLOOR = 1e-6                    # log floor: silence does not become -inf
FREQ_MASKS, TIME_MASKS = 2, 2   # SpecAugment: masks per utterance while training
MAX_TIME_MASK = 0.08            # ... a time mask spans at most this share of an utterance (and 20 frames)


class LogMel(nn.Module):
    """[batch, samples] waveforms and their lengths -> ([batch, frames, n_mels] log-mel energies, frame counts)."""

    def __init__(self, sample_rate: int, n_mels: int):
        super().__init__()
        self.win_length = round(WINDOW_S * sample_rate)
        self.hop = round(HOP_S * sample_rate)
        self.n_fft = 2 ** math.ceil(math.log2(self.win_length))
        # buffers, not weights: rebuilt from the config, so they are left out of checkpoints
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)
        self.register_buffer("filters", torch.from_numpy(mel_filterbank(sample_rate, self.n_fft, n_mels)),
                             persistent=False)

    def frames(self, samples: torch.Tensor) -> torch.Tensor:
        return samples // self.hop + 1  # torch.stft(center=True) gives a frame per hop, plus one

    def forward(self, wave: torch.Tensor, samples: torch.Tensor):
        with torch.autocast(wave.device.type, enabled=False):  # an FFT wants fp32 whatever the precision
            spec = torch.stft(wave.float(), self.n_fft, self.hop, self.win_length, self.window, center=True,
                              pad_mode="constant", return_complex=True)  # [batch, bins, frames]
            power = spec.real ** 2 + spec.imag ** 2
            mel = power.transpose(1, 2) @ self.filters
            return torch.log(mel.clamp(min=FLOOR)), self.frames(samples)


def normalise(x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per band over each utterance's own frames; padding frames set to 0."""
    mask = _inside(frames, x.shape[1]).to(x.dtype)[..., None]
    count = frames.clamp(min=1).to(x.dtype)[:, None, None]
    mean = (x * mask).sum(1, keepdim=True) / count
    var = (((x - mean) * mask) ** 2).sum(1, keepdim=True) / count
    return (x - mean) / torch.sqrt(var + 1e-5) * mask


def spec_augment(x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Blank (set to the mean, 0) random bands and stretches of time, a few per utterance."""
    batch, steps, bands = x.shape
    keep = torch.ones_like(x, dtype=torch.bool)
    band = torch.arange(bands, device=x.device)[None, :]
    step = torch.arange(steps, device=x.device)[None, :]
    for _ in range(FREQ_MASKS):
        width = torch.randint(0, max(bands // 8, 1) + 1, (batch, 1), device=x.device)
        start = (torch.rand(batch, 1, device=x.device) * (bands - width + 1)).long()
        keep &= ~((band >= start) & (band < start + width))[:, None, :]
    longest = (frames.float() * MAX_TIME_MASK).clamp(max=20).long()[:, None]
    for _ in range(TIME_MASKS):
        width = (torch.rand(batch, 1, device=x.device) * (longest + 1).float()).long()
        start = (torch.rand(batch, 1, device=x.device) * (frames[:, None] - width + 1).clamp(min=1).float()).long()
        keep &= ~((step >= start) & (step < start + width))[:, :, None]
    return x * keep


def _inside(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """[batch, steps] True where a step is within its row's length."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def _subsampled(n: torch.Tensor) -> torch.Tensor:
    """Frames left after a convolution of kernel 3, stride 2, padding 1."""
    return (n - 1) // 2 + 1


@register("audio", temporal=True)
class Audio(nn.Module):
    def __init__(self, config, shape: dict, temporal: bool = False):
        super().__init__()
        n_mels, width = shape["n_mels"], config.width
        self.frontend = LogMel(shape["sample_rate"], n_mels)
        self.augment = bool(shape.get("augment", True))
        channels = max(8, width // 2)
        self.conv = nn.ModuleList([nn.Conv2d(1, channels, 3, stride=2, padding=1),
                                   nn.Conv2d(channels, channels, 3, stride=2, padding=1)])
        bands = _subsampled(_subsampled(n_mels))
        self.project = nn.Sequential(nn.Linear(channels * bands, width), nn.Dropout(config.dropout))
        self.rnn = nn.GRU(width, width, num_layers=config.depth, batch_first=True, bidirectional=True,
                          dropout=config.dropout if config.depth > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.temporal = temporal
        self.out_dim = 2 * width

    def forward(self, x: dict):
        feats, frames = self.frontend(x["wave"], x["samples"])
        feats = normalise(feats, frames)
        if self.training and self.augment:
            feats = spec_augment(feats, frames)
        f, lengths = feats[:, None], frames
        for conv in self.conv:  # [batch, channels, steps, bands], steps halved by each
            f, lengths = torch.relu(conv(f)), _subsampled(lengths)
            # zero past each utterance's end, as if it were alone: the next window must not see padding's bias
            f = f * _inside(lengths, f.shape[2]).to(f.dtype)[:, None, :, None]
        steps = self.project(f.permute(0, 2, 1, 3).flatten(2))  # [batch, steps, width]
        packed = nn.utils.rnn.pack_padded_sequence(steps, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=steps.shape[1])
        out = self.dropout(out)
        if self.temporal:
            return out, lengths
        mask = _inside(lengths, out.shape[1]).to(out.dtype)
        return (out * mask[..., None]).sum(1) / lengths.clamp(min=1)[:, None].to(out.dtype)
