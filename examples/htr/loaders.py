"""Real-data loaders: IAM lines and "a folder of images plus a TSV of transcriptions".

Both return the same dict as the synthetic generator: ``{'images': [uint8 (H, W)],
'texts': [str], 'ids': [str]}``, images scaled to the model height, dark ink on light paper.

IAM (https://fki.tic.heia-fr.ch/databases/iam-handwriting-database), ``lines.txt``::

    # comment lines start with '#'
    a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell|from

fields: line id, segmentation result (ok/err), graylevel, number of components,
bounding box x y w h, transcription with '|' between words. The image of line
``a01-000u-00`` is ``lines/a01/a01-000u/a01-000u-00.png`` under the IAM root.

TSV: one ``relative/path/to/image.png<TAB>transcription`` per line; empty lines and lines
starting with '#' are skipped; paths are relative to the TSV's folder.
"""

from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional

import numpy as np
from PIL import Image


def load_image(path: str, height: int) -> np.ndarray:
    """A grayscale line image scaled to ``height`` rows, aspect ratio kept."""
    with Image.open(path) as im:
        im = im.convert("L")
        w, h = im.size
        new_w = max(int(round(w * height / h)), 1)
        return np.asarray(im.resize((new_w, height), Image.BILINEAR), dtype=np.uint8)


def parse_iam_lines(lines_txt: str, only_ok: bool = False) -> List[Dict[str, str]]:
    """The records of an IAM lines.txt: dicts with id, status and text."""
    out = []
    with open(lines_txt, encoding="utf-8") as f:
        for raw in f:
            raw = raw.rstrip("\n")
            if not raw.strip() or raw.startswith("#"):
                continue
            parts = raw.split(" ")
            if len(parts) < 9:
                raise ValueError(f"{lines_txt}: malformed line: {raw!r}")
            status = parts[1]
            if only_ok and status != "ok":
                continue
            text = " ".join(parts[8:]).replace("|", " ")
            out.append({"id": parts[0], "status": status, "text": text})
    return out


def iam_image_path(root: str, line_id: str) -> str:
    form = line_id.split("-")
    sub, page = form[0], f"{form[0]}-{form[1]}"
    for cand in (os.path.join(root, "lines", sub, page, f"{line_id}.png"), os.path.join(root, sub, page, f"{line_id}.png")):
        if os.path.exists(cand):
            return cand
    return os.path.join(root, "lines", sub, page, f"{line_id}.png")


def load_iam(root: str, height: int = 32, ids: Optional[Iterable[str]] = None, lines_txt: Optional[str] = None,
             only_ok: bool = False) -> dict:
    """IAM lines under ``root`` (lines.txt in root or root/ascii), optionally only the given line ids."""
    if lines_txt is None:
        for cand in (os.path.join(root, "lines.txt"), os.path.join(root, "ascii", "lines.txt")):
            if os.path.exists(cand):
                lines_txt = cand
                break
        else:
            raise FileNotFoundError(f"no lines.txt in {root} or {root}/ascii")
    wanted = set(ids) if ids is not None else None
    data = {"images": [], "texts": [], "ids": []}
    for rec in parse_iam_lines(lines_txt, only_ok):
        if wanted is not None and rec["id"] not in wanted:
            continue
        data["images"].append(load_image(iam_image_path(root, rec["id"]), height))
        data["texts"].append(rec["text"])
        data["ids"].append(rec["id"])
    return data


def split_iam_ids(ids: List[str], seed: int = 0, val: float = 0.05, test: float = 0.05) -> Dict[str, List[str]]:
    """Split line ids by form (page), so no page is in two splits; deterministic in seed."""
    forms = sorted({"-".join(i.split("-")[:2]) for i in ids})
    rng = np.random.default_rng(seed)
    rng.shuffle(forms)
    n_test, n_val = max(int(len(forms) * test), 1), max(int(len(forms) * val), 1)
    test_f, val_f = set(forms[:n_test]), set(forms[n_test: n_test + n_val])
    out = {"train": [], "val": [], "test": []}
    for i in ids:
        f = "-".join(i.split("-")[:2])
        out["test" if f in test_f else "val" if f in val_f else "train"].append(i)
    return out


def load_tsv(tsv_path: str, height: int = 32) -> dict:
    """Images listed in a TSV (``path<TAB>text``), paths relative to the TSV's folder."""
    folder = os.path.dirname(os.path.abspath(tsv_path))
    data = {"images": [], "texts": [], "ids": []}
    with open(tsv_path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            raw = raw.rstrip("\n")
            if not raw.strip() or raw.startswith("#"):
                continue
            if "\t" not in raw:
                raise ValueError(f"{tsv_path}:{n}: expected 'image<TAB>text', got {raw!r}")
            rel, text = raw.split("\t", 1)
            data["images"].append(load_image(os.path.join(folder, rel), height))
            data["texts"].append(text)
            data["ids"].append(rel)
    return data
