"""Synthetic handwriting-like text lines: rendering, augmentation, splits, disk cache, batches.

Every line is a pure function of (seed, split, index): the font, size, letter and word
spacing, baseline wobble, slant, stroke width, elastic distortion, blur, background and
noise are drawn from ``numpy.random.default_rng((seed, split_id, index))``. Generation
therefore gives the same pixels whatever the number of worker processes, and the
result is cached on disk (``build/htr-cache/<key>/<split>.npz``, key = hash of the
parameters), so the second run starts at once.

Splits hold whole font families out: the test split uses only ``TEST_FONTS`` (never
seen in training) and text from a disjoint share of the fortunes and word list.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

try:  # run as a package (python -m htr / tests) or as a script
    from . import text as textgen
except ImportError:  # pragma: no cover
    import text as textgen  # type: ignore

#: The characters the synthetic data uses (every listed font has all of them).
CHARSET = string.ascii_letters + string.digits + " .,;:'\"!?-()&/"

#: Font family -> files (Debian packages named in docs/htr.md). Families, not files, are split.
FONT_FAMILIES: Dict[str, List[str]] = {
    "dkg": ["truetype/fifthhorseman/dkg.ttf", "truetype/fifthhorseman/dkgBd.ttf",
            "truetype/fifthhorseman/dkgIt.ttf", "truetype/fifthhorseman/dkgBI.ttf"],
    "bwht-build": ["opentype/bwht/BecauseWeBuild-Regular.otf"],
    "bwht-connect": ["opentype/bwht/BecauseWeConnect-Regular.otf"],
    "bwht-create": ["opentype/bwht/BecauseWeCreate-Regular.otf"],
    "bwht-learn": ["opentype/bwht/BecauseWeLearn-Regular.otf"],
    "bwht-mentor": ["opentype/bwht/BecauseWeMentor-Regular.otf"],
    "bwht-organize": ["opentype/bwht/BecauseWeOrganize-Regular.otf"],
    "comic-neue": ["opentype/comic-neue/ComicNeue-Regular.otf", "opentype/comic-neue/ComicNeue-Italic.otf",
                   "opentype/comic-neue/ComicNeue-Bold.otf", "opentype/comic-neue/ComicNeue-Light.otf"],
    "dancing-script": ["opentype/dancingscript/DancingScript-Regular.otf",
                       "opentype/dancingscript/DancingScript-Bold.otf"],
    "kaushan-script": ["opentype/kaushanscript/KaushanScript-Regular.otf"],
    "breip": ["truetype/breip/Breip.ttf"],
    "ecolier": ["truetype/ecolier-court/Ecolier-court.ttf"],
    "femkeklaver": ["truetype/femkeklaver/femkeklaver.ttf"],
    "humor-sans": ["truetype/humor-sans/Humor-Sans.ttf"],
    "kristi": ["truetype/kristi/Kristi.ttf"],
    "rufscript": ["truetype/rufscript/Rufscript010.ttf"],
    "sj-delphine": ["truetype/sjfonts/Delphine.ttf"],
    "sj-stevehand": ["truetype/sjfonts/SteveHand.ttf"],
    # more training families (handwriting, marker and brush styles; scripts/apt-packages.txt)
    "purisa": ["truetype/tlwg/Purisa.ttf", "truetype/tlwg/Purisa-Bold.ttf", "truetype/tlwg/Purisa-Oblique.ttf",
               "truetype/tlwg/Purisa-BoldOblique.ttf"],
    "lobster-two": ["opentype/lobstertwo/LobsterTwo-Regular.otf", "opentype/lobstertwo/LobsterTwo-Italic.otf",
                    "opentype/lobstertwo/LobsterTwo-Bold.otf", "opentype/lobstertwo/LobsterTwo-BoldItalic.otf"],
    "leckerli-one": ["truetype/leckerli-one/LeckerliOne-Regular.ttf"],
    "cabin-sketch": ["truetype/cabinsketch/CabinSketch-Regular.ttf", "truetype/cabinsketch/CabinSketch-Bold.ttf"],
    "fantasque": ["truetype/fantasque-sans/Normal/TTF/FantasqueSansMono-Regular.ttf",
                  "truetype/fantasque-sans/Normal/TTF/FantasqueSansMono-Italic.ttf",
                  "truetype/fantasque-sans/Normal/TTF/FantasqueSansMono-Bold.ttf"],
    "staypuft": ["truetype/staypuft/StayPuft.ttf"],
    "havana": ["opentype/havana/Havana-Regular.otf"],
    "domestic-manners": ["truetype/dustin/Domestic_Manners.ttf"],
    "junkyard": ["truetype/dustin/Junkyard.ttf"],
    "nanum-pen": ["truetype/nanum/NanumPen.ttf"],
    "nanum-brush": ["truetype/nanum/NanumBrush.ttf"],
    "nanum-barunpen": ["truetype/nanum/NanumBarunpenR.ttf", "truetype/nanum/NanumBarunpenB.ttf"],
    "seto": ["truetype/seto/setofont.ttf"],
    "kiloji": ["truetype/kiloji/kiloji.ttf", "truetype/kiloji/kiloji_b.ttf", "truetype/kiloji/kiloji_d.ttf",
               "truetype/kiloji/kiloji_p.ttf"],
    # more from fonts-dustin: three handwriting families (one condensed, one thin) and a sans
    "it-wasnt-me": ["truetype/dustin/It_wasn_t_me.ttf"],
    "el-abogado-loco": ["truetype/dustin/El_Abogado_Loco.ttf"],
    "penguin-attack": ["truetype/dustin/PenguinAttack.ttf"],
    "dustismo": ["truetype/dustin/Dustismo.ttf", "truetype/dustin/dustismo_bold.ttf",
                 "truetype/dustin/dustismo_italic.ttf", "truetype/dustin/dustismo_bold_italic.ttf"],
    # more training hands and letterforms: a pencil hand and a marker hand (the Latin glyphs of
    # two Japanese fonts), a calligraphic italic, comic capitals, a blend of 725 fonts, and a
    # font with heavy, bottom-weighted letters
    "klee": ["truetype/klee/KleeOne-Regular.ttf", "truetype/klee/KleeOne-SemiBold.ttf"],
    "yusei-magic": ["truetype/yusei-magic/YuseiMagic-Regular.ttf"],
    "z003": ["opentype/urw-base35/Z003-MediumItalic.otf"],
    "tomsontalks": ["truetype/tomsontalks/TomsonTalks.ttf"],
    "averia": ["truetype/averia-gwf/AveriaGWF-Regular.ttf", "truetype/averia-gwf/AveriaGWF-Italic.ttf",
               "truetype/averia-gwf/AveriaGWF-Light.ttf", "truetype/averia-gwf/AveriaGWF-Bold.ttf"],
    "opendyslexic": ["opentype/opendyslexic/OpenDyslexic-Regular.otf", "opentype/opendyslexic/OpenDyslexic-Italic.otf",
                     "opentype/opendyslexic/OpenDyslexic-Bold.otf", "opentype/opendyslexic/OpenDyslexicAlta-Regular.otf"],
    # Hershey stroke fonts (hershey-fonts-data), drawn as pen strokes of random width
    "hershey-script": ["../hershey-fonts/scripts.jhf", "../hershey-fonts/scriptc.jhf"],
    "hershey-cursive": ["../hershey-fonts/cursive.jhf"],
    "hershey-sans": ["../hershey-fonts/futural.jhf", "../hershey-fonts/futuram.jhf"],
    "hershey-roman": ["../hershey-fonts/rowmans.jhf", "../hershey-fonts/timesi.jhf"],
}
#: Training-only vertical zone warp (see _zone_warp).
ZONE_WARP = True
#: Characters a font file lacks, and what its lines say instead (the label follows the pixels).
MISSING_CHARS: Dict[str, Dict[str, str]] = {"It_wasn_t_me.ttf": {"&": "and"},
                                             "TomsonTalks.ttf": {"&": "and", '"': "'", "(": "", ")": ""}}
#: Families whose lower-case letters are capitals (the text is upper-cased for them).
CAPS_FAMILIES = frozenset({"bwht-build", "bwht-connect", "bwht-create", "bwht-learn", "bwht-mentor",
                           "bwht-organize", "humor-sans", "tomsontalks"})
#: Families held out for the test split.
TEST_FONTS = ("humor-sans", "breip", "sj-stevehand")
FONT_ROOT = "/usr/share/fonts"
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
CACHE_VERSION = 10


def font_files(families: Sequence[str], root: str = FONT_ROOT) -> List[str]:
    """The installed files of these families (missing ones are skipped)."""
    out = []
    for fam in families:
        for rel in FONT_FAMILIES[fam]:
            path = os.path.join(root, rel)
            if os.path.exists(path):
                out.append(path)
    return out


def split_fonts(split: str, test_fonts: Sequence[str] = TEST_FONTS) -> List[Tuple[str, List[str]]]:
    """(family, files) of the installed families of a split: the test fonts, or all others."""
    fams = [f for f in FONT_FAMILIES if (f in test_fonts) == (split == "test")]
    out = [(f, font_files([f])) for f in fams]
    out = [(f, files) for f, files in out if files]
    if not out:
        raise FileNotFoundError(
            f"no font of {fams} under {FONT_ROOT}: install the Debian font packages (scripts/setup.sh)"
        )
    return out


@dataclass
class GenConfig:
    """What determines the generated data (all of it goes into the cache key)."""

    seed: int = 0
    height: int = 32
    n_train: int = 12000
    n_val: int = 300
    n_test: int = 600
    min_chars: int = 6
    max_chars: int = 40
    test_fonts: Tuple[str, ...] = TEST_FONTS
    augment: bool = True
    version: int = CACHE_VERSION

    def key(self) -> str:
        # the installed font files are part of the key: installing a font package re-renders
        d = dict(asdict(self), fonts=[f for fam in FONT_FAMILIES for f in font_files([fam])])
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:12]

    def count(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[split]


# ---- rendering ------------------------------------------------------------------------------

_FONT_CACHE: Dict[Tuple[str, int], object] = {}


class HersheyFont:
    """A Hershey stroke font (``.jhf``, Debian's hershey-fonts-data) drawn as pen strokes.

    Each line of the file is one glyph, ASCII 32 onwards: a 5-character number, a 3-character
    vertex count, the left and right bearings, then coordinate pairs (``ord(c) - ord('R')``);
    `` R`` lifts the pen. ``getlength`` and ``draw`` mimic the PIL font calls used here."""

    _GLYPHS: Dict[str, Dict[str, tuple]] = {}

    def __init__(self, path: str, size: int):
        if path not in self._GLYPHS:
            glyphs = {}
            with open(path, encoding="latin-1") as f:
                for k, line in enumerate(f):
                    line = line.rstrip("\n")
                    body = line[8:]
                    if len(body) < 2:
                        continue
                    left, right = ord(body[0]) - 82, ord(body[1]) - 82
                    strokes, cur = [], []
                    for j in range(2, len(body) - 1, 2):
                        pair = body[j: j + 2]
                        if pair == " R":
                            if cur:
                                strokes.append(cur)
                            cur = []
                        else:
                            cur.append((ord(pair[0]) - 82, ord(pair[1]) - 82))
                    if cur:
                        strokes.append(cur)
                    glyphs[chr(32 + k)] = (left, right, strokes)
            self._GLYPHS[path] = glyphs
        self.glyphs = self._GLYPHS[path]
        self.size = size
        self.scale = size / 30.0  # capitals ~21 units high: about a TrueType capital at this size

    def getlength(self, text: str) -> float:
        return sum((self.glyphs[c][1] - self.glyphs[c][0]) * self.scale for c in text if c in self.glyphs)

    def draw(self, draw: ImageDraw.ImageDraw, xy, text: str, stroke: int) -> None:
        x, y = xy
        width = max(int(round(self.size * 0.06)) + 2 * stroke, 1)
        base = y + 12 * self.scale  # the glyphs' y = 0 is mid-height; put the capitals' top near y
        for c in text:
            if c not in self.glyphs:
                continue
            left, right, strokes = self.glyphs[c]
            for st in strokes:
                pts = [(x + (px - left) * self.scale, base + py * self.scale) for px, py in st]
                if len(pts) == 1:
                    pts = pts * 2
                draw.line(pts, fill=255, width=width, joint="curve")
            x += (right - left) * self.scale


def _font(path: str, size: int):
    key = (path, size)
    if key not in _FONT_CACHE:
        _FONT_CACHE[key] = HersheyFont(path, size) if path.endswith(".jhf") else ImageFont.truetype(path, size)
    return _FONT_CACHE[key]


def _text(draw: ImageDraw.ImageDraw, xy, text: str, font, stroke: int) -> None:
    if isinstance(font, HersheyFont):
        font.draw(draw, xy, text, stroke)
    else:
        draw.text(xy, text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)


def render_line(text: str, font_path: str, rng: np.random.Generator, height: int = 32, augment: bool = True,
                extra: Optional[np.random.Generator] = None) -> np.ndarray:
    """One text line as a uint8 (height, width) image, dark ink on light paper.

    ``extra``: a second generator that turns on the training-only augmentation (each letter
    its own size, thinned strokes, a wider range of horizontal stretch). Its draws come from
    their own stream, so the val and test lines (rendered without it) are the same pixels
    as before it existed, and a change to the training augmentation never changes them."""
    size = int(rng.integers(38, 56))
    font = _font(font_path, size)
    stroke = int(rng.choice([0, 0, 0, 1, 1, 2])) if augment else 0
    extra = extra if augment else None
    thin = extra is not None and stroke == 0 and extra.random() < 0.4  # erode the strokes
    letter_size = extra is not None and extra.random() < 0.7
    char_gap = float(rng.uniform(-1.5, 4.0)) if augment else 0.0
    word_gap = float(rng.uniform(0.2, 0.6)) * size if augment else 0.3 * size
    wobble = float(rng.uniform(0, 3.0)) if augment else 0.0
    per_char = augment and rng.random() < 0.5
    pad = size
    canvas_w = int(sum(font.getlength(c) for c in text) * (1.2 if letter_size else 1.0)
                   + len(text) * (abs(char_gap) + stroke * 2 + 2) + word_gap * (text.count(" ") + 1) + 2 * pad)
    img = Image.new("L", (max(canvas_w, 8), int(size * 2.2)), 0)
    draw = ImageDraw.Draw(img)
    x, y0 = float(pad), size * 0.45
    for wi, word in enumerate(text.split(" ")):
        if wi:
            x += word_gap
        y = y0 + float(rng.normal(0, wobble))
        if per_char:
            for c in word:
                cf, dy = font, float(rng.normal(0, wobble / 3))
                if letter_size:  # glyph-level variation: each letter its own size
                    cf = _font(font_path, int(round(size * float(extra.uniform(0.85, 1.15)))))
                    dy += (size - cf.size) * 0.8
                _text(draw, (x, y + dy), c, cf, stroke)
                x += cf.getlength(c) + char_gap + stroke
        else:
            _text(draw, (x, y), word, font, stroke)
            x += font.getlength(word) + stroke * 2
    if thin:
        img = img.filter(ImageFilter.MinFilter(3))
    if augment:  # slant: shear around the vertical centre
        shear = float(rng.uniform(-0.35, 0.35))
        w, h = img.size
        img = img.transform((w + int(abs(shear) * h) + 2, h), Image.AFFINE,
                            (1, shear, -max(shear, 0) * h, 0, 1, 0), resample=Image.BILINEAR)
    arr = np.asarray(img)
    ys, xs = np.nonzero(arr > 40)
    if len(xs) == 0:
        return np.full((height, height), 255, np.uint8)
    m = int(size * 0.12) + 2
    arr = arr[max(ys.min() - m, 0): ys.max() + m + 1, max(xs.min() - m, 0): xs.max() + m + 1]
    h, w = arr.shape
    stretch = float(rng.uniform(0.8, 1.2)) if augment else 1.0
    if extra is not None:
        stretch *= float(extra.uniform(0.85, 1.05))
    new_w = max(int(round(w * height / h * stretch)), 8)
    ink = np.asarray(Image.fromarray(arr).resize((new_w, height), Image.BILINEAR), np.float32) / 255.0
    if extra is not None and ZONE_WARP and extra.random() < 0.6:
        ink = _zone_warp(ink, float(extra.uniform(-0.5, 0.5)), float(extra.uniform(0.35, 0.65)))
    if augment:
        scale = height / 32.0  # pixel-sized degradations grow with the line height (32 px: as before)
        ink = _elastic(ink, rng, scale)
        if rng.random() < 0.5:
            radius = float(rng.uniform(0.3, 1.0)) * scale
            ink = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255.0
        paper = _paper(ink.shape, rng, scale)
        ink_level = float(rng.uniform(0, 90))
        out = paper * (1 - ink) + ink_level * ink
        out += rng.normal(0, float(rng.uniform(0, 12)), ink.shape)
    else:
        out = 255.0 * (1 - ink)
    return np.clip(out, 0, 255).astype(np.uint8)


def _zone_warp(ink: np.ndarray, a: float, c: float) -> np.ndarray:
    """Resample the rows through a smooth monotone map that widens (a > 0) or narrows (a < 0)
    the band around the height fraction c: a different x-height to ascender ratio."""
    h = ink.shape[0]
    t = (np.arange(h) + 0.5) / h
    speed = 1.0 - a * np.cos(2 * np.pi * (t - c))  # source rows per output row: < 1 magnifies
    src = np.clip((np.cumsum(speed) - 0.5 * speed) / speed.sum() * h - 0.5, 0, h - 1)  # a = 0: the rows as they are
    y0 = np.floor(src).astype(int)
    y1 = np.minimum(y0 + 1, h - 1)
    f = (src - y0)[:, None].astype(np.float32)
    return ink[y0] * (1 - f) + ink[y1] * f


def _smooth_field(shape, rng, cells_x: int, cells_y: int, amp: float) -> np.ndarray:
    coarse = rng.normal(0, amp, (cells_y, cells_x)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((shape[1], shape[0]), Image.BICUBIC))


def _elastic(ink: np.ndarray, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Elastic distortion: a smooth random displacement field, bilinear resampling."""
    h, w = ink.shape
    amp = float(rng.uniform(0.3, 1.6)) * scale  # displacement in pixels of a 32 px line, scaled
    cx = max(w // int(round(24 * scale)), 2)
    dx = _smooth_field(ink.shape, rng, cx, 3, amp)
    dy = _smooth_field(ink.shape, rng, cx, 3, amp * 0.7)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sx = np.clip(xx + dx, 0, w - 1)
    sy = np.clip(yy + dy, 0, h - 1)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = sx - x0, sy - y0
    return (ink[y0, x0] * (1 - fx) * (1 - fy) + ink[y0, x1] * fx * (1 - fy)
            + ink[y1, x0] * (1 - fx) * fy + ink[y1, x1] * fx * fy)


def _paper(shape, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """A light background: a level, a gentle gradient and low-frequency stains."""
    h, w = shape
    level = float(rng.uniform(170, 255))
    grad = np.linspace(0, float(rng.uniform(-30, 30)), w, dtype=np.float32)[None, :]
    stains = _smooth_field(shape, rng, max(w // int(round(40 * scale)), 2), 2, float(rng.uniform(0, 12)))
    return np.clip(level + grad + stains, 100, 255)


# ---- generation and cache -------------------------------------------------------------------


def text_for_font(line: str, family: str, font_path: str) -> str:
    """What a line says when drawn in this font: upper case for the capitals-only families,
    and each character the font lacks replaced (the label follows the pixels)."""
    missing = MISSING_CHARS.get(os.path.basename(font_path), {})
    for c, sub in missing.items():
        line = line.replace(c, sub)
    if missing:  # a dropped character can leave a double or an edge space
        line = " ".join(line.split())
    if family in CAPS_FAMILIES:  # after the replacements: their words are drawn in capitals too
        line = line.upper()
    return line


def _render_chunk(job):
    cfg_dict, split, start, lines, fonts = job
    cfg = GenConfig(**cfg_dict)
    out = []
    for k, line in enumerate(lines):
        idx = start + k
        rng = np.random.default_rng((cfg.seed, SPLIT_IDS[split], idx))
        family, files = fonts[int(rng.integers(len(fonts)))]
        font = files[int(rng.integers(len(files)))]
        line = text_for_font(line, family, font)
        extra = np.random.default_rng((cfg.seed, SPLIT_IDS[split], idx, 1)) if split == "train" else None
        out.append((render_line(line, font, rng, cfg.height, cfg.augment, extra), os.path.basename(font), line))
    return out


def generate_split(cfg: GenConfig, split: str, workers: int = 1, chunk: int = 256) -> dict:
    """Render one split; returns {'images': [uint8 (H, W)], 'texts': [...], 'fonts': [...]}."""
    n = cfg.count(split)
    part = {"train": (-1, 10), "val": (0, 10), "test": (0, 10)}[split]
    lines = textgen.make_lines(n, CHARSET, seed=cfg.seed * 1000 + SPLIT_IDS[split], min_chars=cfg.min_chars,
                               max_chars=cfg.max_chars, part=part)
    fonts = split_fonts(split, cfg.test_fonts)
    jobs = [(asdict(cfg), split, s, lines[s: s + chunk], fonts) for s in range(0, n, chunk)]
    if workers > 1 and len(jobs) > 1:
        with get_context("fork").Pool(workers) as pool:
            parts = pool.map(_render_chunk, jobs)
    else:
        parts = [_render_chunk(j) for j in jobs]
    items = [it for p in parts for it in p]
    return {"images": [it[0] for it in items], "texts": [it[2] for it in items], "fonts": [it[1] for it in items]}


def _save(path: str, data: dict) -> None:
    widths = np.array([im.shape[1] for im in data["images"]], np.int64)
    pixels = np.concatenate(data["images"], axis=1) if data["images"] else np.zeros((1, 0), np.uint8)
    tmp = path + ".tmp.npz"
    np.savez(tmp, pixels=pixels, widths=widths, texts=np.array(data["texts"], dtype=object).astype(str),
             fonts=np.array(data["fonts"]).astype(str))
    os.replace(tmp, path)


def _load(path: str) -> dict:
    z = np.load(path)
    offsets = np.concatenate([[0], np.cumsum(z["widths"])])
    pixels = z["pixels"]
    images = [pixels[:, offsets[i]: offsets[i + 1]] for i in range(len(z["widths"]))]
    return {"images": images, "texts": [str(t) for t in z["texts"]], "fonts": [str(f) for f in z["fonts"]]}


def default_cache_dir() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("HTR_CACHE", os.path.join(here, "..", "..", "build", "htr-cache"))


def load_or_generate(cfg: GenConfig, split: str, cache_dir: Optional[str] = None, workers: int = 1, log=print) -> dict:
    """A split from the disk cache, generating (and caching) it first if needed."""
    cache_dir = os.path.abspath(cache_dir or default_cache_dir())
    folder = os.path.join(cache_dir, cfg.key())
    path = os.path.join(folder, f"{split}.npz")
    if os.path.exists(path):
        return _load(path)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(asdict(cfg), f, indent=1)
    if log:
        log(f"generating {cfg.count(split)} {split} lines into {path} ({workers} workers)")
    data = generate_split(cfg, split, workers)
    _save(path, data)
    return data


# ---- batches --------------------------------------------------------------------------------


@dataclass
class Batch:
    images: "torch.Tensor"  # noqa: F821  (N, 1, H, W) float, ink ~ 1, paper ~ 0
    widths: "torch.Tensor"  # noqa: F821  (N,) real widths before padding
    targets: "torch.Tensor"  # noqa: F821  (N, S) padded with 0
    target_lengths: "torch.Tensor"  # noqa: F821
    texts: List[str] = field(default_factory=list)


def collate(images: Sequence[np.ndarray], texts: Sequence[str], tokenizer, min_width: int = 0, pad_to: int = 8) -> Batch:
    import torch

    height = images[0].shape[0]
    widths = [im.shape[1] for im in images]
    W = max(max(widths), min_width)
    W = (W + pad_to - 1) // pad_to * pad_to
    x = torch.zeros(len(images), 1, height, W)
    for i, im in enumerate(images):
        x[i, 0, :, : im.shape[1]] = 1.0 - torch.tensor(im, dtype=torch.float32) / 255.0
    enc = [tokenizer.encode(t) for t in texts]
    S = max(max((len(e) for e in enc), default=1), 1)
    targets = torch.zeros(len(images), S, dtype=torch.long)
    for i, e in enumerate(enc):
        targets[i, : len(e)] = torch.tensor(e, dtype=torch.long)
    return Batch(x, torch.tensor(widths), targets, torch.tensor([len(e) for e in enc]), list(texts))


def batch_order(widths: Sequence[int], batch_size: int, rng: np.random.Generator, bucket: int = 32) -> List[List[int]]:
    """Shuffled batches of lines of similar width (less padding): shuffle, sort within
    groups of ``bucket`` batches, cut, shuffle the batches."""
    idx = rng.permutation(len(widths))
    group = batch_size * bucket
    batches = []
    for s in range(0, len(idx), group):
        g = sorted(idx[s: s + group].tolist(), key=lambda i: widths[i])
        batches += [g[k: k + batch_size] for k in range(0, len(g), batch_size)]
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def iterate_batches(data: dict, tokenizer, batch_size: int, rng: np.random.Generator, min_width: int = 0) -> Iterator[Batch]:
    widths = [im.shape[1] for im in data["images"]]
    for b in batch_order(widths, batch_size, rng):
        yield collate([data["images"][i] for i in b], [data["texts"][i] for i in b], tokenizer, min_width)
