"""PNG plots: loss and CER curves, a sheet of test lines with their predictions, and test
lines with their characters' forced-alignment spans."""

from __future__ import annotations

from typing import List, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_curves(history: dict, path: str, title: str = "") -> None:
    steps = np.array(history.get("step", []))
    loss = np.array(history.get("loss", []), dtype=float)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    if len(loss):
        a1.plot(steps, loss, lw=0.5, alpha=0.4, label="train loss (per step)")
        k = max(len(loss) // 50, 1)
        if len(loss) >= k:
            smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
            a1.plot(steps[k - 1:], smooth, lw=1.5, label=f"mean of {k} steps")
        a1.set_yscale("symlog" if (loss < 0).any() else "log")
    a1.set_xlabel("step")
    a1.set_ylabel("CTC loss")
    a1.legend()
    a1.grid(alpha=0.3)
    ev = history.get("eval_step", [])
    if ev:
        a2.plot(ev, 100 * np.array(history["val_cer"]), "o-", label="val CER (train fonts)")
        if history.get("val_wer"):
            a2.plot(ev, 100 * np.array(history["val_wer"]), "s--", alpha=0.6, label="val WER")
    if history.get("test_cer") is not None:
        a2.axhline(100 * history["test_cer"], color="r", ls=":", label=f"test CER (held-out fonts) {100 * history['test_cer']:.1f}%")
    a2.set_xlabel("step")
    a2.set_ylabel("%")
    a2.set_ylim(0, 100)
    a2.legend()
    a2.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_samples(images: Sequence[np.ndarray], refs: Sequence[str], preds: Sequence[str], path: str,
                 title: str = "") -> None:
    n = len(images)
    fig, axes = plt.subplots(n, 1, figsize=(10, 0.95 * n + 0.6))
    axes = np.atleast_1d(axes)
    for ax, im, ref, pred in zip(axes, images, refs, preds):
        ax.imshow(im, cmap="gray", vmin=0, vmax=255, aspect="equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ok = "ok" if ref == pred else "x"
        ax.set_title(f"ref:  {ref}\npred: {pred}   [{ok}]", fontsize=8, loc="left", family="monospace")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_alignments(images: Sequence[np.ndarray], spans: Sequence[Sequence], path: str, title: str = "") -> None:
    """Each line with its characters' spans (htr.align.CharSpan) drawn over it: a band per
    character, alternating colours, its letter above and its confidence as the opacity."""
    n = len(images)
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.15 * n + 0.6))
    axes = np.atleast_1d(axes)
    colours = ("tab:blue", "tab:orange")
    for ax, im, line in zip(axes, images, spans):
        ax.imshow(im, cmap="gray", vmin=0, vmax=255, aspect="equal")
        for k, s in enumerate(line):
            ax.axvspan(s.x0, s.x1, color=colours[k % 2], alpha=0.15 + 0.35 * s.confidence, lw=0)
            ax.text((s.x0 + s.x1) / 2, -2, s.char if s.char != " " else "\u2423", ha="center", va="bottom",
                    fontsize=7, family="monospace")
        ax.set_xticks([])
        ax.set_yticks([])
        if not line:
            ax.set_title("(the model's frames cannot hold this line)", fontsize=7, loc="left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
