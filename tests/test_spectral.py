"""Tests for the batched spectrogram front end (models/spectral.py)."""

import librosa
import numpy as np
import pytest
import torch

from models.spectral import (
    MAG_EPS,
    SpectralFrontend,
    binary_masks,
    frames_from_length,
    istft,
    length_from_frames,
    log_freq_grid,
    loss_weight,
    ratio_masks,
    stft,
    unwarp_log_freq,
    warp_log_freq,
)

SMALL = dict(n_fft=510, hop=128, length=16383)  # -> (256, 128) spectrogram


def _noise(*shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32))


@pytest.mark.parametrize("n_fft, hop, length", [(510, 128, 16383), (1022, 256, 65535)])
def test_stft_matches_librosa_reflect(n_fft, hop, length):
    wav = _noise(length)
    ref = librosa.stft(wav.numpy(), n_fft=n_fft, hop_length=hop, pad_mode="reflect")
    spec = stft(wav, n_fft, hop).numpy()
    assert spec.shape == ref.shape == (n_fft // 2 + 1, frames_from_length(length, hop))
    scale = np.abs(ref).max()
    assert np.abs(np.abs(spec) - np.abs(ref)).max() / scale < 1e-4
    # Phase compared through the complex values, which has no 2*pi wrap-around.
    assert np.abs(spec - ref).max() / scale < 1e-4


def test_stft_leading_dims():
    wavs = _noise(2, 3, SMALL["length"])
    spec = stft(wavs, SMALL["n_fft"], SMALL["hop"])
    assert spec.shape == (2, 3, 256, 128)
    torch.testing.assert_close(spec[1, 2], stft(wavs[1, 2], SMALL["n_fft"], SMALL["hop"]))


def test_istft_round_trip():
    n_fft, hop, length = SMALL.values()
    wav = _noise(2, length)
    spec = stft(wav, n_fft, hop)
    rec = istft(spec.abs(), spec.angle(), n_fft, hop, length=length)
    torch.testing.assert_close(rec, wav, atol=1e-5, rtol=0)
    # Without a length: hop * (T - 1) samples, as librosa.istft (65280 at the reference size).
    assert istft(spec.abs(), spec.angle(), n_fft, hop).shape == (2, length_from_frames(128, hop))
    assert length_from_frames(frames_from_length(65535, 256), 256) == 65280


def test_frame_count():
    assert frames_from_length(65535, 256) == 256
    assert frames_from_length(16383, 128) == 128


def test_log_freq_grid_endpoints_and_identity_time():
    grid = log_freq_grid(256, 8, warp=True)
    assert grid.shape == (1, 256, 8, 2)
    torch.testing.assert_close(grid[0, :, :, 0], torch.linspace(-1, 1, 8).expand(256, 8))
    assert grid[0, 0, 0, 1].item() == pytest.approx(-1.0)
    assert grid[0, -1, 0, 1].item() == pytest.approx(1.0)
    # The unwarp grid inverts the warp: warp_y(unwarp_y(y)) = y.
    y_unwarp = log_freq_grid(512, 1, warp=False)[0, :, 0, 1].double()
    torch.testing.assert_close(
        (21 ** ((y_unwarp + 1) / 2) - 11) / 10,
        torch.linspace(-1, 1, 512, dtype=torch.float64),
        atol=1e-6,
        rtol=0,
    )


def test_warp_matches_reference_formula():
    spec = _noise(2, 1, 512, 6).abs()
    warped = warp_log_freq(spec, 256)
    assert warped.shape == (2, 1, 256, 6)
    # align_corners=True: output row k reads input bin 511 * (21^(k/255) - 1) / 20, linearly
    # interpolated.
    k = np.arange(256)
    source_bin = 511 * (21.0 ** (k / 255) - 1) / 20
    expected = np.stack(
        [
            [[np.interp(source_bin, np.arange(512), spec[b, 0, :, t].numpy()) for t in range(6)]]
            for b in range(2)
        ],
        axis=0,
    ).transpose(0, 1, 3, 2)
    # float32 grid coordinates near bin 500 are exact to ~3e-5 bins.
    np.testing.assert_allclose(warped.numpy(), expected, atol=1e-4)


def test_unwarp_inverts_warp_on_smooth_input():
    freq = torch.arange(512, dtype=torch.float32)
    frames = torch.arange(4, dtype=torch.float32)
    smooth = 2 + torch.sin(np.pi * freq[:, None] / 1024 + frames[None, :])  # (512, 4)
    back = unwarp_log_freq(warp_log_freq(smooth[None, None], 256), 512)
    assert back.shape == (1, 1, 512, 4)
    torch.testing.assert_close(back[0, 0], smooth, atol=1e-3, rtol=0)


def test_warp_accepts_any_leading_dims():
    spec = _noise(2, 3, 1, 256, 4).abs()
    warped = warp_log_freq(spec, 128)
    assert warped.shape == (2, 3, 1, 128, 4)
    torch.testing.assert_close(warped[1, 2], warp_log_freq(spec[1, 2], 128))


def test_masks_and_weight_formulas():
    mags = torch.tensor([[[[[0.0, 1.0, 3.0, 20.0]]]], [[[[2.0, 0.5, 1.0, 1.0]]]]]).transpose(
        0, 1
    )  # (1, 2, 1, 1, 4)
    mag_mix = torch.tensor([[[[1.0, 2.0, 2.0, 2.0]]]])  # (1, 1, 1, 4)
    torch.testing.assert_close(
        ratio_masks(mags, mag_mix),
        torch.tensor([[[[[0.0, 0.5, 1.5, 5.0]]], [[[2.0, 0.25, 0.5, 0.5]]]]]),
    )
    torch.testing.assert_close(
        binary_masks(mags, mag_mix),
        torch.tensor([[[[[0.0, 0.0, 1.0, 1.0]]], [[[1.0, 0.0, 0.0, 0.0]]]]]),
    )
    torch.testing.assert_close(
        binary_masks(mags, mag_mix, threshold=0.2)[0, 1], torch.tensor([[[1.0, 1.0, 1.0, 1.0]]])
    )
    weight = loss_weight(torch.tensor([0.0, 1.0, 1e6]))
    torch.testing.assert_close(weight, torch.tensor([1e-3, float(np.log(2.0)), 10.0]))


def _batch(num_objects=4, length=SMALL["length"], silent=(1, 3), dtype=torch.float32):
    audios = 0.5 * _noise(2, num_objects, length, seed=1).to(dtype)
    audios[:, list(silent)] = 0
    return audios, audios.sum(1)


def test_frontend_reference_shapes():
    audios, mix = _batch(length=65535)
    out = SpectralFrontend()(audios, mix)
    assert out["mag_mix"].shape == out["phase_mix"].shape == (2, 1, 512, 256)
    for key in ("mag_mix_w", "log_mag_mix", "weight"):
        assert out[key].shape == (2, 1, 256, 256), key
    for key in ("mags_w", "log_mags", "gt_masks"):
        assert out[key].shape == (2, 4, 1, 256, 256), key


def test_frontend_small_size_and_formulas():
    n_fft, hop, length = SMALL.values()
    audios, mix = _batch()
    out = SpectralFrontend(n_fft=n_fft, hop=hop, warp_bins=128)(audios, mix)
    assert out["mag_mix"].shape == (2, 1, 256, 128)
    assert out["gt_masks"].shape == (2, 4, 1, 128, 128)
    spec_mix = stft(mix, n_fft, hop)[:, None]
    torch.testing.assert_close(out["mag_mix"], spec_mix.abs() + MAG_EPS)
    torch.testing.assert_close(out["phase_mix"], spec_mix.angle())
    torch.testing.assert_close(out["mag_mix_w"], warp_log_freq(out["mag_mix"], 128))
    mags_w = warp_log_freq(stft(audios, n_fft, hop).abs(), 128).unsqueeze(2)
    torch.testing.assert_close(out["mags_w"], mags_w)
    torch.testing.assert_close(out["log_mags"], torch.log1p(mags_w))
    torch.testing.assert_close(out["log_mag_mix"], torch.log1p(out["mag_mix_w"]))
    torch.testing.assert_close(out["gt_masks"], (mags_w / out["mag_mix_w"][:, None]).clamp(0, 5))
    torch.testing.assert_close(out["weight"], torch.log1p(out["mag_mix_w"]).clamp(1e-3, 10))
    assert not any(v.requires_grad for v in out.values())


@pytest.mark.parametrize("log_freq", [True, False])
def test_analysis_of_the_mixture_alone_is_what_the_full_forward_gives(log_freq):
    """Inference analyses a mixture without its sources: the same mixture outputs, bit for bit,
    and no source or target outputs."""
    audios, mix = _batch()
    frontend = SpectralFrontend(n_fft=510, hop=128, warp_bins=128, log_freq=log_freq)
    full, alone = frontend(audios, mix), frontend.analyse(mix.double())
    assert set(alone) == {"mag_mix", "phase_mix", "mag_mix_w", "log_mag_mix"}
    for key, value in alone.items():
        assert value.dtype == torch.float32 and not value.requires_grad, key
        assert torch.equal(value, full[key]), key
    targets = frontend.targets(full["mags_w"], full["mag_mix_w"])
    assert set(targets) == {"gt_masks", "weight"}
    for key, value in targets.items():
        assert torch.equal(value, full[key]), key
    with pytest.raises(ValueError, match=r"\(2, 4, 16383\)"):
        frontend.analyse(audios)


def test_frontend_silent_objects_get_zero_masks():
    audios, mix = _batch()
    out = SpectralFrontend(n_fft=510, hop=128, warp_bins=128)(audios, mix)
    for n in (1, 3):
        assert torch.count_nonzero(out["gt_masks"][:, n]) == 0
        assert torch.count_nonzero(out["log_mags"][:, n]) == 0
    assert out["gt_masks"][:, 0].sum() > 0


def test_frontend_casts_float64_to_float32():
    audios, mix = _batch(dtype=torch.float64)
    out = SpectralFrontend(n_fft=510, hop=128, warp_bins=128)(audios, mix)
    assert all(v.dtype == torch.float32 for v in out.values())


def test_frontend_options():
    audios, mix = _batch()
    out = SpectralFrontend(
        n_fft=510, hop=128, log_freq=False, binary_mask=True, weighted_loss=False
    )(audios, mix)
    assert out["mag_mix_w"].shape == (2, 1, 256, 128)
    torch.testing.assert_close(out["mag_mix_w"], out["mag_mix"])
    assert set(out["gt_masks"].unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(out["gt_masks"], binary_masks(out["mags_w"], out["mag_mix_w"]))
    assert torch.all(out["weight"] == 1)


def test_frontend_rejects_bad_shapes():
    audios, mix = _batch()
    with pytest.raises(ValueError, match=r"\(2, 4, 16383\)"):
        SpectralFrontend()(audios, mix[:, :100])


def test_frontend_unwarp_and_istft_helpers():
    n_fft, hop, length = SMALL.values()
    frontend = SpectralFrontend(n_fft=n_fft, hop=hop, warp_bins=128)
    audios, mix = _batch()
    out = frontend(audios, mix)
    ones = torch.ones_like(out["gt_masks"])
    unwarped = frontend.unwarp(ones)
    assert unwarped.shape == (2, 4, 1, 256, 128)
    torch.testing.assert_close(unwarped, torch.ones_like(unwarped))
    wav = frontend.istft(out["mag_mix"][:, 0] - MAG_EPS, out["phase_mix"][:, 0], length=length)
    torch.testing.assert_close(wav, mix, atol=1e-5, rtol=0)


def test_reconstruct_thresholds_binary_masks_only():
    """Sound of Pixels separates with its binary masks thresholded.

    Ratio masks are used as they are.
    """
    torch.manual_seed(0)
    mix = 0.3 * torch.randn(2, 2047)
    audios = torch.stack([mix / 2, mix / 2], 1)  # (B, N, L)
    masks = torch.full((2, 2, 1, 32, 16), 0.4)
    masks[:, 0] = 0.6
    for binary in (True, False):
        front = SpectralFrontend(n_fft=254, hop=128, warp_bins=32, binary_mask=binary)
        spec = front(audios, mix)
        est = front.reconstruct(masks, spec, length=2047)  # (B, N, L)
        assert est.shape == (2, 2, 2047)
        if binary:  # 0.6 -> the whole mixture, 0.4 -> nothing
            torch.testing.assert_close(est[:, 0], mix.clamp(-1, 1), atol=1e-3, rtol=0)
            assert est[:, 1].abs().max() == 0
        else:
            torch.testing.assert_close(est[:, 0], (0.6 * mix).clamp(-1, 1), atol=1e-3, rtol=0)
    soft = front.reconstruct(masks, spec, length=2047, threshold=False)
    torch.testing.assert_close(soft, est)


def test_frontend_log_input():
    """Sound of Pixels feeds log |S| (floored, so silent sources stay finite), CCoL log1p |S|."""
    mix = 0.3 * torch.randn(1, 2047)
    audios = torch.stack([mix, torch.zeros_like(mix)], 1)
    out = SpectralFrontend(n_fft=254, hop=128, warp_bins=32, log_input="log")(audios, mix)
    torch.testing.assert_close(out["log_mag_mix"], torch.log(out["mag_mix_w"]))
    assert torch.isfinite(out["log_mags"]).all()
    with pytest.raises(ValueError, match="log_input"):
        SpectralFrontend(log_input="db")
