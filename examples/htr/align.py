"""Character spans of text lines: forced alignment of the ground truth with the model's
output (torch_ctc.forced_align, then merge_tokens), in image pixels. The trainer draws
them over a few test lines (plots.plot_alignments); docs/alignment.md walks through it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
import torch

import torch_ctc

from . import data as synth


@dataclass
class CharSpan:
    char: str
    x0: float  # pixels, left edge of the span's first frame
    x1: float  # pixels, right edge of its last frame
    confidence: float  # mean probability of the character over its frames


def line_spans(model, images: Sequence[np.ndarray], texts: Sequence[str], tok, device, min_width: int = 0
               ) -> List[List[CharSpan]]:
    """Per line, one span per character of its text (lines the model's frames cannot
    hold, or with no characters, get an empty list)."""
    b = synth.collate(images, texts, tok, min_width)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        log_probs = model(b.images.to(device)).float().log_softmax(-1).cpu()
    model.train(was_training)
    frames = model.frames(b.widths).clamp(max=log_probs.shape[0])
    px_per_frame = b.images.shape[-1] / log_probs.shape[0]
    out: List[List[CharSpan]] = []
    for n in range(len(images)):
        length = int(b.target_lengths[n])
        target = b.targets[n, :length]
        repeats = int((target[1:] == target[:-1]).sum()) if length > 1 else 0
        if length == 0 or length + repeats > int(frames[n]):
            out.append([])
            continue
        alignment, scores = torch_ctc.forced_align(log_probs[:, n], target, int(frames[n]), length, tok.BLANK)
        spans = torch_ctc.merge_tokens(alignment, scores.exp(), blank=tok.BLANK)
        out.append([CharSpan(tok.decode([s.token]), s.start * px_per_frame, s.end * px_per_frame, s.score)
                    for s in spans])
    return out
