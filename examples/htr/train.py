"""Train a CRNN handwriting recogniser with CTC (torch_ctc or torch's loss).

Default: synthetic handwriting-like lines (Debian fonts, held-out fonts for the test
split), each line zone-normalised (normalize.py), a CRNN, AdamW with warm-up and cosine
decay, gradient clipping; greedy, beam and beam + character-LM decoding (lm_decode.py),
CER/WER from rapidfuzz, checkpoints, PNG plots. See docs/htr.md.

    .venv/bin/python examples/htr/train.py --minutes 10                # the demo
    .venv/bin/python examples/htr/train.py --steps 3000 --loss torch   # fixed steps, torch's loss
    .venv/bin/python examples/htr/train.py --recipe forum              # the broken forum recipe
    .venv/bin/python examples/htr/train.py --procs 2                   # 2 data-parallel processes (gloo)
    .venv/bin/torchrun --nproc-per-node 2 examples/htr/train.py ...    # data-parallel (gloo/nccl)
    .venv/bin/python examples/htr/train.py --data tsv --data-dir DIR   # DIR/{train,val,test}.tsv
    .venv/bin/python examples/htr/train.py --data iam --data-dir IAM   # IAM lines
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import List, Optional

# OpenMP threads that spin-wait crawl when the cores are shared with other work (measured 5x
# slower on a busy 2-core machine); passive waiting costs little when the machine is free.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "htr"

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from rapidfuzz.distance import Levenshtein

import torch_ctc

from htr import data as synth
from htr import lm_decode, loaders, normalize
from htr.model import CRNN, ForumNet
from htr.tokenizer import ForumTokenizer, Tokenizer


def progress_postfix(loss: float, cer) -> dict:
    """The progress bar's fields. The validation CER shows a dash until the first evaluation
    (``cer`` None), not ``nan%``."""
    return {"loss": f"{loss:.3f}", "cer": "-" if cer is None else f"{100 * cer:.1f}%"}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=["synth", "tsv", "iam"], default="synth")
    g.add_argument("--data-dir", help="tsv: folder with train.tsv, test.tsv (val.tsv optional); iam: IAM root")
    g.add_argument("--cache-dir", help="synthetic data cache (default build/htr-cache, or $HTR_CACHE)")
    g.add_argument("--n-train", type=int, default=12000)
    g.add_argument("--n-val", type=int, default=300)
    g.add_argument("--n-test", type=int, default=600)
    g.add_argument("--max-chars", type=int, default=40)
    g.add_argument("--height", type=int, default=32, help="line height in pixels, a multiple of 16 (48 learns more "
                   "per step but costs twice as much per step; see docs/htr.md)")
    g.add_argument("--gen-workers", type=int, default=0, help="processes for data generation (0: all cores)")
    g.add_argument("--zone-norm", choices=["on", "off"], help="map each line's body (x-height) band to a fixed "
                   "share of the rows, same width (normalize.py); default: on, off for --recipe forum")
    g = p.add_argument_group("model")
    g.add_argument("--channels", default="16,32,48,64", help="conv channels of the four blocks")
    g.add_argument("--hidden", type=int, default=128, help="BiLSTM units per direction")
    g.add_argument("--layers", type=int, default=1, help="BiLSTM layers (1 learns fastest on a 2-core CPU; 2-3 on a GPU)")
    g.add_argument("--width-pool", type=int, default=4, choices=[2, 4, 8])
    g.add_argument("--dropout", type=float, default=0.1)
    g.add_argument("--stem", choices=["pool", "stride"], default="stride",
                   help="first conv: full resolution then max-pooling, or stride 2 (a quarter of its work)")
    g = p.add_argument_group("training")
    g.add_argument("--recipe", choices=["default", "forum"], default="default",
                   help="forum: the broken setup of the forum post (see docs/pitfalls.md)")
    g.add_argument("--loss", choices=["torch_ctc", "torch"], default="torch_ctc")
    g.add_argument("--batch-size", type=int, default=16, help="per process")
    g.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate (after warm-up)")
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--warmup", type=int, default=150, help="linear warm-up steps")
    g.add_argument("--clip", type=float, default=5.0, help="gradient norm clipping")
    g.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    g.add_argument("--epochs", type=float, default=0, help="stop after this many epochs (0: no limit)")
    g.add_argument("--minutes", type=float, default=0, help="stop after this many minutes of training (0: no limit)")
    g.add_argument("--eval-every", type=int, default=250)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--procs", type=int, default=1,
                   help="data-parallel processes that the trainer starts itself (gloo on the CPU), each with "
                        "--batch-size lines; on a CPU, one process of one thread per core learns fastest "
                        "(docs/htr.md). torchrun starts its own processes instead")
    g.add_argument("--threads", type=int, default=0, help="torch threads per process (0: cores / processes)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--out", default="build/htr-run", help="checkpoints, plots and results.json")
    g.add_argument("--resume", help="checkpoint to resume from (e.g. build/htr-run/checkpoint.pt)")
    g.add_argument("--no-plots", action="store_true")
    g.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    g.add_argument("--diagnose", action="store_true", help="ctc_loss(warn=True): torch_ctc's diagnostics on every step")
    g = p.add_argument_group("decoding (after training: greedy, beam, beam + character LM; docs/decoding.md)")
    g.add_argument("--beam-size", type=int, default=16, help="torch_ctc.beam_search's beam")
    g.add_argument("--lm-order", type=int, default=5, help="order of the character Kneser-Ney LM estimated from "
                   "the training text (0: no LM); lm_weight and token_score are tuned on the validation split")
    args = p.parse_args(argv)
    if args.procs < 1:
        p.error(f"--procs must be at least 1, got {args.procs}")
    if args.beam_size < 1 or args.lm_order < 0:
        p.error(f"--beam-size must be at least 1 and --lm-order at least 0, got {args.beam_size} and {args.lm_order}")
    if args.zone_norm is None:  # the forum's setup had no normalisation
        args.zone_norm = "off" if args.recipe == "forum" else "on"
    if args.recipe == "forum":
        args.loss = "torch"  # the forum trained with torch's loss; torch_ctc refuses its batches
        if not (args.steps or args.minutes or args.epochs):
            args.minutes = 3.0
    elif not (args.steps or args.minutes or args.epochs):
        args.minutes = 10.0
    return args


# ---- distributed helpers ------------------------------------------------------------------------


class Dist:
    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled and not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            # --procs meets through a file (no port to pick, so none to lose to another program); torchrun: env://
            dist.init_process_group(backend, init_method=os.environ.get("HTR_INIT_METHOD"), rank=self.rank,
                                    world_size=self.world)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.enabled:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def close(self):
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


# ---- data --------------------------------------------------------------------------------------


def load_data(args, ddp: Dist, log):
    if args.data == "synth":
        cfg = synth.GenConfig(seed=args.seed, height=args.height, n_train=args.n_train, n_val=args.n_val,
                              n_test=args.n_test, max_chars=args.max_chars)
        workers = args.gen_workers or os.cpu_count() or 1
        splits = {}
        # rank 0 generates (and caches) first; the others then read the cache
        for turn in ([0, 1] if ddp.enabled else [0]):
            if (turn == 0) == ddp.main:
                for s in ("train", "val", "test"):
                    splits[s] = synth.load_or_generate(cfg, s, args.cache_dir, workers, log=log)
            ddp.barrier()
        tok = Tokenizer(synth.CHARSET)
        return splits, tok
    if not args.data_dir:
        raise SystemExit("--data-dir is needed with --data tsv/iam")
    if args.data == "tsv":
        splits = {}
        for s in ("train", "val", "test"):
            path = os.path.join(args.data_dir, f"{s}.tsv")
            if os.path.exists(path):
                splits[s] = loaders.load_tsv(path, args.height)
        if "train" not in splits or "test" not in splits:
            raise SystemExit(f"{args.data_dir} needs train.tsv and test.tsv")
        splits.setdefault("val", splits["test"])
    else:
        recs = loaders.load_iam(args.data_dir, args.height)
        ids = loaders.split_iam_ids(recs["ids"], args.seed)
        index = {i: k for k, i in enumerate(recs["ids"])}
        splits = {s: {key: [recs[key][index[i]] for i in ids[s]] for key in ("images", "texts", "ids")} for s in ids}
    tok = Tokenizer.from_texts(t for s in splits.values() for t in s["texts"])
    return splits, tok


# ---- loss, decoding, evaluation ----------------------------------------------------------------


def compute_loss(kind: str, log_probs, targets, input_lengths, target_lengths, blank: int = 0,
                 zero_infinity: bool = True, warn: bool = False):
    if kind == "torch":
        return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=blank, reduction="mean",
                          zero_infinity=zero_infinity)
    return torch_ctc.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, "mean", zero_infinity,
                              warn=warn)


def greedy(log_probs: torch.Tensor, lengths: torch.Tensor, tok: Tokenizer) -> List[str]:
    """Best-path decoding of a (T, N, C) batch into text (torch_ctc.greedy_decode)."""
    decoded = torch_ctc.greedy_decode(log_probs, lengths.clamp(max=log_probs.shape[0]), tok.BLANK)
    tokens, counts = decoded.tokens.cpu(), decoded.lengths.cpu()
    return [tok.decode(tokens[b, : int(counts[b])].tolist()) for b in range(tokens.shape[0])]


def error_rates(refs: List[str], preds: List[str]):
    """CER and WER over a set of lines (total edits / total reference length), from rapidfuzz."""
    ce = sum(Levenshtein.distance(r, p) for r, p in zip(refs, preds))
    cn = sum(len(r) for r in refs)
    we = sum(Levenshtein.distance(r.split(), p.split()) for r, p in zip(refs, preds))
    wn = sum(len(r.split()) for r in refs)
    return ce / max(cn, 1), we / max(wn, 1)


@torch.no_grad()
def evaluate(model, split: dict, tok, device, batch_size: int = 64, min_width: int = 0, limit: int = 0):
    model.eval()
    n = len(split["texts"]) if not limit else min(limit, len(split["texts"]))
    order = sorted(range(n), key=lambda i: split["images"][i].shape[1])
    preds = [""] * n
    for s in range(0, n, batch_size):
        idx = order[s: s + batch_size]
        b = synth.collate([split["images"][i] for i in idx], [split["texts"][i] for i in idx], tok, min_width)
        lp = model(b.images.to(device)).float()
        lengths = model.frames(b.widths) if not isinstance(model, ForumNet) else torch.full_like(b.widths, 128)
        for i, p in zip(idx, greedy(lp, lengths, tok)):
            preds[i] = p
    model.train()
    refs = list(split["texts"][:n])
    cer, wer = error_rates(refs, preds)
    return cer, wer, preds


def decoding_results(decoded, args) -> dict:
    """results.json's record of the three decoders and the LM."""
    out = {"beam_size": args.beam_size, "seconds": round(decoded.seconds, 1),
           "val": {k: {"cer": c, "wer": w} for k, (c, w) in decoded.val.items()},
           "test": {k: {"cer": c, "wer": w} for k, (c, w) in decoded.test.items()}}
    if decoded.lm is not None:
        out["lm"] = dict(vars(decoded.lm), lm_weight=decoded.lm_weight, token_score=decoded.token_score,
                         val_cer_grid={f"{w},{s}": c for (w, s), c in decoded.grid.items()})
    return out


def print_decoding(decoded, args) -> None:
    names = {"greedy": "greedy", "beam": f"beam {args.beam_size}", "beam+lm": "beam + LM"}
    print("TEST CER by decoder: " + ", ".join(f"{names[k]} {100 * c:.2f}%" for k, (c, _) in decoded.test.items())
          + " (val: " + ", ".join(f"{100 * c:.2f}%" for c, _ in decoded.val.values()) + f"; {decoded.seconds:.0f} s)")
    if decoded.lm is not None:
        lm = decoded.lm
        print(f"LM: character {lm.order}-gram, Kneser-Ney, from {lm.lines} training lines ({lm.chars} characters; "
              f"{lm.dropped} lines that contain a val/test line left out, {lm.held_out_in_text} val/test lines in "
              f"its text); lm_weight {decoded.lm_weight}, token_score {decoded.token_score} (tuned on val); "
              f"{lm.path}")


# ---- training ------------------------------------------------------------------------------------


def lr_factor(step: int, args, elapsed: float) -> float:
    warm = min(1.0, (step + 1) / max(args.warmup, 1))
    progress = 0.0
    if args.steps:
        progress = max(progress, step / args.steps)
    if args.minutes:
        progress = max(progress, elapsed / (60 * args.minutes))
    if args.epochs and getattr(args, "_steps_per_epoch", 0):
        progress = max(progress, step / (args.epochs * args._steps_per_epoch))
    progress = min(progress, 1.0)
    return warm * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * progress)))


def save_checkpoint(path: str, model, opt, step: int, args, tok, history: dict) -> None:
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "args": {k: v for k, v in vars(args).items() if not k.startswith("_")},
                "tokenizer": tok.to_json(), "history": history}, tmp)
    os.replace(tmp, path)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.procs > 1 and "WORLD_SIZE" not in os.environ:  # start the processes; each runs main() again
        if args.recipe != "forum":
            return spawn(args, sys.argv[1:] if argv is None else list(argv))
        print("--procs: the forum recipe runs in one process")
    if args.device == "auto":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available() else torch.device("cpu")
    else:
        device = torch.device(args.device)
    ddp = Dist(device)
    torch.set_num_threads(args.threads or max((os.cpu_count() or 1) // ddp.world, 1))
    torch.manual_seed(args.seed + ddp.rank)
    log = print if ddp.main else (lambda *a, **k: None)
    os.makedirs(args.out, exist_ok=True)

    t_start = time.time()
    splits, tok = load_data(args, ddp, log)
    if args.zone_norm == "on":
        workers = max((args.gen_workers or os.cpu_count() or 1) // ddp.world, 1)
        splits = normalize.normalize_splits(splits, workers)
    t_data = time.time() - t_start
    log(f"data: {len(splits['train']['texts'])} train, {len(splits['val']['texts'])} val, "
        f"{len(splits['test']['texts'])} test lines ({t_data:.0f} s); {len(tok)} classes (blank = 0); "
        f"zone normalisation {args.zone_norm}")

    forum = args.recipe == "forum"
    if forum:
        tok = ForumTokenizer(tok.charset)
        model = ForumNet(len(tok), args.height).to(device)
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
        min_width = 128
    else:
        channels = tuple(int(c) for c in args.channels.split(","))
        model = CRNN(len(tok), args.height, channels, args.hidden, args.layers, args.width_pool, args.dropout,
                     args.stem).to(device)
        if device.type == "cpu":  # channels-last convolutions and pooling: ~20% faster steps for wider convs
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        min_width = 0
    net = model
    if ddp.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    log(f"model: {type(model).__name__}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters; "
        f"loss {args.loss}; {ddp.world} process(es) x {torch.get_num_threads()} threads on {device}")

    history = {"step": [], "loss": [], "eval_step": [], "val_cer": [], "val_wer": [], "test_cer": None}
    step = 0
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    if args.resume:
        ck = torch.load(args.resume, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, history = ck["step"], ck["history"]
        log(f"resumed from {args.resume} at step {step}")

    n_train = len(splits["train"]["texts"])
    per_rank = max(n_train // (args.batch_size * ddp.world), 1)
    args._steps_per_epoch = per_rank
    max_steps = args.steps or (int(args.epochs * per_rank) if args.epochs else 0)

    bar = None
    if ddp.main and not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=max_steps or None, initial=step, dynamic_ncols=True, mininterval=1.0,
                   desc="forum" if forum else "train")
    if forum:
        forum_preamble(model, splits, tok, device, args, log)

    t_train = time.time()
    epoch = step // per_rank
    cer_shown = None  # no evaluation yet
    stop = False
    model.train()
    while not stop:
        rng = np.random.default_rng((args.seed, epoch))
        batches = synth.batch_order([im.shape[1] for im in splits["train"]["images"]], args.batch_size, rng)
        batches = batches[: per_rank * ddp.world][ddp.rank:: ddp.world]
        skip = step - epoch * per_rank
        for idx in batches[max(skip, 0):]:
            tr = splits["train"]
            b = synth.collate([tr["images"][i] for i in idx], [tr["texts"][i] for i in idx], tok, min_width)
            x = b.images.to(device)
            lp = net(x)
            if forum:
                input_lengths = torch.full((lp.shape[1],), 128, dtype=torch.long)  # the hard-coded lengths
                loss = F.ctc_loss(lp, b.targets, input_lengths, b.target_lengths, blank=0)  # forum: no zero_infinity
            else:
                input_lengths = model.frames(b.widths)
                loss = compute_loss(args.loss, lp.float(), b.targets.to(device), input_lengths, b.target_lengths,
                                    warn=args.diagnose)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if not forum:
                for group in opt.param_groups:
                    group["lr"] = args.lr * lr_factor(step, args, time.time() - t_train)
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            step += 1
            history["step"].append(step)
            history["loss"].append(float(loss.detach()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(progress_postfix(history["loss"][-1], cer_shown), refresh=False)
            if step % args.eval_every == 0:
                if ddp.main:
                    cer, wer, _ = evaluate(model, splits["val"], tok, device, min_width=min_width)
                    cer_shown = cer
                    history["eval_step"].append(step)
                    history["val_cer"].append(cer)
                    history["val_wer"].append(wer)
                    save_checkpoint(ckpt_path, model, opt, step, args, tok, history)
                    msg = (f"step {step}: loss {np.mean(history['loss'][-args.eval_every:]):.3f}, val CER {100 * cer:.2f}%, "
                           f"WER {100 * wer:.1f}%, {(time.time() - t_train) / max(step - (history['step'][0] - 1), 1):.3f} s/step")
                    (bar.write if bar is not None else print)(msg)
                ddp.barrier()
            over = (max_steps and step >= max_steps) or (args.minutes and time.time() - t_train >= 60 * args.minutes)
            if ddp.any(bool(over)):
                stop = True
                break
        epoch += 1
    if bar is not None:
        bar.close()
    train_s = time.time() - t_train

    results = {}
    if ddp.main:
        save_checkpoint(ckpt_path, model, opt, step, args, tok, history)
        decoded = None
        if forum:  # raw scores and hard-coded lengths: greedy only
            val_cer, val_wer, _ = evaluate(model, splits["val"], tok, device, min_width=min_width)
            test_cer, test_wer, preds = evaluate(model, splits["test"], tok, device, min_width=min_width)
        else:
            t_decode = time.time()
            decoded = lm_decode.decode_splits(model, splits, tok, device, error_rates, args.beam_size, args.lm_order,
                                              os.path.join(args.out, f"char-{args.lm_order}gram.arpa"), min_width)
            decoded.seconds = time.time() - t_decode
            (val_cer, val_wer), (test_cer, test_wer) = decoded.val["greedy"], decoded.test["greedy"]
            preds = decoded.test_preds["greedy"]
        history["test_cer"] = test_cer
        per_font = {}  # test CER of each held-out font (synthetic data: the font file of each line)
        if "fonts" in splits["test"]:
            for f in sorted(set(splits["test"]["fonts"])):
                ix = [i for i, g in enumerate(splits["test"]["fonts"]) if g == f]
                per_font[os.path.splitext(f)[0]] = error_rates([splits["test"]["texts"][i] for i in ix],
                                                               [preds[i] for i in ix])[0]
        steps_run = len(history["step"])
        results = {
            "recipe": args.recipe, "loss": args.loss, "zone_norm": args.zone_norm, "steps": step,
            "train_seconds": round(train_s, 1),
            "data_seconds": round(t_data, 1), "seconds_per_step": round(train_s / max(steps_run, 1), 4),
            "val_cer": val_cer, "val_wer": val_wer, "test_cer": test_cer, "test_wer": test_wer,
            "test_cer_per_font": per_font,
            "world_size": ddp.world, "threads": torch.get_num_threads(), "batch_size": args.batch_size,
            "final_loss": float(np.mean(history["loss"][-50:])) if history["loss"] else None,
        }
        if decoded is not None:
            results["decoding"] = decoding_results(decoded, args)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        if not args.no_plots:
            from htr import plots

            plots.plot_curves(history, os.path.join(args.out, "curves.png"),
                              f"{args.recipe} recipe, loss={args.loss}, {step} steps")
            k = min(12, len(preds))
            pick = np.random.default_rng(0).choice(len(preds), k, replace=False) if k else []
            plots.plot_samples([splits["test"]["images"][i] for i in pick], [splits["test"]["texts"][i] for i in pick],
                               [preds[i] for i in pick], os.path.join(args.out, "test_samples.png"),
                               f"held-out test lines: CER {100 * test_cer:.2f}%")
            if not forum and len(pick):  # the forum model's output is not log-probabilities over real frames
                from htr import align

                shown = list(pick[:4])
                images = [splits["test"]["images"][i] for i in shown]
                spans = align.line_spans(model, images, [splits["test"]["texts"][i] for i in shown], tok, device,
                                         min_width)
                plots.plot_alignments(images, spans, os.path.join(args.out, "test_alignment.png"),
                                      "forced alignment of the ground truth (torch_ctc.forced_align)")
        for i in range(min(5, len(preds))):
            print(f"  ref:  {splits['test']['texts'][i]}\n  pred: {preds[i]}")
        print(f"steps {step} in {train_s:.0f} s ({results['seconds_per_step']:.3f} s/step), data {t_data:.0f} s")
        print(f"val CER {100 * val_cer:.2f}% (train fonts), WER {100 * val_wer:.1f}%")
        print(f"TEST CER {100 * test_cer:.2f}% on held-out fonts, WER {100 * test_wer:.1f}%"
              if args.data == "synth" else f"TEST CER {100 * test_cer:.2f}%, WER {100 * test_wer:.1f}%")
        if per_font:
            print("test CER per font: " + ", ".join(f"{f} {100 * c:.1f}%" for f, c in per_font.items()))
        if decoded is not None:
            print_decoding(decoded, args)
        if not args.no_plots:
            print(f"plots: {os.path.join(args.out, 'curves.png')}, {os.path.join(args.out, 'test_samples.png')}"
                  + ("" if forum else f", {os.path.join(args.out, 'test_alignment.png')}"))
        if forum:
            forum_epilogue(model, splits, tok, device, args, preds)
    ddp.barrier()
    ddp.close()
    return results


# ---- the forum recipe ------------------------------------------------------------------------------


def _forum_batch(model, splits, tok, device, n: int = 16):
    split = splits["val"]
    b = synth.collate(split["images"][:n], split["texts"][:n], tok, min_width=128)
    with torch.no_grad():
        model.eval()
        lp = model(b.images.to(device)).float().cpu()
        model.train()
    return b, lp


def forum_preamble(model, splits, tok, device, args, log):
    b, lp = _forum_batch(model, splits, tok, device)
    il = torch.full((lp.shape[1],), 128, dtype=torch.long)
    log("\n== forum recipe: no pooling, no nonlinearity, no log_softmax, input_lengths = 128, RMSprop 1e-3,")
    log("   characters numbered from 0 (space = 0 = blank). torch_ctc.ctc_loss(warn=True) on the first batch:")
    import warnings

    torch_ctc.diagnostics.reset_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch_ctc.ctc_loss(lp, b.targets, il, b.target_lengths, warn=True)
            refused = None
        except Exception as exc:  # noqa: BLE001 - shown to the user
            refused = exc
    for w in caught:
        log(f"   warning: {w.message}")
    if refused is not None:
        log(f"   ... and torch_ctc refuses the batch: {type(refused).__name__}: {refused}")
    log("   The forum trained with torch.nn.functional.ctc_loss, which accepts it; so does this recipe.\n")


def forum_epilogue(model, splits, tok, device, args, preds):
    b, lp = _forum_batch(model, splits, tok, device)
    il = torch.full((lp.shape[1],), 128, dtype=torch.long)
    print("\n== the collapse: greedy outputs on held-out lines")
    for r, p in list(zip(splits["test"]["texts"], preds))[:6]:
        print(f"   ref {r!r:45} -> pred {p!r}")
    print("\n== torch_ctc.diagnose(output, targets, input_lengths=[128]*N, target_lengths) on a batch:")
    print(torch_ctc.diagnose(lp, b.targets, il, b.target_lengths))
    print("\n== three more classic mistakes, shown on the same kind of batch with a correct CRNN output shape:")
    good = Tokenizer(tok.charset)
    n = min(16, len(splits["val"]["texts"]))
    gb = synth.collate(splits["val"]["images"][:n], splits["val"]["texts"][:n], good)
    T = gb.images.shape[-1] // 4
    frames = torch.div(gb.widths, 4, rounding_mode="floor")
    x = torch.randn(T, n, len(good)).log_softmax(-1)
    print("-- (a) a batch-first (N, T, C) output passed without batch_first=True:")
    print(torch_ctc.diagnose(x.transpose(0, 1), gb.targets, frames, gb.target_lengths))
    print("-- (b) pooling the width 16x instead of 4x (input_lengths = width // 16):")
    x16 = torch.randn(gb.images.shape[-1] // 16, n, len(good)).log_softmax(-1)
    print(torch_ctc.diagnose(x16, gb.targets, torch.div(gb.widths, 16, rounding_mode="floor"), gb.target_lengths))
    print("-- (c) an output layer sized for lower-case letters only (C = 27) fed the full tokenizer's ids:")
    print(torch_ctc.diagnose(x[..., :27].log_softmax(-1), gb.targets, frames, gb.target_lengths))


def _spawn_entry(rank: int, world: int, argv: List[str], init_file: str) -> None:
    """torch.multiprocessing.spawn target: one DDP process of ``spawn``."""
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      HTR_INIT_METHOD="file://" + init_file)
    main(argv)


def spawn(args: argparse.Namespace, argv: List[str]) -> dict:
    """Run the trainer (``argv``) in ``args.procs`` data-parallel processes and return rank 0's results."""
    import tempfile

    import torch.multiprocessing as mp

    gpus = torch.cuda.device_count() if args.device in ("auto", "cuda") else 0
    if 0 < gpus < args.procs:
        raise SystemExit(f"--procs {args.procs}: each process takes its own GPU and there are {gpus}; "
                         f"use --procs {gpus}, or --device cpu")
    with tempfile.TemporaryDirectory(prefix="htr-ddp-") as tmp:
        # the file store's file must not exist yet; the processes create and share it
        mp.spawn(_spawn_entry, args=(args.procs, argv, os.path.join(tmp, "store")), nprocs=args.procs, join=True)
    with open(os.path.join(args.out, "results.json")) as f:
        return json.load(f)


if __name__ == "__main__":
    main()
