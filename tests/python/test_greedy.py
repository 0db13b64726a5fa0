"""torch_ctc.greedy_decode against a plain argmax-and-collapse, on every dtype and
layout, and its errors. (The CUDA kernels are checked in the simulator suite.)"""

import pytest
import torch

import torch_ctc
from reference import collapse

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]


def reference(lp_tnc, input_lengths, blank):
    out = []
    for n, frames in enumerate(input_lengths):
        best = lp_tnc[:frames, n].float().argmax(-1).tolist()
        tokens, starts, prev = [], [], None
        for t, label in enumerate(best):
            if label != prev and label != blank:
                tokens.append(label)
                starts.append(t)
            prev = label
        assert tuple(tokens) == collapse(best, blank)
        out.append((tokens, starts))
    return out


def check(result, expected, T):
    tokens, lengths, frames = result
    assert tokens.dtype == lengths.dtype == frames.dtype == torch.int64
    for n, (want, starts) in enumerate(expected):
        assert lengths[n] == len(want)
        assert tokens[n, : len(want)].tolist() == want and (tokens[n, len(want):] == -1).all()
        assert frames[n, : len(want)].tolist() == starts and (frames[n, len(want):] == -1).all()
        assert tokens.shape[1] == T


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["time_major", "batch_first", "class_stride", "channels_first"])
@pytest.mark.parametrize("blank", [0, 4, 7])
def test_matches_argmax_and_collapse(dtype, layout, blank):
    g = torch.Generator().manual_seed(blank)
    T, N, C = 40, 5, 8
    # Peaked and repetitive, so that repeats and blanks between repeats occur.
    lp = (torch.randn(T, N, C, generator=g) * 3).log_softmax(-1).to(dtype)
    il = [40, 33, 1, 0, 27]
    expected = reference(lp, il, blank)
    x = {"time_major": lp, "batch_first": lp.transpose(0, 1).contiguous(),
         "class_stride": torch.repeat_interleave(lp, 2, -1)[..., ::2],
         "channels_first": lp.permute(2, 0, 1).contiguous().permute(1, 2, 0)}[layout]
    check(torch_ctc.greedy_decode(x, il, blank, batch_first=layout == "batch_first"), expected, T)


def test_ties_go_to_the_lowest_class_and_nan_wins():
    lp = torch.zeros(4, 1, 3)  # all equal: class 0 (blank) everywhere
    assert torch_ctc.greedy_decode(lp, [4]).lengths.item() == 0
    lp[1, 0, 2] = float("nan")
    lp[2, 0, 1] = 1.0
    out = torch_ctc.greedy_decode(lp, [4])
    assert out.tokens[0, :2].tolist() == [2, 1] and out.frames[0, :2].tolist() == [1, 2]
    assert torch.argmax(lp[1, 0]).item() == 2  # as torch.argmax


def test_unbatched_and_tensor_lengths():
    lp = torch.randn(10, 6).log_softmax(-1)
    out = torch_ctc.greedy_decode(lp, torch.tensor(10, dtype=torch.int32))
    assert out.tokens.shape == (10,) and out.lengths.dim() == 0
    batched = torch_ctc.greedy_decode(lp.unsqueeze(1), [10])
    assert torch.equal(out.tokens, batched.tokens[0]) and torch.equal(out.frames, batched.frames[0])


def test_errors_name_the_argument():
    lp = torch.randn(5, 2, 4)
    with pytest.raises(ValueError, match=r"input_lengths\[1\] = 6 is greater than the number of frames"):
        torch_ctc.greedy_decode(lp, [5, 6])
    with pytest.raises(ValueError, match=r"input_lengths has 3 entries but log_probs has a batch of N = 2"):
        torch_ctc.greedy_decode(lp, [5, 5, 5])
    with pytest.raises(ValueError, match=r"blank = 9 must be in \[0, C\)"):
        torch_ctc.greedy_decode(lp, [5, 5], blank=9)
    with pytest.raises(TypeError, match=r"input_lengths must be an int32/int64 tensor"):
        torch_ctc.greedy_decode(lp, "5")


def test_meta_shapes():
    t, l, f = torch.ops.torch_ctc._greedy_decode(torch.randn(7, 3, 5, device="meta"),
                                                  torch.ones(3, dtype=torch.long, device="meta"), 0, False)
    assert t.shape == (3, 7) and l.shape == (3,) and f.shape == (3, 7)
