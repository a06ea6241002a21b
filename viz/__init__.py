"""HTML pages of runs: media from evaluation batches, plots, run pages and an index of all runs."""

from viz.html import esc, fmt, render_page, url
from viz.media import (
    DB_RANGE,
    FRAME_H,
    collect_samples,
    frame_strip,
    save_colormapped,
    save_wav,
    shrink,
    to_u8,
)
from viz.overlay import OVERLAY_H, overlay_image, scale_map
from viz.pages import PAGE_DIR, write_run_page, write_runs_index
from viz.plots import plot_history

__all__ = [
    "DB_RANGE",
    "FRAME_H",
    "OVERLAY_H",
    "PAGE_DIR",
    "collect_samples",
    "esc",
    "fmt",
    "frame_strip",
    "overlay_image",
    "plot_history",
    "render_page",
    "save_colormapped",
    "scale_map",
    "save_wav",
    "shrink",
    "to_u8",
    "url",
    "write_run_page",
    "write_runs_index",
]
