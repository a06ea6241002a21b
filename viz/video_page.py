"""The page of a video separated over its whole track (scripts/separate_video.py): frames with
the boxes used for the crops, spectrograms and players of the mixture and of every object, and the
objects' sounding probabilities over the windows."""

from __future__ import annotations

import os

import numpy as np
import torch

from models.grounding_net import is_sounding
from models.spectral import stft, warp_log_freq
from utils import atomic_write
from viz.html import esc, gradient, render_page, url
from viz.media import DB_RANGE, frame_strip, hstack, save_colormapped, save_jpeg, shrink, to_u8
from viz.overlay import MAP_CMAP, map_colors, overlay_image, scale_map

NUM_THUMBS = 6  # frames shown per object on the page
MAP_PX = 72  # height of a map thumbnail
SPEC_PX = 640  # longest side of a whole-track spectrogram image


def spectrogram_images(waves: np.ndarray, args) -> np.ndarray:
    """Log-frequency dB images of (M, L) waveforms re the first one's peak.

    Returns uint8 (M, h, w), row 0 low.
    """
    mag = stft(torch.from_numpy(waves), args.stft_frame, args.stft_hop).abs()
    if args.log_freq:
        mag = warp_log_freq(mag, args.warp_bins)
    db = 20 * torch.log10(mag + 1e-8)
    return to_u8(shrink((db - db[0].max()) / DB_RANGE + 1, SPEC_PX))


def map_strip(maps, n: int, shown: np.ndarray, path: str) -> None:
    """Object n's sounding map and box in `shown` windows, side by side (separation.WindowMaps)."""
    tiles = [
        overlay_image(
            maps.frames[w].permute(1, 2, 0).numpy(),  # (H, W, 3)
            scale_map(maps.heat[w, n], maps.kind),
            maps.boxes[w, n].numpy(),
            height=MAP_PX,
        )
        for w in shown
    ]
    save_jpeg(hstack(tiles), path, quality=88)


def probability_timeline(probs: np.ndarray, starts: np.ndarray, rate: int) -> str:
    """One cell per window, green when the object sounds, its opacity the probability."""
    cells = "".join(
        f'<span style="background:rgba({"31,157,85" if is_sounding(p) else "107,114,128"},'
        f'{0.25 + 0.75 * p:.2f})" '
        f'title="{s / rate:.1f} s: p = {p:.2f}"></span>'
        for p, s in zip(probs, starts)
    )
    return f'<div class="timeline">{cells}</div>'


PAGE_CSS = """
.timeline { display:flex; height:12px; width:300px; margin-top:6px; border-radius:3px;
            overflow:hidden; }
.timeline span { flex:1; }
img.track { display:block; width:360px; height:100px; border-radius:4px; background:#000; }
audio.track { width:360px; }
"""


def write_video_page(
    out_dir: str,
    work_root: str,
    info: dict,
    tracks: list,
    estimates: np.ndarray,
    mixture: np.ndarray,
    probs: np.ndarray | None,
    starts: np.ndarray,
    args,
    maps=None,
) -> str:
    """<out>/index.html with media under <out>/media: frames with boxes, spectrograms, players,
    and with `maps` (separation.WindowMaps) where each object's frames sound over time."""
    media = os.path.join(out_dir, "media")
    os.makedirs(media, exist_ok=True)
    specs = spectrogram_images(np.concatenate([mixture[None], estimates]), args)
    save_colormapped(specs[0], os.path.join(media, "mixture.jpg"), "magma")
    num_frames = len(tracks[0].boxes)
    shown = np.unique(np.linspace(1, num_frames, min(NUM_THUMBS, num_frames)).round().astype(int))
    shown_windows = np.unique(np.linspace(0, len(starts) - 1, min(NUM_THUMBS, len(starts))).round())
    shown_windows = shown_windows.astype(int)
    rows = []
    for n, track in enumerate(tracks):
        save_colormapped(specs[n + 1], os.path.join(media, f"{track.name}.jpg"), "magma")
        # Extracted frames live in <work>/frames/video.mp4, i.e. the frames of info '/video.wav'.
        frame_strip(
            work_root,
            "/video.wav",
            shown,
            track.boxes[shown - 1],
            os.path.join(media, f"{track.name}_frames.jpg"),
        )
        ground = '<div class="small">no grounding nets in this run</div>'
        if probs is not None:
            p = float(probs[:, n].mean())
            ground = (
                f'<span class="badge {"ok" if is_sounding(p) else "silent"}" '
                'title="mean over windows of the '
                f'probability that this object makes sound">sounding p = {p:.2f}</span>'
                + probability_timeline(probs[:, n], starts, args.aud_rate)
            )
        map_cell = ""
        if maps is not None:
            map_strip(maps, n, shown_windows, os.path.join(media, f"{track.name}_map.jpg"))
            times = ", ".join(f"{starts[w] / args.aud_rate:.0f}" for w in shown_windows)
            map_cell = (
                f'<td><img class="strip" src="{url("media/" + track.name + "_map.jpg")}" '
                f'alt="{esc(maps.kind)} maps"><div class="small">windows at {times} s</div></td>'
            )
        detected = int(track.detected.sum())
        rows.append(
            f'<tr><td><div class="cls">{esc(track.name)}</div><div class="small">class id '
            f"{track.class_id}; detected in {detected} of {num_frames} frames</div>{ground}</td>"
            f'<td><img class="strip" src="{url("media/" + track.name + "_frames.jpg")}" '
            'alt="frames">'
            f'<div class="small">frames {", ".join(map(str, shown))}</div></td>{map_cell}'
            f'<td><img class="track" src="{url("media/" + track.name + ".jpg")}" '
            'alt="spectrogram">'
            '<audio class="track" controls preload="none" '
            f'src="{url(track.name + ".wav")}"></audio></td></tr>'
        )
    meta = " &nbsp;·&nbsp; ".join(
        f"<b>{esc(k)}</b> {esc(v)}"
        for k, v in (
            ("video", info["video"]),
            ("run", info["run"]),
            ("stage", info["stage"]),
            ("checkpoint epoch", info["checkpoint_epoch"]),
            ("duration", f"{info['duration_sec']:.1f} s"),
            (
                "windows",
                f"{len(starts)} of {args.aud_len / args.aud_rate:.2f} s, "
                f"hop {info['hop_sec']:.2f} s",
            ),
            ("gated by grounding", "yes" if info["gated"] else "no"),
        )
    )
    head = (
        f'<h1>{esc(os.path.basename(info["video"]))}</h1><div class="sub">sounds of '
        f"{len(tracks)} object{'s' if len(tracks) != 1 else ''}, separated over the whole track"
        f'</div><div class="meta">{meta}</div>'
    )
    map_head = legend = ""
    if maps is not None:
        low, high = map_colors(maps.kind)
        map_head = f"<th>where it sounds ({esc(maps.kind)} map of each window's centre frame)</th>"
        legend = (
            f'<div class="legend">{esc(maps.kind)} maps: {esc(low)}<span class="bar" '
            f'style="background:{gradient(MAP_CMAP)}"></span>{esc(high)}; the object\'s box in '
            "yellow</div>"
        )
    body = (
        f'<h2>Mixture</h2><div class="panel mix"><img class="track" src="media/mixture.jpg" '
        f'alt="mixture spectrogram"><audio class="track" controls preload="none" '
        f'src="mixture.wav"></audio></div>'
        f'<h2>Objects</h2>{legend}<div class="panel"><table class="objects"><thead><tr>'
        f"<th>object</th><th>frames (box used for the crops)</th>{map_head}"
        f"<th>separated sound (log-frequency spectrogram, "
        f"−{DB_RANGE:.0f}..0 dB re the mixture's peak)</th></tr></thead><tbody>{''.join(rows)}"
        f"</tbody></table></div>"
    )
    page = render_page(f"separated: {os.path.basename(info['video'])}", head, body, PAGE_CSS)
    path = os.path.join(out_dir, "index.html")
    atomic_write(path, lambda f: f.write(page), text=True)
    return path
