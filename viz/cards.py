"""One sample's card on a run page: its media files and the HTML table of its objects."""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

from dataset.layout import class_of
from models.grounding_net import is_sounding
from viz.html import esc, fmt, num, url
from viz.media import frame_strip, hstack, save_colormapped, save_jpeg, save_wav
from viz.overlay import overlay_image, scale_map


def _scores_html(rec) -> str:
    if rec is None:
        return ""
    flag = "" if rec.get("valid", True) else '<div class="badge bad">invalid: excluded</div>'
    sdr, mix = num(rec.get("sdr")), num(rec.get("sdr_mix"))
    return (
        f'<div class="scores">{flag}<div><b>SDR</b><span class="big">{fmt(sdr)}</span></div>'
        f"<div><b>SIR</b>{fmt(rec.get('sir'))}</div><div><b>SAR</b>{fmt(rec.get('sar'))}</div>"
        f"<div><b>mix SDR</b>{fmt(mix)}</div><div><b>ΔSDR</b>{fmt(sdr - mix)}</div></div>"
    )


def _leak_db(est_i16: np.ndarray, mix_i16: np.ndarray) -> float:
    e = float(np.sum(est_i16.astype(np.float64) ** 2))
    m = float(np.sum(mix_i16.astype(np.float64) ** 2))
    return 10 * math.log10(max(e / m, 1e-10)) if m > 0 else float("nan")


def write_sample_card(s: dict, i: int, media: str, args) -> str:
    """Write one sample's media under media/s<i>/ and return its card."""
    sub = f"s{i:03d}"
    os.makedirs(os.path.join(media, sub))
    rate = int(getattr(args, "aud_rate", 11025))
    data_root = getattr(args, "data_root", "")

    def rel(name):
        return f"media/{sub}/{name}"

    def path(name):
        return os.path.join(media, sub, name)

    def spec_audio(name: str, spec_u8, wav_i16, caption: str, empty_text: str) -> str:
        if not np.any(wav_i16):
            return f'<div class="empty">{esc(empty_text)}</div>'
        save_colormapped(spec_u8, path(name + ".jpg"), "magma")
        save_wav(wav_i16, path(name + ".wav"), rate)
        return (
            f'<img class="spec" src="{url(rel(name + ".jpg"))}" alt="{esc(caption)}" '
            f'title="{esc(caption)}" loading="lazy">'
            f'<audio controls preload="none" src="{url(rel(name + ".wav"))}"></audio>'
        )

    def mask_img(name: str, mask_u8, caption: str) -> str:
        save_colormapped(mask_u8, path(name + ".jpg"), "viridis")
        return (
            f'<img class="mask" src="{url(rel(name + ".jpg"))}" alt="{esc(caption)}" '
            f'title="{esc(caption)}" loading="lazy">'
        )

    infos, sounding, prob = s["infos"], s["sounding"], s["prob"]
    N = len(infos)
    has_masks, has_est = s["pred_mask"] is not None, "est" in s["wav"]
    has_oracle = "oracle" in s["wav"]

    save_colormapped(s["spec"]["mix"], path("mix.jpg"), "magma")
    save_wav(s["wav"]["mix"], path("mix.wav"), rate)

    sounding_map = s.get("map")
    heads = ["object", "video frames (detection box) · network input"]
    if sounding_map is not None:
        heads += [f"where it sounds ({sounding_map['kind']} map)"]
    if has_masks:
        heads += ["predicted mask", "true mask"]
    if has_est:
        heads += ["separated"]
    heads += ["true source"]
    if has_oracle:
        heads += ["mixture × true mask (oracle)"]
    body = []
    for n in range(N):
        info = infos[n]
        name = class_of(info) if info else "?"
        stem = os.path.splitext(os.path.basename(info))[0]
        cells = []
        badges = (
            f'<span class="badge {"sounding" if sounding[n] else "silent"}">'
            f"{'sounding' if sounding[n] else 'silent'}</span>"
        )
        if prob is not None:
            p = float(prob[n])
            ok = bool(is_sounding(p)) == bool(sounding[n])
            badges += (
                f'<span class="badge {"ok" if ok else "bad"}" '
                'title="predicted probability that the '
                f'object sounds; {"correct" if ok else "wrong"} at 0.5">p = {p:.2f} '
                f"{'✓' if ok else '✗'}</span>"
            )
        if not has_est:
            scores = ""
        elif sounding[n]:
            scores = _scores_html(s["records"].get(n))
        else:
            leak_db = _leak_db(s["wav"]["est"][n], s["wav"]["mix"])
            leak = (
                f'<span class="big">{fmt(leak_db, 1)}</span> dB'
                if np.any(s["wav"]["est"][n])
                else '<span class="big">none</span> (gated)'
            )
            scores = (
                f'<div class="scores" title="energy of the leaked estimate re the mixture">'
                f"<b>leakage</b>{leak}</div>"
            )
        frames = ", ".join(str(int(f)) for f in s["frame_ids"][n])
        cells.append(
            f'<div class="cls">{esc(name)}</div><div class="file" title="{esc(info)}">'
            f"{esc(stem)}</div><div>{badges}</div>"
            f'<div class="small">frames {esc(frames)}</div>'
            f"{scores}"
        )

        frame_strip(data_root, info, s["frame_ids"][n], s["boxes"][n], path(f"o{n}_frames.jpg"))
        save_jpeg(hstack([Image.fromarray(c) for c in s["crops"][n]]), path(f"o{n}_crops.jpg"), 90)
        cells.append(
            f'<img class="strip" src="{url(rel(f"o{n}_frames.jpg"))}" alt="frames" loading="lazy">'
            f'<img class="crops" src="{url(rel(f"o{n}_crops.jpg"))}" alt="network input" '
            f'title="crops as fed to the networks" loading="lazy">'
        )
        if sounding_map is not None:
            kind = sounding_map["kind"]
            image = overlay_image(
                sounding_map["frames"][n],
                scale_map(sounding_map["heat"][n], kind),
                sounding_map["detection"][n],
                sounding_map["truth"][n],
            )
            save_jpeg(image, path(f"o{n}_map.jpg"), 90)
            caption = f"{kind} map of the centre frame against the mixture"
            cells.append(
                f'<img class="overlay" src="{url(rel(f"o{n}_map.jpg"))}" alt="{esc(caption)}" '
                f'title="{esc(caption)}" loading="lazy">'
            )
        if has_masks:
            cells.append(mask_img(f"o{n}_pred_mask", s["pred_mask"][n], "predicted mask"))
            cells.append(mask_img(f"o{n}_true_mask", s["gt_mask"][n], "true mask (clipped to 1)"))
        if has_est:
            what = "separated" if sounding[n] else "leaked estimate (silent object)"
            cells.append(
                f'<div class="small">{"" if sounding[n] else "leaked estimate"}</div>'
                + spec_audio(
                    f"o{n}_est",
                    s["spec"]["est"][n],
                    s["wav"]["est"][n],
                    what,
                    "gated to zero: nothing leaked",
                )
            )
        cells.append(
            spec_audio(
                f"o{n}_source",
                s["spec"]["source"][n],
                s["wav"]["source"][n],
                "true source",
                "silent: no true source",
            )
        )
        if has_oracle:
            cells.append(
                spec_audio(
                    f"o{n}_oracle",
                    s["spec"]["oracle"][n],
                    s["wav"]["oracle"][n],
                    "mixture × true mask (oracle)",
                    "true mask is zero",
                )
            )
        body.append(
            f'<tr class="{"sounding" if sounding[n] else "silent"}">'
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )

    names = " + ".join(class_of(x) for x, snd in zip(infos, sounding) if snd)
    silent = ", ".join(class_of(x) for x, snd in zip(infos, sounding) if not snd)
    recs = [r for r in s["records"].values() if r.get("valid", True)]
    mean_sdr = ""
    if recs:
        mean = np.mean([num(r["sdr"]) for r in recs])
        mean_sdr = f'<span class="badge sounding">mean SDR {fmt(mean)} dB</span>'
    ground = ""
    if prob is not None:
        correct = int(np.sum(is_sounding(np.asarray(prob)) == np.asarray(sounding)))
        ground = (
            f'<div class="small" style="margin-top:6px">grounding: <b>{correct}/{N}</b> objects '
            f"classified correctly</div>"
        )
    return (
        f'<section class="card" id="{sub}"><div class="card-head"><h3>#{i + 1} · sample '
        f'{s["index"]}</h3><span class="what">sounding: <b>{esc(names or "—")}</b>'
        f"{' · silent: ' + esc(silent) if silent else ''}</span>{mean_sdr}</div>"
        f'<div class="card-body"><div class="mix"><img class="mixspec" src="{url(rel("mix.jpg"))}" '
        f'alt="mixture" loading="lazy"><div><div class="cls">mixture</div><div class="small">'
        f'sum of the sounding objects\' clips</div><audio class="wide" controls preload="none" '
        f'src="{url(rel("mix.wav"))}"></audio>{ground}</div></div>'
        f'<table class="objects"><thead><tr>{"".join(f"<th>{esc(h)}</th>" for h in heads)}</tr>'
        "</thead>"
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )
