#!/usr/bin/env python3
"""CTC beam search side by side: torch_ctc.beam_search against pyctcdecode, fast-ctc-decode
and torchaudio's ctc_decoder (flashlight-text), on the same emissions.

One process, identical inputs, the decoders alternated within each repetition; medians.
Every decoder runs with its pruning off (or as wide as it goes), merging the paths of a
prefix by summing (torchaudio: log_add=True), so that each does the full search. The
slow peers are timed on the first few samples (--peer-samples) and all times are given
per sample; torch_ctc decodes the whole batch in one call, on 1 and on 2 threads.

LMs (--lms), all estimated with interpolated modified Kneser-Ney (examples/htr/kneser_ney.py)
from Debian's fortunes and written as ARPA files:
- "char 5-gram" at the char shape and "token 5-gram" over the 999 tokens at the BPE shape:
  torch_ctc reads them with its own reader, torchaudio's lexicon-free decoder with
  flashlight's KenLM.
- "word 3-gram" at the char shape, applied at word boundaries: torch_ctc's word mode
  (word_delimiter = the space) against pyctcdecode, which takes only word-level KenLM
  models (through the kenlm module). torchaudio applies a word LM only with a lexicon, so
  it is left out there.
fast-ctc-decode has no LM and takes one-character labels: it runs at the char shape, without
an LM, only.

The peers are benchmark-only dependencies (requirements-bench.txt):

    python benchmarks/compare_decode.py --update-doc docs/benchmarks.md
    python benchmarks/compare_decode.py --quick          (smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import string
import sys
import tempfile
import time
from collections import Counter

import torch

import report
import torch_ctc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from htr import kneser_ney, text  # noqa: E402

# (N, T, C)
SHAPES = {"char": (64, 500, 30), "bpe": (16, 1000, 1000)}
CHARS = string.ascii_lowercase + " '."  # 29 labels after the blank
# token_score 0: torchaudio's lexicon-free decoder has no per-token bonus (its word_score is
# for lexicon decoding only), so with 0 both decoders maximise the same score.
LM_WEIGHT, TOKEN_SCORE = 0.5, 0.0
PEERS = ("pyctcdecode", "fast-ctc-decode", "torchaudio")
# --lms: "none", "char" (the char 5-gram, or the token 5-gram at the BPE shape), "word" (char shape only)
LMS = ("none", "char", "word")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--beams", type=int, nargs="+", default=[16, 64])
    p.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    p.add_argument("--lms", nargs="+", default=list(LMS), choices=list(LMS),
                   help="none; char: a character 5-gram (token 5-gram at bpe); word: a word 3-gram (char shape)")
    p.add_argument("--lm-paragraphs", type=int, default=0, help="fortunes the LMs are estimated from (0: all)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--peer-samples", type=int, nargs=2, default=[8, 1], metavar=("CHAR", "BPE"),
                   help="samples the peers decode per repetition at each shape")
    p.add_argument("--budget", type=float, default=90.0, help="seconds per decoder and case after which it stops "
                   "repeating (one repetition at least)")
    p.add_argument("--quick", action="store_true", help="smoke run: small batches, one repetition")
    p.add_argument("--out-json")
    p.add_argument("--update-doc", help="splice the table into this file between its compare-decode markers")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.beams, args.peer_samples, args.budget = 1, [16], [2, 1], 10.0
        args.lm_paragraphs = args.lm_paragraphs or 300
    return args


# ---- inputs -------------------------------------------------------------------------------------


def labels_for(shape, paragraphs=0):
    """Token strings, blank first: characters, or the space and 998 words of the fortunes for
    the BPE shape (padded with made-up words when the text has fewer)."""
    if shape == "char":
        return ["<blank>"] + [kneser_ney.SPACE if c == " " else c for c in CHARS]
    counts = Counter(w for s in corpus_sentences("bpe", None, paragraphs) for w in s)
    words = [w for w, _ in counts.most_common(998)]
    return ["<blank>", kneser_ney.SPACE] + words + [f"w{i}" for i in range(998 - len(words))]


def corpus_sentences(shape, labels, paragraphs=0):
    """The LM's training text: fortunes, lower-cased, as characters or as (known) words."""
    paragraphs = [text.clean(p.lower(), CHARS) for p in text.fortune_paragraphs()[: paragraphs or None]]
    if shape == "char":
        return [kneser_ney.char_sentence(p) for p in paragraphs if p]
    words = [[w for w in p.split(" ") if w] for p in paragraphs]
    if labels is None:
        return words
    known = set(labels)
    return [[w for w in s if w in known] for s in words]


class LM:
    """One ARPA file and how the decoders read it: ``kind`` "char" (one ARPA word per token)
    or "word" (words spelled by the tokens between spaces)."""

    def __init__(self, kind, name, path):
        self.kind, self.name, self.path = kind, name, path


def build_lm(kind, shape, labels, directory, paragraphs=0):
    """The LM of ``kind`` ("char" or "word") for ``shape``, written under ``directory``."""
    if kind == "word":
        sentences, order, vocabulary, name = corpus_sentences("bpe", None, paragraphs), 3, (), "word 3-gram"
    else:
        sentences, order, vocabulary = corpus_sentences(shape, labels, paragraphs), 5, labels[1:]
        name = "char 5-gram" if shape == "char" else "token 5-gram"
    path = os.path.join(directory, f"{shape}-{kind}-{order}gram.arpa")
    kneser_ney.KneserNey(sentences, order, vocabulary=vocabulary).write_arpa(path)
    return LM(kind, name, path)


def emissions(shape, seed=0):
    """Peaky log-probabilities (T, N, C) like a trained model's: each frame favours one class
    (blank 60% of the time), the rest is noise."""
    N, T, C = SHAPES[shape]
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(T, N, C, generator=g) * 2
    peak = torch.where(torch.rand(T, N, generator=g) < 0.6, 0, torch.randint(1, C, (T, N), generator=g))
    logits.scatter_add_(2, peak[..., None], torch.full((T, N, 1), 8.0))
    return logits.log_softmax(-1)


# ---- the decoders -------------------------------------------------------------------------------


class Decoders:
    """Each decoder as ``decode(samples) -> list of token-id tuples`` over the first samples."""

    def __init__(self, shape, labels, lp, lm, beam, peers=PEERS):
        self.shape, self.labels, self.lp, self.beam, self.peers = shape, labels, lp, beam, peers
        self.lm_spec = lm  # an LM, or None
        self.index = {s: i for i, s in enumerate(labels)}
        self.lm = None
        if lm is not None:
            delimiter = self.index[kneser_ney.SPACE] if lm.kind == "word" else None
            self.lm = torch_ctc.NGramLM.from_arpa(lm.path, labels, word_delimiter=delimiter)

    def available(self):
        kind = self.lm_spec.kind if self.lm_spec else "none"
        names = ["torch_ctc 1 thread", "torch_ctc 2 threads"]
        if kind in ("none", "word") and "pyctcdecode" in self.peers:
            names.append("pyctcdecode")
        if kind == "none" and self.shape == "char" and "fast-ctc-decode" in self.peers:
            names.append("fast-ctc-decode")
        if kind in ("none", "char") and "torchaudio" in self.peers:
            names.append("torchaudio")
        return names

    def run(self, name, samples, frames=None):
        """The first ``samples`` samples (and ``frames`` frames: the warm-up) decoded by ``name``."""
        lp = self.lp[:frames, :samples]
        if name.startswith("torch_ctc"):
            torch.set_num_threads(1 if "1 thread" in name else 2)
            return self.torch_ctc(lp)
        return {"pyctcdecode": self.pyctcdecode, "fast-ctc-decode": self.fast_ctc_decode,
                "torchaudio": self.torchaudio}[name](lp)

    def torch_ctc(self, lp):
        hyps = torch_ctc.beam_search(lp, [lp.shape[0]] * lp.shape[1], beam_size=self.beam, lm=self.lm,
                                     lm_weight=LM_WEIGHT, token_score=TOKEN_SCORE if self.lm else 0.0)
        return [tuple(h[0].tokens) if h else () for h in hyps]

    def pyctcdecode(self, lp):
        if not hasattr(self, "_pyctc"):
            import pyctcdecode

            if self.lm_spec is None:  # one character per label, none a space, so that its text maps back to ids
                self._py_labels = [""] + [chr(0x4E00 + i) for i in range(len(self.labels) - 1)]
                self._pyctc = pyctcdecode.build_ctcdecoder(self._py_labels)
            else:  # the word LM: the real characters, " " its word delimiter; alpha in ln units, like lm_weight.
                # unk_score_offset 0: no extra penalty on out-of-vocabulary (partial) words, which
                # torch_ctc's contract does not have (they get the ARPA's <unk> probability in both)
                self._py_labels = [""] + [" " if t == kneser_ney.SPACE else t for t in self.labels[1:]]
                self._pyctc = pyctcdecode.build_ctcdecoder(self._py_labels, kenlm_model_path=self.lm_spec.path,
                                                           alpha=LM_WEIGHT, beta=TOKEN_SCORE, unk_score_offset=0.0)
        back = {c: i for i, c in enumerate(self._py_labels)}
        out = []
        for n in range(lp.shape[1]):
            beams = self._pyctc.decode_beams(lp[:, n].numpy(), beam_width=self.beam, beam_prune_logp=-1e9,
                                             token_min_logp=-1e9, prune_history=False)
            out.append(tuple(back[c] for c in beams[0][0]))
        return out

    def fast_ctc_decode(self, lp):
        import fast_ctc_decode

        alphabet = ["N"] + [chr(0x4E00 + i) for i in range(len(self.labels) - 1)]
        back = {c: i for i, c in enumerate(alphabet)}
        out = []
        for n in range(lp.shape[1]):
            seq, _ = fast_ctc_decode.beam_search(lp[:, n].exp().numpy(), alphabet, beam_size=self.beam,
                                                 beam_cut_threshold=0.0)
            out.append(tuple(back[c] for c in seq))
        return out

    def torchaudio(self, lp):
        if not hasattr(self, "_ta"):
            from torchaudio.models.decoder import ctc_decoder

            lm_path = self.lm_spec.path if self.lm_spec else None
            self._ta = ctc_decoder(lexicon=None, tokens=self.labels, lm=lm_path, beam_size=self.beam,
                                   beam_size_token=None, beam_threshold=1e9, lm_weight=LM_WEIGHT if lm_path else 0,
                                   log_add=True,
                                   blank_token="<blank>", sil_token=kneser_ney.SPACE)
        hyps = self._ta(lp.transpose(0, 1).contiguous(), torch.full((lp.shape[1],), lp.shape[0], dtype=torch.int32))
        sil = self.index[kneser_ney.SPACE]
        # torchaudio's tokens carry a silence at each end; drop those, keep the ones inside
        return [strip_ends(tuple(int(t) for t in h[0].tokens), sil) if h else () for h in hyps]


def strip_ends(tokens, sil):
    while tokens and tokens[0] == sil:
        tokens = tokens[1:]
    while tokens and tokens[-1] == sil:
        tokens = tokens[:-1]
    return tokens


def words_only(tokens, sil):
    """``tokens`` without leading, trailing or repeated spaces: the form in which torchaudio
    (silences at both ends) and pyctcdecode with a word LM (its text joins the words with
    one space) report a labelling, so agreement is counted on it."""
    tokens = strip_ends(tokens, sil)
    return tuple(t for i, t in enumerate(tokens) if t != sil or tokens[i - 1] != sil)


# ---- measurement --------------------------------------------------------------------------------


def measure_case(dec, peer_samples, reps, budget):
    """{decoder: seconds per sample (median)} and {decoder: top-1 agreement with torch_ctc}."""
    names = dec.available()
    N = dec.lp.shape[1]
    samples = {n: (N if n.startswith("torch_ctc") else min(peer_samples, N)) for n in names}
    times = {n: [] for n in names}
    spent = {n: 0.0 for n in names}
    outputs = {}
    for n in names:  # warm-up on the start of one sample: loads the libraries, builds the decoders, reads the LM
        dec.run(n, 1, frames=50)
    for rep in range(reps):
        order = names[rep % len(names):] + names[: rep % len(names)]
        for n in order:
            if rep > 0 and spent[n] > budget:
                continue
            start = time.perf_counter()
            outputs[n] = dec.run(n, samples[n])
            elapsed = time.perf_counter() - start
            spent[n] += elapsed
            times[n].append(elapsed / samples[n])
    ours = outputs["torch_ctc 1 thread"]
    assert outputs["torch_ctc 2 threads"] == ours, "torch_ctc differs between 1 and 2 threads"
    sil = dec.index[kneser_ney.SPACE]
    agreement = {n: sum(words_only(a, sil) == words_only(b, sil) for a, b in zip(outputs[n], ours)) / len(outputs[n])
                 for n in names}
    better = {n: likelier(dec.lp, ours, outputs[n], dec.lm) for n in names if not n.startswith("torch_ctc")}
    return ({n: statistics.median(t) for n, t in times.items()}, agreement,
            {n: len(t) for n, t in times.items()}, samples, better)


def objective(lp, n, y, lm):
    """torch_ctc's contract for sample n: log P_ctc(y | x) (torch's ctc_loss, float64), plus
    lm_weight * ln P_lm(y </s>) + token_score * |y| with an LM."""
    score = -torch.nn.functional.ctc_loss(lp[:, n: n + 1].double(), torch.tensor([y or (0,)]).long(),
                                          torch.tensor([lp.shape[0]]), torch.tensor([len(y)]), reduction="sum").item()
    return score + (LM_WEIGHT * lm.score(y) + TOKEN_SCORE * len(y) if lm is not None else 0.0)


def likelier(lp, ours, theirs, lm):
    """Where two decoders disagree: how often each top-1 scores higher under torch_ctc's
    objective, as [torch_ctc's, the peer's]."""
    counts = [0, 0]
    for n, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            counts[0 if objective(lp, n, a, lm) >= objective(lp, n, b, lm) else 1] += 1
    return counts


def measure(args, directory):
    records = []
    for shape in args.shapes:
        labels = labels_for(shape, args.lm_paragraphs)
        lms = [None if kind == "none" else build_lm(kind, shape, labels, directory, args.lm_paragraphs)
               for kind in args.lms if kind != "word" or shape == "char"]
        lp = emissions(shape)
        peer_samples = args.peer_samples[list(SHAPES).index(shape)]
        if args.quick:
            lp = lp[:, :4]
        for beam in args.beams:
            for lm in lms:
                dec = Decoders(shape, labels, lp, lm, beam, args.peers)
                per_sample, agreement, reps, samples, better = measure_case(dec, peer_samples, args.reps,
                                                                            args.budget)
                records.append(dict(shape=shape, beam=beam, lm=lm.name if lm else "none", per_sample_s=per_sample,
                                    agreement=agreement, likelier_where_they_differ=better, reps=reps,
                                    samples=samples))
                print(json.dumps(records[-1]), flush=True)
    return records


def markdown(meta, records):
    cols = ["torch_ctc 1 thread", "torch_ctc 2 threads", *PEERS]
    lines = [
        f"Measured {meta['date']} on {meta['machine']}, torch {meta['torch']}, pyctcdecode {meta['pyctcdecode']} "
        f"(kenlm {meta['kenlm']}), "
        f"fast-ctc-decode {meta['fast_ctc_decode']}, torchaudio {meta['torchaudio']} with flashlight-text "
        f"{meta['flashlight_text']}; load average {meta.get('load_average', 'n/a')}. Milliseconds per sample, "
        f"medians of up to {meta['reps']} alternating repetitions (a peer stops repeating after "
        f"{meta['budget']:.0f} s; the number of samples and repetitions of each is in the JSON); in brackets, "
        "how many times slower than torch_ctc on 1 thread (for torch_ctc on 2 threads: its speed-up). "
        "After the slash: the share of samples whose top-1 equals torch_ctc's (leading, trailing and repeated "
        "spaces aside); where they differ, how many times torch_ctc's top-1 and the peer's scores higher under "
        "torch_ctc's objective, the exact log P_ctc plus, with an LM, lm_weight times ln P_lm (torch_ctc : peer).",
        f"Command: `{meta['command']}`.",
        "",
        "| shape (N, T, C) | beam | LM | " + " | ".join(cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for r in records:
        base = r["per_sample_s"]["torch_ctc 1 thread"]
        cells = []
        for c in cols:
            t = r["per_sample_s"].get(c)
            if t is None:
                cells.append("-")
            elif c == "torch_ctc 1 thread":
                cells.append(f"{1e3 * t:.2f}")
            elif c == "torch_ctc 2 threads":
                cells.append(f"{1e3 * t:.2f} ({base / t:.1f}x faster)")
            else:
                agree = "" if c.startswith("torch_ctc") else f" / {100 * r['agreement'][c]:.0f}%"
                if c in r["likelier_where_they_differ"] and r["agreement"][c] < 1:
                    agree += " ({} : {})".format(*r["likelier_where_they_differ"][c])
                cells.append(f"{1e3 * t:.2f} ({t / base:.1f}x){agree}")
        lines.append(f"| {r['shape']} {SHAPES[r['shape']]} | {r['beam']} | {r['lm']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    from importlib.metadata import PackageNotFoundError, version

    missing = []  # fail early when the benchmark requirements (requirements-bench.txt) are missing
    needs = {"torchaudio": ["torchaudio", "flashlight-text"],
             "pyctcdecode": ["pyctcdecode"] + (["kenlm"] if "word" in args.lms and "char" in args.shapes else [])}
    for peer in args.peers:
        for package in needs.get(peer, [peer]):
            try:
                version(package)
            except PackageNotFoundError:
                missing.append(package)
    if missing:
        raise SystemExit(f"compare_decode.py: {missing} not installed: pip install -r requirements-bench.txt, "
                         "or leave the peer out with --peers")
    with tempfile.TemporaryDirectory() as directory:
        records = measure(args, directory)
    meta = report.run_metadata("cpu", args.reps, 1, "benchmarks/compare_decode.py", argv or sys.argv[1:])
    meta["budget"] = args.budget
    for package in ("pyctcdecode", "kenlm", "fast-ctc-decode", "torchaudio", "flashlight-text"):
        try:
            meta[package.replace("-", "_")] = version(package)
        except PackageNotFoundError:
            meta[package.replace("-", "_")] = "not installed"
    table = markdown(meta, records)
    print(table)
    if args.out_json:
        report.write_text(args.out_json, json.dumps(dict(meta=meta, records=records), indent=2))
    if args.update_doc:
        report.splice(args.update_doc, "compare-decode", table)


if __name__ == "__main__":
    main()
