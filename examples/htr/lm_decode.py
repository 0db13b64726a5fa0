"""Decoding for the trainer: greedy, beam search, and beam search with a character n-gram LM.

The LM is estimated from the training split's transcriptions only (kneser_ney.py), after
dropping every training line that contains a validation or test line verbatim, so that no
held-out line is in the LM's text (``build_lm`` checks this and reports it). lm_weight and
token_score are chosen on the validation split from a small grid (``tune``); the test split
is decoded once with the choice. See docs/htr.md and docs/decoding.md.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch

import torch_ctc

from . import data as synth
from . import kneser_ney

#: The grid that ``tune`` searches on the validation split.
LM_WEIGHTS = (0.25, 0.5, 0.75, 1.0)
TOKEN_SCORES = (0.0, 1.0, 2.0, 3.0)


@dataclass
class LmReport:
    """What went into the LM, for the log and results.json."""

    path: str
    order: int
    lines: int  # training lines in the LM text
    chars: int
    dropped: int  # training lines left out because they contain a held-out line
    held_out_in_text: int  # held-out lines still found in the LM text (0, checked)


@dataclass
class Emissions:
    """The model's log-probabilities of a split, padded: (T, N, C) on the CPU, with lengths."""

    log_probs: torch.Tensor
    lengths: torch.Tensor
    texts: List[str] = field(default_factory=list)


def lm_tokens(tok) -> List[str]:
    """The LM word of each token id: the blank (never scored), then one word per character."""
    return ["<blank>"] + [kneser_ney.char_sentence(tok.id_to_char[i])[0] for i in range(1, len(tok))]


def held_out_in(lines: Sequence[str], held_out: Sequence[str]) -> List[str]:
    """The held-out lines that occur verbatim inside one of ``lines``."""
    text = "\n".join(lines)
    return [h for h in held_out if h in text]


def build_lm(train_texts: Sequence[str], held_out: Sequence[str], tok, order: int, path: str
             ) -> Tuple[torch_ctc.NGramLM, LmReport]:
    """A character Kneser-Ney LM of ``order`` from the training lines that contain no held-out
    line, written to ``path`` (ARPA) and loaded with torch_ctc.NGramLM."""
    held = set(held_out)
    kept = [t for t in train_texts if not any(h in t for h in held)]
    leaked = held_out_in(kept, held_out)
    if leaked:  # cannot happen after the filter; a guard against editing it wrongly
        raise AssertionError(f"held-out lines in the LM text: {leaked[:3]}")
    vocabulary = lm_tokens(tok)[1:]
    model = kneser_ney.KneserNey((kneser_ney.char_sentence(t) for t in kept), order, vocabulary)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    model.write_arpa(path)
    lm = torch_ctc.NGramLM.from_arpa(path, lm_tokens(tok), blank=tok.BLANK)
    return lm, LmReport(path, order, len(kept), sum(map(len, kept)), len(train_texts) - len(kept), len(leaked))


@torch.no_grad()
def emissions(model, split: dict, tok, device, min_width: int = 0, batch_size: int = 64) -> Emissions:
    """Run the model over a split once; every decoder then works from these."""
    was_training = model.training
    model.eval()
    n = len(split["texts"])
    per_line: List[torch.Tensor] = [torch.empty(0)] * n
    order = sorted(range(n), key=lambda i: split["images"][i].shape[1])
    for s in range(0, n, batch_size):
        idx = order[s: s + batch_size]
        b = synth.collate([split["images"][i] for i in idx], [split["texts"][i] for i in idx], tok, min_width)
        lp = model(b.images.to(device)).float().cpu()
        frames = model.frames(b.widths).clamp(max=lp.shape[0])
        for k, i in enumerate(idx):
            per_line[i] = lp[: int(frames[k]), k]
    model.train(was_training)
    lengths = torch.tensor([e.shape[0] for e in per_line])
    padded = torch.nn.utils.rnn.pad_sequence(per_line) if n else torch.empty(0, 0, len(tok))
    return Emissions(padded, lengths, list(split["texts"]))


def greedy(em: Emissions, tok) -> List[str]:
    d = torch_ctc.greedy_decode(em.log_probs, em.lengths, tok.BLANK)
    return [tok.decode(d.tokens[b, : int(d.lengths[b])].tolist()) for b in range(d.tokens.shape[0])]


def beam(em: Emissions, tok, beam_size: int = 16, lm=None, lm_weight: float = 0.0, token_score: float = 0.0
         ) -> List[str]:
    hyps = torch_ctc.beam_search(em.log_probs, em.lengths, beam_size=beam_size, blank=tok.BLANK, lm=lm,
                                 lm_weight=lm_weight, token_score=token_score)
    return [tok.decode(h[0].tokens) if h else "" for h in hyps]


def tune(em: Emissions, tok, lm, error_rate, beam_size: int = 16, weights: Sequence[float] = LM_WEIGHTS,
         token_scores: Sequence[float] = TOKEN_SCORES) -> Tuple[Tuple[float, float], Dict[Tuple[float, float], float]]:
    """The (lm_weight, token_score) of the grid with the lowest ``error_rate(refs, preds)`` on
    ``em`` (the validation split), and the whole table. Ties keep the earlier grid point."""
    table = {}
    for w, s in itertools.product(weights, token_scores):
        table[(w, s)] = error_rate(em.texts, beam(em, tok, beam_size, lm, w, s))
    best = min(table, key=table.get)
    return best, table


@dataclass
class Decoded:
    """Each decoder's (CER, WER) on val and test, its test predictions, and the LM's choices."""

    val: Dict[str, Tuple[float, float]]
    test: Dict[str, Tuple[float, float]]
    test_preds: Dict[str, List[str]]
    lm: "LmReport | None" = None
    lm_weight: float = 0.0
    token_score: float = 0.0
    grid: Dict[Tuple[float, float], float] = field(default_factory=dict)
    seconds: float = 0.0  # the whole of decode_splits: emissions, LM estimation, tuning, decoding


def decode_splits(model, splits: dict, tok, device, error_rates, beam_size: int, lm_order: int, lm_path: str,
                  min_width: int = 0) -> Decoded:
    """Greedy, beam and (with ``lm_order`` > 0) beam+LM decoding of val and test.
    ``error_rates(refs, preds)`` gives (CER, WER); the LM's weights are tuned on val's CER."""
    em = {s: emissions(model, splits[s], tok, device, min_width) for s in ("val", "test")}
    preds = {s: {"greedy": greedy(em[s], tok), "beam": beam(em[s], tok, beam_size)} for s in em}
    out = Decoded({}, {}, {})
    if lm_order > 0:
        lm, out.lm = build_lm(splits["train"]["texts"], splits["val"]["texts"] + splits["test"]["texts"], tok,
                              lm_order, lm_path)
        (out.lm_weight, out.token_score), out.grid = tune(em["val"], tok, lm, lambda r, p: error_rates(r, p)[0],
                                                          beam_size)
        for s in em:
            preds[s]["beam+lm"] = beam(em[s], tok, beam_size, lm, out.lm_weight, out.token_score)
    out.val = {k: error_rates(em["val"].texts, p) for k, p in preds["val"].items()}
    out.test = {k: error_rates(em["test"].texts, p) for k, p in preds["test"].items()}
    out.test_preds = preds["test"]
    return out
