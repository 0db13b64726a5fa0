"""torch_ctc.beam_search and NGramLM.

The contract is checked by brute force on tiny problems (every path enumerated), with
and without a character bigram LM written here and scored by an independent ARPA
reader below; then nbest order, timesteps, threads and the GIL, the ARPA reader on
hand-written files, word LMs, pruning, every error, and agreement with pyctcdecode.
"""

from __future__ import annotations

import itertools
import math
import threading
import time

import pytest
import torch

import torch_ctc
from reference import collapse

LN10 = math.log(10.0)


# --------------------------------------------------------------------------
# An independent back-off ARPA scorer (for the brute force)
# --------------------------------------------------------------------------
def parse_arpa(text):
    """{words tuple: (ln prob, ln backoff)}, order."""
    grams, order, section = {}, 0, 0
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("ngram "):
            order = max(order, int(line[6:].split("=")[0]))
        elif line.startswith("\\") and line.endswith("-grams:"):
            section = int(line[1:].split("-")[0])
        elif line and section and not line.startswith("\\"):
            f = line.split()
            words = tuple(f[1 : 1 + section])
            backoff = float(f[1 + section]) if len(f) > 1 + section else 0.0
            grams[words] = (float(f[0]) * LN10, backoff * LN10)
    return grams, order


def arpa_logprob(grams, order, history, word):
    h = tuple(history[-(order - 1):]) if order > 1 else ()
    total = 0.0
    while True:
        if h + (word,) in grams:
            return total + grams[h + (word,)][0]
        if not h:
            return total + grams[("<unk>",)][0] if ("<unk>",) in grams else -math.inf
        total += grams.get(h, (0.0, 0.0))[1]
        h = h[1:]


def arpa_sentence(grams, order, words):
    history, total = ["<s>"], 0.0
    for w in list(words) + ["</s>"]:
        total += arpa_logprob(grams, order, history, w)
        history.append(w)
    return total


BIGRAM = """
\\data\\
ngram 1=6
ngram 2=6

\\1-grams:
-1.0 </s>
-99 <s> -0.3
-0.6 a -0.2
-0.7 b -0.25
-0.9 c -0.1
-1.5 <unk>

\\2-grams:
-0.2 <s> a
-0.5 a b
-0.4 b a
-0.3 b </s>
-0.8 c c
-0.6 a </s>

\\end\\
"""


@pytest.fixture
def bigram_file(tmp_path):
    path = tmp_path / "bigram.arpa"
    path.write_text(BIGRAM)
    return path


# --------------------------------------------------------------------------
# Brute force: every path of T frames over C classes
# --------------------------------------------------------------------------
def ctc_scores(lp_tc, blank):
    """{label sequence: ln P_ctc(y | x)} over every path."""
    T, C = lp_tc.shape
    lp = lp_tc.double()
    sums = {}
    for path in itertools.product(range(C), repeat=T):
        y = collapse(path, blank)
        s = float(lp[torch.arange(T), list(path)].sum())
        sums[y] = torch.logaddexp(torch.tensor(sums[y]), torch.tensor(s)).item() if y in sums else s
    return sums


def assert_top_matches(hyps, expected_scores, nbest):
    """The returned hypotheses are the top-nbest of the expected scores, in order, to 1e-4."""
    ranked = sorted(expected_scores.items(), key=lambda kv: -kv[1])
    assert len(hyps) == min(nbest, len(ranked))
    for h, (y, score) in zip(hyps, ranked):
        assert abs(h.score - score) < 1e-4, (h, y, score)
        assert abs(expected_scores[tuple(h.tokens)] - h.score) < 1e-4  # its own score too (ties may reorder)


@pytest.mark.parametrize("seed", range(12))
def test_brute_force_without_lm(seed):
    g = torch.Generator().manual_seed(seed)
    T, C = 2 + seed % 5, 2 + seed % 3
    blank = seed % C
    lp = (torch.randn(T, 1, C, generator=g, dtype=torch.float64) * 2).log_softmax(-1)
    expected = ctc_scores(lp[:, 0], blank)
    hyps = torch_ctc.beam_search(lp, [T], beam_size=2000, nbest=5, blank=blank)[0]
    assert_top_matches(hyps, expected, 5)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("token_score", [0.9, -0.6])
def test_brute_force_token_score_without_lm(seed, token_score):
    """token_score applies with no LM too: score(y) = log P_ctc(y | x) + token_score * |y|."""
    g = torch.Generator().manual_seed(50 + seed)
    T, C = 2 + seed % 5, 3
    lp = (torch.randn(T, 1, C, generator=g, dtype=torch.float64) * 2).log_softmax(-1)
    expected = {y: s + token_score * len(y) for y, s in ctc_scores(lp[:, 0], 0).items()}
    hyps = torch_ctc.beam_search(lp, [T], beam_size=2000, nbest=4, token_score=token_score)[0]
    assert_top_matches(hyps, expected, 4)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("lm_weight,token_score", [(0.5, 0.0), (1.3, -0.7)])
def test_brute_force_with_a_character_bigram(bigram_file, seed, lm_weight, token_score):
    g = torch.Generator().manual_seed(100 + seed)
    T, C = 3 + seed % 4, 4
    tokens = ["<blank>", "a", "b", "c"]
    lm = torch_ctc.NGramLM.from_arpa(bigram_file, tokens)
    grams, order = parse_arpa(BIGRAM)
    lp = (torch.randn(T, 1, C, generator=g, dtype=torch.float64) * 2).log_softmax(-1)
    ctc = ctc_scores(lp[:, 0], 0)
    expected = {y: s + lm_weight * arpa_sentence(grams, order, [tokens[t] for t in y]) + token_score * len(y)
                for y, s in ctc.items()}
    for y in list(expected)[:20]:  # the LM scores the same as the independent reader
        assert abs(lm.score(list(y)) - arpa_sentence(grams, order, [tokens[t] for t in y])) < 1e-9
    hyps = torch_ctc.beam_search(lp, [T], beam_size=2000, nbest=4, lm=lm, lm_weight=lm_weight,
                                 token_score=token_score)[0]
    assert_top_matches(hyps, expected, 4)


def valid_timesteps(tokens, steps, frames):
    """Some CTC path of `frames` frames emits each token first at its timestep."""
    if len(tokens) != len(steps):
        return False
    for k in range(len(steps)):
        if not 0 <= steps[k] < frames:
            return False
        if k and steps[k] <= steps[k - 1]:
            return False
        if k and tokens[k] == tokens[k - 1] and steps[k] - steps[k - 1] < 2:  # a blank between repeats
            return False
    return True


def peaky(T, N, C, seed, scale=4.0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, N, C, generator=g) * scale).log_softmax(-1).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_nbest_order_timesteps_and_layouts(dtype):
    lp = peaky(40, 4, 9, 3, dtype=dtype)
    il = [40, 33, 20, 1]
    out = torch_ctc.beam_search(lp, il, beam_size=12, nbest=6)
    assert len(out) == 4
    for n, hyps in enumerate(out):
        assert 1 <= len(hyps) <= 6
        assert all(a.score >= b.score for a, b in zip(hyps, hyps[1:]))
        assert len({tuple(h.tokens) for h in hyps}) == len(hyps)
        for h in hyps:
            assert valid_timesteps(h.tokens, h.timesteps, il[n]) and 0 not in h.tokens
    # The same from a batch-first copy, a class-strided view and the unbatched form.
    same = torch_ctc.beam_search(lp.transpose(0, 1).contiguous(), il, beam_size=12, nbest=6, batch_first=True)
    wide = torch.repeat_interleave(lp, 2, -1)[..., ::2]
    assert same == out and torch_ctc.beam_search(wide, il, beam_size=12, nbest=6) == out
    assert torch_ctc.beam_search(lp[:, 2], 20, beam_size=12, nbest=6) == out[2]


def test_all_blank_input_gives_the_empty_hypothesis():
    lp = torch.full((10, 2, 5), -30.0)
    lp[:, :, 0] = 0.0
    out = torch_ctc.beam_search(lp, [10, 0], beam_size=4, nbest=3)
    assert out[0][0].tokens == [] and out[0][0].timesteps == [] and abs(out[0][0].score) < 1e-6
    assert out[1] == [torch_ctc.Hypothesis([], 0.0, [])]


def test_greedy_agrees_with_the_beam_on_near_one_hot_input():
    lp = peaky(60, 6, 12, 7, scale=40.0)
    beams = torch_ctc.beam_search(lp, [60] * 6, beam_size=1)
    greedy = torch_ctc.greedy_decode(lp, [60] * 6)
    for n in range(6):
        assert beams[n][0].tokens == greedy.tokens[n, : greedy.lengths[n]].tolist()


def test_same_result_on_one_and_two_threads_and_the_gil_is_released():
    lp = peaky(1500, 8, 40, 11)
    torch.set_num_threads(1)
    one = torch_ctc.beam_search(lp, [1500] * 8, beam_size=32, nbest=3)
    torch.set_num_threads(2)
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    worker = threading.Thread(target=count)
    worker.start()
    start = time.perf_counter()
    two = torch_ctc.beam_search(lp, [1500] * 8, beam_size=32, nbest=3)
    elapsed = time.perf_counter() - start
    stop.set()
    worker.join()
    assert one == two
    # The other thread ran during the decode: about one tick a millisecond, if the GIL was free.
    assert len(ticks) >= 0.25 * elapsed * 1000, (len(ticks), elapsed)


def test_pruning_options():
    lp = peaky(50, 3, 20, 5)
    full = torch_ctc.beam_search(lp, [50] * 3, beam_size=16)
    cut = torch_ctc.beam_search(lp, [50] * 3, beam_size=16, token_cutoff=5, beam_threshold=20.0)
    for a, b in zip(full, cut):  # peaky input: the likeliest hypothesis survives pruning
        assert a[0].tokens == b[0].tokens
    skipped = torch_ctc.beam_search(lp, [50] * 3, beam_size=16, blank_skip_threshold=0.0)  # every frame skipped
    assert all(h[0].tokens == [] for h in skipped)


def test_decoder_object_and_cuda_fallback_shape():
    lp = peaky(20, 2, 6, 1)
    decoder = torch_ctc.BeamSearchDecoder(beam_size=8, nbest=2)
    assert decoder(lp, [20, 18]) == torch_ctc.beam_search(lp, [20, 18], beam_size=8, nbest=2)
    with pytest.raises(TypeError, match="unknown options"):
        torch_ctc.BeamSearchDecoder(beam=8)


def test_errors(bigram_file):
    lp = peaky(10, 2, 4, 2)
    with pytest.raises(ValueError, match=r"beam_size = 0 must be at least 1"):
        torch_ctc.beam_search(lp, [10, 10], beam_size=0)
    with pytest.raises(ValueError, match=r"nbest = 0 must be at least 1"):
        torch_ctc.beam_search(lp, [10, 10], nbest=0)
    with pytest.raises(ValueError, match=r"input_lengths\[1\] = 11 is greater than the number of frames"):
        torch_ctc.beam_search(lp, [10, 11])
    lm = torch_ctc.NGramLM.from_arpa(bigram_file, ["<blank>", "a", "b"])
    with pytest.raises(ValueError, match=r"token list has 3 entries but log_probs has C = 4 classes"):
        torch_ctc.beam_search(lp, [10, 10], lm=lm)
    with pytest.raises(ValueError, match=r"no word for token 3 \('d'\)"):
        torch_ctc.NGramLM.from_arpa(bigram_file, ["<blank>", "a", "b", "d"])
    with pytest.raises(ValueError, match=r"lm_weight = -1.0* must be >= 0"):
        torch_ctc.beam_search(lp, [10, 10], lm=torch_ctc.NGramLM.from_arpa(bigram_file, ["_", "a", "b", "c"]),
                              lm_weight=-1.0)
    with pytest.raises(ValueError, match=r"loaded for blank = 0 but beam_search got blank = 1"):
        torch_ctc.beam_search(lp, [10, 10], lm=torch_ctc.NGramLM.from_arpa(bigram_file, ["_", "a", "b", "c"]), blank=1)
    with pytest.raises(TypeError, match="lm must be a torch_ctc.NGramLM"):
        torch_ctc.beam_search(lp, [10, 10], lm="model.arpa")


# --------------------------------------------------------------------------
# The ARPA reader
# --------------------------------------------------------------------------
TRIGRAM = """some tool's preamble, ignored

\\data\\
ngram 1=5
ngram 2=3
ngram 3=1

\\1-grams:
-1.0\t</s>
-99\t<s>\t-0.5
-0.7\tx\t-0.3
-0.8\ty\t-0.2
-2.0\t<unk>

\\2-grams:
-0.4\t<s> x\t-0.1
-0.3\tx y\t-0.6
-0.2\ty </s>

\\3-grams:
-0.05\t<s> x y

\\end\\
"""


def test_arpa_backoff_chains_missing_ngrams_and_unk(tmp_path):
    path = tmp_path / "tri.arpa"
    path.write_text(TRIGRAM)
    tokens = ["_", "x", "y", "z"]  # z: not a word of the model, so... a character LM refuses it
    with pytest.raises(ValueError, match=r"no word for token 3 \('z'\)"):
        torch_ctc.NGramLM.from_arpa(path, tokens)
    lm = torch_ctc.NGramLM.from_arpa(path, ["_", "x", "y"])
    assert lm.order == 3 and len(lm) == 5
    grams, order = parse_arpa(TRIGRAM)
    for y in [(), (1,), (2,), (1, 2), (2, 1), (1, 2, 1), (2, 2, 2), (1, 1, 2, 2)]:
        words = [["_", "x", "y"][t] for t in y]
        assert abs(lm.score(list(y)) - arpa_sentence(grams, order, words)) < 1e-9, y
    # <s> x y </s>: the trigram, then back off from "x y" (its weight) to the bigram "y </s>".
    by_hand = (-0.4 - 0.05 + (-0.6) + (-0.2)) * LN10
    assert abs(lm.score([1, 2]) - by_hand) < 1e-9


def test_word_lm_scores_words_at_delimiters_and_the_last_word_at_the_end(tmp_path):
    path = tmp_path / "words.arpa"
    path.write_text("""\\data\\
ngram 1=5
ngram 2=2

\\1-grams:
-1.0 </s>
-99 <s> -0.1
-0.5 ab -0.2
-0.9 ba -0.3
-3.0 <unk>

\\2-grams:
-0.1 <s> ab
-0.2 ab ba

\\end\\
""")
    tokens = ["_", "a", "b", " "]
    lm = torch_ctc.NGramLM.from_arpa(path, tokens, word_delimiter=3)
    grams, order = parse_arpa(path.read_text())
    cases = {(1, 2): ["ab"], (1, 2, 3, 2, 1): ["ab", "ba"], (1, 2, 3): ["ab"], (3, 3, 1, 2, 3, 3): ["ab"],
             (2, 2): ["<unk>"], (): []}
    for y, words in cases.items():
        assert abs(lm.score(list(y)) - arpa_sentence(grams, order, words)) < 1e-9, (y, words)
    assert repr(lm).startswith("NGramLM(order=2, vocabulary=5, word (delimiter 3)")


@pytest.mark.parametrize("text,match", [
    ("ngram 1=1\n", r"no \\data\\ header"),
    ("\\data\\\nngram 1=x\n\\1-grams:\n-1 a\n\\end\\\n", r"line 2: malformed 'ngram 1=x'"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0 </s>\n-0.5\n\\end\\\n", r"line 6: 1 fields in a 1-gram line"),
    ("\\data\\\nngram 1=2\n\\1-grams:\n-1.0 </s>\nabc x\n\\end\\\n", r"line 5: the probability 'abc' is not a number"),
    ("\\data\\\nngram 1=2\n\\1-grams:\n-1.0 </s>\nnan x\n\\end\\\n", r"line 5: the probability 'nan' is not a number"),
    ("\\data\\\nngram 1=2\n\\1-grams:\n-1.0 </s>\n-1 x inf\n\\end\\\n", r"line 5: the backoff weight 'inf' is not"),
    ("\\data\\\nngram 1=2\n\\1-grams:\n-1.0 </s>\n1e999 x\n\\end\\\n", r"line 5: the probability '1e999' is not"),
    ("\\data\\\nngram 1=3\n\\1-grams:\n-1.0 </s>\n-1 x\n\\end\\\n", r"line 3: the \\1-grams: section has 2 entries but the header says 3"),
    ("\\data\\\nngram 1=1\n\\1-grams:\n-1.0 </s>\n", r"no \\end\\ line"),
    ("\\data\\\nngram 1=2\n\\1-grams:\n-1.0 </s>\n-1.0 </s>\n\\end\\\n", r"line 5: this n-gram is listed twice"),
    ("\\data\\\nngram 1=1\n\\1-grams:\n-1.0 x\n\\end\\\n", r"the model has no </s>"),
    ("\\data\\\nngram 1=1\n\\1-grams:\n-1.0 </s> nan\n\\end\\\n", r"line 4: the backoff weight 'nan' is not"),
    ("\\data\\\nngram 1=2\n\\1-grams:\n-1.0 </s>\n-inf x -inf\n\\end\\\n", None),  # -inf: probability 0
])
def test_malformed_arpa_names_the_line(tmp_path, text, match):
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    if match is None:
        torch_ctc.NGramLM.from_arpa(path, ["_"])
        return
    with pytest.raises(ValueError, match=match):
        torch_ctc.NGramLM.from_arpa(path, ["_"])


def test_missing_file():
    with pytest.raises(ValueError, match=r"cannot open the ARPA file '/no/such.arpa'"):
        torch_ctc.NGramLM.from_arpa("/no/such.arpa", ["_"])


# --------------------------------------------------------------------------
# Against pyctcdecode (no LM, pruning off)
# --------------------------------------------------------------------------
def test_top1_agrees_with_pyctcdecode():
    pyctcdecode = pytest.importorskip("pyctcdecode")
    import numpy as np

    labels = [""] + list("abcdefghijklmnopqrstuvwxy")  # blank first, 26 classes
    decoder = pyctcdecode.build_ctcdecoder(labels)
    lp = peaky(80, 60, 26, 21, scale=10.0)  # peaky, as trained models' outputs are
    ours = torch_ctc.beam_search(lp, [80] * 60, beam_size=16)
    agree = 0
    for n in range(60):
        beams = decoder.decode_beams(lp[:, n].numpy().astype(np.float32), beam_width=16, beam_prune_logp=-1e9,
                                     token_min_logp=-1e9, prune_history=False)
        agree += beams[0][0] == "".join(labels[t] for t in ours[n][0].tokens)
    assert agree >= 0.97 * 60, agree
