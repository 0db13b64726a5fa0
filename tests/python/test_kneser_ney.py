"""The HTR example's Kneser-Ney estimator (examples/htr/kneser_ney.py): hand-worked numbers,
an independent brute-force evaluation of the formula, normalisation, and its ARPA output
read back by torch_ctc.NGramLM."""

import math
import os
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import torch_ctc

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples")))
from htr import kneser_ney as kn  # noqa: E402

EXAMPLES = int(os.environ.get("TORCH_CTC_HYPOTHESIS_EXAMPLES", "60"))
corpora = st.lists(st.lists(st.sampled_from("abc"), min_size=0, max_size=7), min_size=1, max_size=8)


def test_hand_worked_bigram_model():
    # sentences "a" and "a b": bigram counts <s>a 2, a</s> 1, ab 1, b</s> 1 (t1=3, t2=1: all D = 0.6);
    # unigram continuation counts a 1, </s> 2, b 1 (t1=2, t2=1: all D = 0.5); V = {a, b, </s>, <unk>}
    m = kn.KneserNey([["a"], ["a", "b"]], order=2)
    assert m.discounts[2] == pytest.approx((0.6, 0.6, 0.6))
    assert m.discounts[1] == pytest.approx((0.5, 0.5, 0.5))
    gamma0 = 1.5 / 4
    assert m.prob("a") == pytest.approx(0.5 / 4 + gamma0 / 4)
    assert m.prob("</s>") == pytest.approx(1.5 / 4 + gamma0 / 4)
    assert m.prob("zzz") == pytest.approx(gamma0 / 4)  # <unk>
    assert m.prob("a", ["<s>"]) == pytest.approx(1.4 / 2 + 0.3 * m.prob("a"))
    assert m.prob("b", ["<s>"]) == pytest.approx(0.3 * m.prob("b"))
    assert m.prob("b", ["a"]) == pytest.approx(0.4 / 2 + 0.6 * m.prob("b"))
    assert m.prob("<s>", ["a"]) == 0.0


def reference_prob(sentences, order, vocabulary, word, context):
    """The interpolated modified Kneser-Ney formula evaluated straight from the corpus, one
    query at a time (no shared tables with the module)."""
    padded = [["<s>", *s, "</s>"] for s in sentences]
    occurrences = [tuple(s[i - n + 1: i + 1]) for s in padded for i in range(1, len(s))
                   for n in range(1, min(order, i + 1) + 1)]

    def adjusted(g):
        if len(g) == order or g[0] == "<s>":
            return occurrences.count(g)
        return len({o[0] for o in occurrences if len(o) == len(g) + 1 and o[1:] == g})

    def discounts(n):
        grams = {o for o in occurrences if len(o) == n}
        t = [sum(1 for g in grams if adjusted(g) == k) for k in range(5)]
        y = t[1] / (t[1] + 2 * t[2]) if t[1] and t[2] else 0.5
        d = [k - (k + 1) * y * t[k + 1] / t[k] if t[k] and t[k + 1] else y for k in (1, 2, 3)]
        return [min(max(x, 0.01 * k), k - 0.01) for k, x in zip((1, 2, 3), d)]

    def p(h):
        ext = {o for o in occurrences if len(o) == len(h) + 1 and o[:-1] == h}
        if h and not ext:
            return p(h[1:])
        d = discounts(len(h) + 1)
        counts = {g: adjusted(g) for g in ext}
        total = sum(counts.values())
        gamma = sum(d[min(c, 3) - 1] for c in counts.values()) / total
        c = counts.get(h + (word,), 0)
        own = max(c - d[min(c, 3) - 1], 0) / total if c else 0.0
        lower = 1 / len(vocabulary) if not h else p(h[1:])
        return own + gamma * lower

    return p(tuple(context)[max(len(context) - (order - 1), 0):] if order > 1 else ())


@settings(max_examples=EXAMPLES, deadline=None)
@given(corpus=corpora, order=st.integers(1, 4))
def test_matches_the_formula_and_sums_to_one(corpus, order):
    m = kn.KneserNey(corpus, order)
    vocabulary = m.vocabulary
    assert set(vocabulary) >= {"</s>", "<unk>"} and "<s>" not in vocabulary
    contexts = [()] + [h for h in m.total if h] + [("c", "c", "c"), ("<s>", "c")]
    for h in contexts:
        probs = {w: m.prob(w, h) for w in vocabulary}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12), h
        for w in ("a", "</s>"):
            if w in vocabulary:
                expected = reference_prob(corpus, order, vocabulary, w, h)
                assert probs[w] == pytest.approx(expected, rel=1e-12, abs=1e-15), (h, w)


@settings(max_examples=EXAMPLES, deadline=None)
@given(corpus=corpora, order=st.integers(1, 5), queries=st.lists(st.text("abcd", max_size=8), min_size=1, max_size=5))
def test_arpa_output_scores_like_the_model(tmp_path_factory, corpus, order, queries):
    """The back-off ARPA file, read by torch_ctc.NGramLM, gives the interpolated model's
    sentence probabilities, including for unseen n-grams and words outside the text
    (``d`` is in the vocabulary only)."""
    m = kn.KneserNey(corpus, order, vocabulary=["a", "b", "c", "d"])
    path = tmp_path_factory.mktemp("kn") / "lm.arpa"
    m.write_arpa(str(path))
    tokens = ["<blank>", "a", "b", "c", "d"]
    lm = torch_ctc.NGramLM.from_arpa(path, tokens)
    assert lm.order == order
    for q in queries:
        history = ["<s>"]
        expected = 0.0
        for w in [*q, "</s>"]:
            expected += math.log(m.prob(w, history))
            history.append(w)
        assert lm.score([tokens.index(c) for c in q]) == pytest.approx(expected, abs=1e-5), q


def test_char_sentence_and_errors():
    assert kn.char_sentence("a b") == ["a", "<space>", "b"]
    with pytest.raises(ValueError, match="order"):
        kn.KneserNey([["a"]], 0)
    with pytest.raises(ValueError, match="reserved"):
        kn.KneserNey([["a", "</s>"]], 2)
    with pytest.raises(ValueError, match="whitespace"):
        kn.KneserNey([["a"]], 2, vocabulary=["a b"])
