"""Zone normalisation of text-line images: the body (x-height) band gets a fixed share of the height.

Hands differ most in their proportions: one writes a small x-height under long ascenders,
another almost all body. Scaled to a fixed line height, a small-x-height hand gets few
pixels for the letters that carry most of the text (a, e, o, n, m, u, r...). The classic
remedy in handwriting recognition is to normalise the three zones: find the body band from
the row profile of the ink, then map it to a fixed band of the output rows, with the
ascender and descender zones above and below it (compressed if they would not fit).

The width is kept. Scaling it with the body, so that the letters keep their aspect ratio,
made the lines 11 % wider on average: fewer steps fit in the demo's 10 minutes, and it
measured worse. Deslanting before this step did not measurably help either (docs/htr.md).
"""

from __future__ import annotations

from multiprocessing import get_context
from typing import Dict, List, Tuple

import numpy as np

#: Output rows of each zone, as shares of the height: ascenders, body, descenders.
ZONES = (0.3, 0.45, 0.25)
#: The body's scale factor is kept in this range (a line that is nearly all ascenders, or a
#: misread profile, must not be blown up or squeezed to nothing).
SCALE_RANGE = (0.6, 2.0)


def ink_threshold(img: np.ndarray) -> float:
    """Otsu's threshold of a grayscale image: the grey level that best separates ink and paper."""
    hist = np.bincount(img.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * levels)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(np.argmax(between[:-1]))


def body_band(img: np.ndarray) -> Tuple[int, int, int, int]:
    """(ink top, body top, body bottom, ink bottom) rows of a line, dark ink on light paper;
    bottoms exclusive. The body is the run of rows, around the densest one, whose ink count
    is at least 45 % of that row's; a single thinner row inside it does not end it."""
    mask = img <= ink_threshold(img)
    prof = mask.sum(axis=1).astype(np.float64)
    h = len(prof)
    if prof.max() <= 0:
        return 0, 0, h, h
    smooth = np.convolve(prof, np.ones(3) / 3, mode="same")  # the peak: not a single stray row
    peak = int(np.argmax(smooth))
    dense = prof >= 0.45 * smooth[peak]
    dense[1:-1] |= dense[:-2] & dense[2:]  # a thin row between two dense ones is in the band
    top, bot = peak, peak + 1
    while top > 0 and dense[top - 1]:
        top -= 1
    while bot < h and dense[bot]:
        bot += 1
    inked = np.nonzero(prof > 0.03 * smooth[peak])[0]
    return int(inked[0]), top, bot, int(inked[-1]) + 1


def normalize_zones(img: np.ndarray, zones: Tuple[float, float, float] = ZONES) -> np.ndarray:
    """The line with its body band mapped to ``zones[1]`` of the rows (same height and
    width). uint8 in, uint8 out."""
    h, w = img.shape
    y0, top, bot, y1 = body_band(img)
    a, b = zones[0] * h, zones[1] * h
    d = h - a - b
    s = float(np.clip(b / max(bot - top, 1), *SCALE_RANGE))
    body_lo, body_hi = a, a + b  # output rows of the body band
    centre, mid = (body_lo + body_hi) / 2, (top + bot) / 2
    top_s, bot_s = mid - (centre - body_lo) / s, mid + (body_hi - centre) / s  # the source rows they show
    s_up = min(s, a / max(top_s - y0, 1))  # the ascender zone is compressed if it would not fit
    s_down = min(s, d / max(y1 - bot_s, 1))
    out_rows = np.arange(h) + 0.5
    src = np.where(out_rows < body_lo, top_s - (body_lo - out_rows) / s_up,
                   np.where(out_rows > body_hi, bot_s + (out_rows - body_hi) / s_down, mid + (out_rows - centre) / s))
    src -= 0.5
    paper = float(np.median(img))
    lo = np.floor(src).astype(int)
    f = (src - lo)[:, None]
    padded = np.vstack([np.full((1, w), paper), img.astype(np.float64), np.full((1, w), paper)])
    rows = padded[np.clip(lo + 1, 0, h + 1)] * (1 - f) + padded[np.clip(lo + 2, 0, h + 1)] * f
    return np.clip(rows, 0, 255).astype(np.uint8)


def normalize_splits(splits: Dict[str, dict], workers: int = 1) -> Dict[str, dict]:
    """The splits with their ``images`` normalised; a split that another key shares (the TSV
    loader's val may be its test) is normalised once."""
    done: Dict[int, dict] = {}
    for d in splits.values():
        if id(d) not in done:
            done[id(d)] = dict(d, images=normalize_all(d["images"], workers))
    return {s: done[id(d)] for s, d in splits.items()}


def normalize_all(images: List[np.ndarray], workers: int = 1) -> List[np.ndarray]:
    """``normalize_zones`` of each image, in ``workers`` processes (about 0.8 ms a 32 px line)."""
    if workers > 1 and len(images) > 256:
        with get_context("fork").Pool(workers) as pool:
            return pool.map(normalize_zones, images, chunksize=256)
    return [normalize_zones(im) for im in images]
