"""Independent reference implementations and problem generators for the tests.

Nothing in here uses torch_ctc.  The brute-force reference enumerates every
one of the C**T frame-level paths, collapses repeats, removes blanks and
log-sum-exps the scores of the paths that produce the target.  It is written
with differentiable torch ops in float64, so ``torch.autograd.grad`` of it is
the *exact* derivative of the CTC negative log-likelihood with respect to the
(possibly unnormalised) log-probabilities.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

MAX_BRUTE_FORCE_T = 5


# --------------------------------------------------------------------------
# Brute force by path enumeration
# --------------------------------------------------------------------------
def collapse(path: Sequence[int], blank: int) -> Tuple[int, ...]:
    """CTC's many-to-one map B: merge repeated labels, then drop blanks."""
    out: List[int] = []
    prev = None
    for p in path:
        if p != prev and p != blank:
            out.append(int(p))
        prev = p
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _paths_by_label(T: int, C: int, blank: int):
    """All C**T paths as a (P, T) long tensor and {collapsed label seq: path indices}."""
    if T > MAX_BRUTE_FORCE_T:
        raise ValueError(f"brute force limited to T <= {MAX_BRUTE_FORCE_T}, got {T}")
    paths = list(itertools.product(range(C), repeat=T))
    groups: Dict[Tuple[int, ...], List[int]] = {}
    for i, p in enumerate(paths):
        groups.setdefault(collapse(p, blank), []).append(i)
    paths_t = torch.tensor(paths, dtype=torch.long).reshape(len(paths), T)
    groups_t = {k: torch.tensor(v, dtype=torch.long) for k, v in groups.items()}
    return paths_t, groups_t


def brute_force_nll(log_probs: torch.Tensor, target: Sequence[int], blank: int = 0) -> torch.Tensor:
    """-log sum over all paths pi with B(pi) == target of prod_t exp(log_probs[t, pi_t]).

    log_probs: (T, C) tensor (any float dtype, computed in float64), only the
    frames of this sample (already cut to its input length). Differentiable.
    Returns a 0-d float64 tensor (+inf when no path produces the target).
    """
    lp = log_probs.to(torch.float64)
    assert lp.dim() == 2
    T, C = lp.shape
    target = tuple(int(v) for v in target)
    if T == 0:
        val = 0.0 if len(target) == 0 else math.inf
        return lp.sum() * 0.0 + val
    paths, groups = _paths_by_label(T, C, blank)
    idx = groups.get(target)
    if idx is None:
        return lp.sum() * 0.0 + math.inf
    sel = paths[idx]  # (P', T)
    scores = lp[torch.arange(T).unsqueeze(0), sel].sum(-1)  # (P',)
    return -torch.logsumexp(scores, dim=0)


def brute_force_batch(log_probs, targets_list, input_lengths, blank=0, batch_first=False):
    """Per-sample brute-force nll for a batched (T, N, C) (or (N, T, C)) tensor -> (N,) float64."""
    lp = log_probs.transpose(0, 1) if not batch_first else log_probs
    out = []
    for b, tgt in enumerate(targets_list):
        out.append(brute_force_nll(lp[b, : int(input_lengths[b])], tgt, blank))
    return torch.stack(out)


# --------------------------------------------------------------------------
# Simple python DP (alpha recursion, float64), for sizes beyond brute force.
# --------------------------------------------------------------------------
def dp_nll(log_probs: torch.Tensor, target: Sequence[int], blank: int = 0) -> float:
    """Plain python/float64 forward recursion (design.md section 1). (T, C) -> float."""
    lp = log_probs.detach().to(torch.float64).tolist()
    T = len(lp)
    L = len(target)
    if T == 0:
        return 0.0 if L == 0 else math.inf
    ext = [blank]
    for v in target:
        ext += [int(v), blank]
    S = len(ext)
    ninf = -math.inf

    def lse(*xs):
        m = max(xs)
        if m == ninf:
            return ninf
        return m + math.log(sum(math.exp(x - m) for x in xs))

    alpha = [ninf] * S
    alpha[0] = lp[0][blank]
    if S > 1:
        alpha[1] = lp[0][ext[1]]
    for t in range(1, T):
        new = [ninf] * S
        for s in range(S):
            terms = [alpha[s]]
            if s >= 1:
                terms.append(alpha[s - 1])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(alpha[s - 2])
            new[s] = lp[t][ext[s]] + lse(*terms)
        alpha = new
    if S == 1:
        return -alpha[0]
    return -lse(alpha[S - 1], alpha[S - 2])


# --------------------------------------------------------------------------
# numpy alpha-beta with posteriors (float64): loss and exact gradient for any
# size, written from design.md section 1 without torch's or torch_ctc's code.
# --------------------------------------------------------------------------
def _extended_labels(target: Sequence[int], blank: int) -> List[int]:
    ext = [blank]
    for v in target:
        ext += [int(v), blank]
    return ext


def _logaddexp3(a, b, c):
    return np.logaddexp(np.logaddexp(a, b), c)


def _shift(row, by: int):
    """row[s - by] (by > 0) or row[s + |by|] (by < 0), -inf where out of range."""
    out = np.full_like(row, -np.inf)
    if by > 0:
        out[by:] = row[:-by]
    else:
        out[:by] = row[-by:]
    return out


def alpha_beta_nll_grad(log_probs, target: Sequence[int], blank: int = 0):
    """(nll, d nll / d log_probs) of one sample, in float64 numpy.

    log_probs: (T, C) array-like, only this sample's frames (normalised or not).
    The gradient is -sum of the posteriors of the states of each class (exact
    for any input); it is all NaN when the loss is infinite (no gradient exists)
    and empty-frame problems (T = 0) give a (0, C) gradient.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    T, C = lp.shape
    if T == 0:
        return (0.0 if len(target) == 0 else math.inf), np.zeros((0, C))
    ext = _extended_labels(target, blank)
    S = len(ext)
    e = lp[:, ext]  # (T, S): the emission of each state
    skip_into = np.array([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(S)])
    alpha = np.full((T, S), -np.inf)
    alpha[0, : min(S, 2)] = e[0, : min(S, 2)]
    for t in range(1, T):
        prev = alpha[t - 1]
        alpha[t] = e[t] + _logaddexp3(prev, _shift(prev, 1), np.where(skip_into, _shift(prev, 2), -np.inf))
    nll = -np.logaddexp(alpha[T - 1, S - 1], alpha[T - 1, S - 2]) if S > 1 else -alpha[T - 1, 0]
    if not np.isfinite(nll):
        return float(nll), np.full((T, C), np.nan)
    skip_from = np.zeros(S, dtype=bool)  # beta_t(s) may come from beta_{t+1}(s + 2)
    skip_from[: max(S - 2, 0)] = skip_into[2:]
    beta = np.full((T, S), -np.inf)
    beta[T - 1, max(S - 2, 0):] = e[T - 1, max(S - 2, 0):]
    for t in range(T - 2, -1, -1):
        nxt = beta[t + 1]
        beta[t] = e[t] + _logaddexp3(nxt, _shift(nxt, -1), np.where(skip_from, _shift(nxt, -2), -np.inf))
    posterior = np.exp(alpha + beta - e + nll)  # (T, S)
    grad = np.zeros((T, C))
    for s, c in enumerate(ext):
        grad[:, c] -= posterior[:, s]
    return float(nll), grad


# --------------------------------------------------------------------------
# Problem generators
# --------------------------------------------------------------------------
def min_frames(target: Sequence[int]) -> int:
    """Frames needed for a target: L + number of adjacent repeats."""
    t = list(target)
    return len(t) + sum(1 for a, b in zip(t, t[1:]) if a == b)


@dataclass
class Problem:
    logits: torch.Tensor  # (T, N, C), float
    targets_list: List[List[int]]
    input_lengths: List[int]
    blank: int
    C: int

    @property
    def T(self):
        return self.logits.shape[0]

    @property
    def N(self):
        return self.logits.shape[1]

    @property
    def target_lengths(self) -> List[int]:
        return [len(t) for t in self.targets_list]

    def log_probs(self) -> torch.Tensor:
        return self.logits.log_softmax(-1)

    def padded(self, dtype=torch.long, fill: int = 0, S: int | None = None) -> torch.Tensor:
        S = max([len(t) for t in self.targets_list] + [0]) if S is None else S
        out = torch.full((self.N, S), fill, dtype=dtype)
        for b, t in enumerate(self.targets_list):
            if t:
                out[b, : len(t)] = torch.tensor(t, dtype=dtype)
        return out

    def concat(self, dtype=torch.long) -> torch.Tensor:
        flat = [v for t in self.targets_list for v in t]
        return torch.tensor(flat, dtype=dtype).reshape(len(flat))

    def il(self, dtype=torch.long) -> torch.Tensor:
        return torch.tensor(self.input_lengths, dtype=dtype)

    def tl(self, dtype=torch.long) -> torch.Tensor:
        return torch.tensor(self.target_lengths, dtype=dtype)


def random_target(gen: torch.Generator, L: int, C: int, blank: int, repeat_prob: float = 0.25) -> List[int]:
    labels = [c for c in range(C) if c != blank]
    out: List[int] = []
    for i in range(L):
        if out and float(torch.rand((), generator=gen)) < repeat_prob:
            out.append(out[-1])
        else:
            out.append(labels[int(torch.randint(len(labels), (), generator=gen))])
    return out


def make_problem(
    seed: int,
    T: int,
    N: int,
    C: int,
    max_L: int,
    *,
    min_L: int = 0,
    blank: int = 0,
    ragged: bool = True,
    feasible: bool = True,
    repeat_prob: float = 0.25,
    dtype=torch.float64,
    scale: float = 1.0,
) -> Problem:
    """A seeded random CTC problem.

    ragged: input lengths drawn in [min needed, T] (else all T).
    feasible: every target fits in its input length (targets are redrawn /
    shortened until they do).
    """
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(T, N, C, generator=gen, dtype=torch.float64) * scale
    targets, ils = [], []
    for b in range(N):
        L = int(torch.randint(min_L, max_L + 1, (), generator=gen)) if max_L > min_L else max_L
        tgt = random_target(gen, L, C, blank, repeat_prob)
        if feasible:
            while min_frames(tgt) > T:
                tgt = tgt[:-1]
        need = min_frames(tgt)
        if ragged and T > 0:
            lo = need if feasible else 0
            il = int(torch.randint(lo, T + 1, (), generator=gen))
        else:
            il = T
        targets.append(tgt)
        ils.append(il)
    if ragged and N > 0 and T > 0 and feasible:
        ils[0] = T  # keep at least one full-length sample
    return Problem(logits.to(dtype), targets, ils, blank, C)


# --------------------------------------------------------------------------
# Gradient conversions
# --------------------------------------------------------------------------
def lp_grad_to_logit_grad(grad_lp: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
    """Chain rule through log_softmax: given dL/dlp, return dL/dlogits (lp normalised)."""
    g = grad_lp.to(torch.float64)
    return g - log_probs.to(torch.float64).exp() * g.sum(-1, keepdim=True)
