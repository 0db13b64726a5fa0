"""torch_ctc.diagnose: each finding with a positive and a negative case, and ctc_loss(warn=True)."""

import warnings

import pytest
import torch

import torch_ctc
from torch_ctc import diagnostics

T, N, C = 60, 4, 12


@pytest.fixture
def clean():
    """A healthy batch: (T, N, C) log-probs, padded targets, per-sample lengths."""
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(T, N, C, generator=g).log_softmax(-1)
    targets = torch.randint(1, C, (N, 10), generator=g)
    il = torch.tensor([60, 55, 50, 40])
    tl = torch.tensor([10, 8, 6, 4])
    return lp, targets, il, tl


def codes(report):
    return {f.key for f in report}


def test_clean_batch_has_no_finding(clean):
    r = torch_ctc.diagnose(*clean)
    assert r.ok and not r and len(r) == 0
    assert "no problem found" in str(r)
    assert (r.T, r.N, r.C) == (T, N, C)


def test_concatenated_targets_and_lists(clean):
    lp, tg, il, tl = clean
    flat = torch.cat([tg[b, : tl[b]] for b in range(N)])
    assert torch_ctc.diagnose(lp, flat, il.tolist(), tl.tolist()).ok


# ---- layout ---------------------------------------------------------------------------------------


def test_layout_positive(clean):
    lp, tg, il, tl = clean
    r = torch_ctc.diagnose(lp.transpose(0, 1), tg, il, tl)  # (N, T, C) without batch_first
    assert "layout" in r
    f = r.get("layout")[0]
    assert "batch_first=True" in f.advice and "(N, T, C)" in f.message
    # the other checks ran on the corrected view: nothing else is reported
    assert r.codes == ["layout"] and r.T == T
    # The header says the sizes come from the corrected layout, not the one the loss reads.
    head = str(r).splitlines()[0]
    assert "read as (T, N, C), checked as (N, T, C)" in head and f"T={T}" in head


def test_layout_reverse_positive(clean):
    lp, tg, il, tl = clean
    r = torch_ctc.diagnose(lp, tg, il, tl, batch_first=True)  # (T, N, C) with batch_first=True
    assert r.codes == ["layout"]


def test_layout_negative(clean):
    lp, tg, il, tl = clean
    assert "layout" not in torch_ctc.diagnose(lp.transpose(0, 1), tg, il, tl, batch_first=True)
    assert "layout" not in torch_ctc.diagnose(lp, tg, il, tl)


# ---- normalisation --------------------------------------------------------------------------------


def test_not_normalised_positive(clean):
    lp, tg, il, tl = clean
    r = torch_ctc.diagnose(lp * 3 + 2, tg, il, tl)  # raw scores
    assert codes(r) >= {"normalisation:not_normalised"}
    assert "from_logits=True" in r.get("normalisation")[0].advice


def test_softmax_over_time_and_batch_positive(clean):
    lp, tg, il, tl = clean
    x = torch.randn(T, N, C)
    assert "normalisation:time" in codes(torch_ctc.diagnose(x.log_softmax(0), tg, il, tl))
    assert "normalisation:batch" in codes(torch_ctc.diagnose(x.log_softmax(1), tg, il, tl))
    assert "normalisation:probabilities" in codes(torch_ctc.diagnose(x.softmax(-1), tg, il, tl))


def test_normalisation_negative(clean):
    lp, tg, il, tl = clean
    assert "normalisation" not in torch_ctc.diagnose(lp, tg, il, tl)
    assert "normalisation" not in torch_ctc.diagnose(lp.double(), tg, il, tl)
    assert "normalisation" not in torch_ctc.diagnose(lp.to(torch.bfloat16), tg, il, tl, norm_tol=0.1)
    # raw logits are fine with from_logits=True
    assert "normalisation" not in torch_ctc.diagnose(lp * 3 + 2, tg, il, tl, from_logits=True)
    # padding frames beyond input_lengths may hold anything
    padded = lp.clone()
    padded[50:, 2:] = 0.0
    assert "normalisation" not in torch_ctc.diagnose(padded, tg, il, tl)


# ---- lengths --------------------------------------------------------------------------------------


def test_hard_coded_lengths_positive(clean):
    lp, tg, il, tl = clean
    r = torch_ctc.diagnose(lp, tg, torch.full((N,), 32), tl)
    f = r.get("lengths")[0]
    assert f.kind == "hard_coded"
    assert f.details["ignored_frames"] == N * (T - 32)
    assert str(N * (T - 32)) in f.message


def test_lengths_out_of_range_positive(clean):
    lp, tg, il, tl = clean
    r = torch_ctc.diagnose(lp, tg, torch.tensor([60, 70, 50, 40]), tl)
    f = r.get("lengths")[0]
    assert f.kind == "out_of_range" and f.samples == [1]


def test_lengths_negative(clean):
    lp, tg, il, tl = clean
    assert "lengths" not in torch_ctc.diagnose(lp, tg, il, tl)  # per-sample lengths
    assert "lengths" not in torch_ctc.diagnose(lp, tg, torch.full((N,), T), tl)  # all equal to T


# ---- infeasible -----------------------------------------------------------------------------------


def test_infeasible_positive(clean):
    lp, tg, il, tl = clean
    tg = tg.clone()
    tg[2, :6] = torch.tensor([3, 3, 3, 5, 5, 6])  # 6 labels + 3 repeats = 9 frames
    r = torch_ctc.diagnose(lp, tg, torch.tensor([60, 55, 8, 40]), tl)
    f = r.get("infeasible")[0]
    assert f.samples == [2]
    assert f.details["needed_available"] == [(2, 9, 8)]
    assert "sample 2: needs 9 frames, has 8" in f.message


def test_infeasible_negative(clean):
    lp, tg, il, tl = clean
    tg = tg.clone()
    tg[2, :6] = torch.tensor([3, 3, 3, 5, 5, 6])
    assert "infeasible" not in torch_ctc.diagnose(lp, tg, torch.tensor([60, 55, 9, 40]), tl)  # exactly enough


# ---- tokenizer ------------------------------------------------------------------------------------


def test_blank_in_targets_positive(clean):
    lp, tg, il, tl = clean
    tg = tg.clone()
    tg[1, 2] = 0
    tg[3, 9] = 0  # beyond target length 4: padding, not counted
    f = torch_ctc.diagnose(lp, tg, il, tl).get("tokenizer")
    assert [x.kind for x in f] == ["blank_in_targets"] and f[0].samples == [1]
    # a non-zero blank
    tg2 = clean[1].clone()
    tg2[0, 0] = 5
    assert "tokenizer:blank_in_targets" in codes(torch_ctc.diagnose(lp, tg2, il, tl, blank=5))


def test_label_out_of_range_positive(clean):
    lp, tg, il, tl = clean
    tg = tg.clone()
    tg[0, 1] = C
    tg[2, 0] = -1
    f = torch_ctc.diagnose(lp, tg, il, tl).get("tokenizer")
    assert [x.kind for x in f] == ["label_out_of_range"]
    assert f[0].samples == [0, 2] and f[0].details["max_label"] == C


def test_tokenizer_negative(clean):
    lp, tg, il, tl = clean
    tg = tg.clone()
    tg[3, 5:] = -1  # padding with -1 beyond the target length is fine
    tg[0, :] = C - 1
    assert "tokenizer" not in torch_ctc.diagnose(lp, tg, il, torch.tensor([1, 8, 6, 4]))


# ---- blank collapse -------------------------------------------------------------------------------


def test_blank_collapse_positive(clean):
    _, tg, il, tl = clean
    x = torch.full((T, N, C), -8.0)
    x[..., 0] = 0.0
    x[0, :, 3] = 1.0  # "first character, then blanks"
    r = torch_ctc.diagnose(x.log_softmax(-1), tg, il, tl)
    f = r.get("blank_collapse")[0]
    assert f.severity == "warning" and f.samples == [0, 1, 2, 3]
    assert r.stats["blank_argmax_share"] > 0.95


def test_short_outputs_collapse_positive(clean):
    _, tg, il, tl = clean
    x = torch.full((T, N, C), -8.0)
    x[..., 0] = 0.0
    x[:25, :, 4] = 1.0  # blank wins only about half of the frames, but every output is "4"
    r = torch_ctc.diagnose(x.log_softmax(-1), tg, il, tl)
    assert "blank_collapse:short_outputs" in codes(r)


def test_blank_collapse_negative(clean):
    lp, tg, il, tl = clean
    x = torch.full((T, N, C), -8.0)
    x[..., 0] = 0.0
    x[::5, :, 4] = 1.0
    x[2::5, :, 5] = 1.0  # blank 60% of frames, outputs "4545...": a healthy peaky model
    assert "blank_collapse" not in torch_ctc.diagnose(x.log_softmax(-1), tg, il, tl)
    assert "blank_collapse" not in torch_ctc.diagnose(lp, tg, il, tl)


# ---- robustness, printing, warnings ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("not a tensor", torch.ones(2, 3), [1, 1], [1, 1]),
        (torch.randn(5, 2, 3).log_softmax(-1), torch.ones(2, 3, dtype=torch.long), [5, 5, 5], [1, 1]),
        (torch.randn(5, 2, 3).log_softmax(-1), torch.ones(2, 3, dtype=torch.long), [5, 5], [4, 1]),
        (torch.randn(5, 2, 3).log_softmax(-1), torch.ones(4, dtype=torch.long), [5, 5], [3, 3]),
        (torch.randn(5, 2, 3).log_softmax(-1), torch.ones(2, 3, dtype=torch.long), [0.5, 1.0], [1, 1]),
        (torch.randn(5, 3), torch.ones(1, 3, dtype=torch.long), [5], [2]),
        (torch.randn(0, 2, 3), torch.ones(2, 3, dtype=torch.long), [0, 0], [0, 0]),
    ],
)
def test_never_raises(args):
    r = torch_ctc.diagnose(*args)
    str(r)


def test_report_str_lists_everything(clean):
    lp, tg, il, tl = clean
    tg = tg.clone()
    tg[1, 0] = 0
    r = torch_ctc.diagnose(lp.exp(), tg, torch.full((N,), 30), tl)
    s = str(r)
    assert "normalisation" in s and "lengths" in s and "tokenizer" in s and "fix:" in s and "samples: 1" in s


def test_ctc_loss_warn_emits_each_finding_once(clean):
    lp, tg, il, tl = clean
    diagnostics.reset_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            torch_ctc.ctc_loss(lp * 2, tg, torch.full((N,), 40), tl, warn=True)
    msgs = [str(w.message) for w in caught if issubclass(w.category, diagnostics.CTCDiagnosticWarning)]
    assert len(msgs) == 2
    assert any("normalisation" in m for m in msgs) and any("hard-coded" in m for m in msgs)
    diagnostics.reset_warnings()


def test_ctc_loss_warn_off_by_default_and_module_switch(clean):
    lp, tg, il, tl = clean
    diagnostics.reset_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch_ctc.ctc_loss(lp * 2, tg, il, tl)
        assert not caught
        torch_ctc.set_warnings(True)
        try:
            torch_ctc.CTCLoss()(lp * 2, tg, il, tl)
        finally:
            torch_ctc.set_warnings(False)
        assert any("normalisation" in str(w.message) for w in caught)
    assert not diagnostics.warnings_enabled()
    diagnostics.reset_warnings()


def test_warn_then_raise_on_invalid_labels(clean):
    lp, tg, il, tl = clean
    tg = tg.clone()
    tg[0, 0] = 0
    diagnostics.reset_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Exception, match="blank"):
            torch_ctc.ctc_loss(lp, tg, il, tl, warn=True)
    assert any("blank_in_targets" in str(w.message) for w in caught)
    diagnostics.reset_warnings()


def test_exported():
    assert "diagnose" in torch_ctc.__all__ and torch_ctc.diagnose is diagnostics.diagnose
