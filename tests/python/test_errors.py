"""Bad input raises a clear error that names the offending argument.

torch.nn.functional.ctc_loss checks none of the label / length cases below
(it reads out of bounds or returns garbage); torch_ctc must reject them.
"""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import torch_ctc

ERRS = (ValueError, TypeError, RuntimeError, IndexError)

T, N, C = 10, 3, 5


def base():
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(T, N, C, generator=g, dtype=torch.float64).log_softmax(-1)
    targets = torch.tensor([[1, 2, 3, 0], [4, 4, 0, 0], [1, 2, 3, 4]])
    il = torch.tensor([10, 8, 9])
    tl = torch.tensor([3, 2, 4])
    return dict(log_probs=lp, targets=targets, input_lengths=il, target_lengths=tl)


def call(**over):
    args = base()
    kw = {}
    for k, v in over.items():
        if k in args:
            args[k] = v
        else:
            kw[k] = v
    return torch_ctc.ctc_loss(args["log_probs"], args["targets"], args["input_lengths"], args["target_lengths"],
                              **kw)


def test_base_is_valid():
    out = call(reduction="none")
    assert torch.isfinite(out).all()
    out = call(targets=torch.tensor([1, 2, 3, 4, 4, 1, 2, 3, 4]), reduction="none")
    assert torch.isfinite(out).all()


BAD = {
    # log_probs
    "log_probs_int": (dict(log_probs=torch.zeros(T, N, C, dtype=torch.long)), "log_probs"),
    "log_probs_int32": (dict(log_probs=torch.zeros(T, N, C, dtype=torch.int32)), "log_probs"),
    "log_probs_bool": (dict(log_probs=torch.zeros(T, N, C, dtype=torch.bool)), "log_probs"),
    "log_probs_1d": (dict(log_probs=torch.zeros(T, dtype=torch.float64)), "log_probs"),
    "log_probs_4d": (dict(log_probs=torch.zeros(T, N, C, 1, dtype=torch.float64)), "log_probs"),
    "log_probs_0d": (dict(log_probs=torch.zeros((), dtype=torch.float64)), "log_probs"),
    "log_probs_none": (dict(log_probs=None), "log_probs"),
    "log_probs_str": (dict(log_probs="abc"), "log_probs"),
    "log_probs_list": (dict(log_probs=[[[0.0] * C] * N] * T), "log_probs"),
    # C == 0
    "zero_classes": (dict(log_probs=torch.zeros(T, N, 0, dtype=torch.float64), blank=0), "log_probs|blank|class|C"),
    # targets
    "targets_float": (dict(targets=torch.tensor([[1.0, 2, 3, 0], [4, 4, 0, 0], [1, 2, 3, 4]])), "targets"),
    "targets_3d": (dict(targets=torch.ones(N, 4, 1, dtype=torch.long)), "targets"),
    "targets_none": (dict(targets=None), "targets"),
    "targets_str": (dict(targets="abc"), "targets"),
    "targets_batch_mismatch": (dict(targets=torch.ones(N + 1, 4, dtype=torch.long)), "targets"),
    "concat_numel_short": (dict(targets=torch.tensor([1, 2, 3, 4, 4, 1, 2, 3])), "target"),
    "concat_numel_long": (dict(targets=torch.tensor([1, 2, 3, 4, 4, 1, 2, 3, 4, 1])), "target"),
    "padded_too_narrow": (dict(targets=torch.tensor([[1, 2, 3], [4, 4, 0], [1, 2, 3]])), "target"),
    "label_eq_C_padded": (dict(targets=torch.tensor([[1, 2, 5, 0], [4, 4, 0, 0], [1, 2, 3, 4]])), "target"),
    "label_neg_padded": (dict(targets=torch.tensor([[1, 2, 3, 0], [4, -1, 0, 0], [1, 2, 3, 4]])), "target"),
    "label_huge_int32": (dict(targets=torch.tensor([[1, 2, 3, 0], [4, 4, 0, 0], [1, 2, 3, 2**30]],
                                                   dtype=torch.int32)), "target"),
    "label_eq_C_concat": (dict(targets=torch.tensor([1, 2, 3, 4, 4, 1, 2, 3, 5])), "target"),
    "label_neg_concat": (dict(targets=torch.tensor([-3, 2, 3, 4, 4, 1, 2, 3, 4])), "target"),
    "label_is_blank_padded": (dict(targets=torch.tensor([[1, 0, 3, 0], [4, 4, 0, 0], [1, 2, 3, 4]])),
                              "blank|target"),
    "label_is_blank_concat": (dict(targets=torch.tensor([1, 2, 3, 4, 4, 1, 2, 3, 4]), blank=2), "blank|target"),
    "label_is_blank_last": (dict(targets=torch.tensor([[1, 2, 3, 0], [4, 4, 0, 0], [1, 2, 3, 4]]), blank=4),
                            "blank|target"),
    # lengths
    "input_lengths_2d": (dict(input_lengths=torch.tensor([[10, 8, 9]])), "input_lengths"),
    "target_lengths_2d": (dict(target_lengths=torch.tensor([[3, 2, 4]])), "target_lengths"),
    "input_lengths_float": (dict(input_lengths=torch.tensor([10.0, 8.0, 9.0])), "input_lengths"),
    "target_lengths_float": (dict(target_lengths=torch.tensor([3.0, 2.0, 4.0])), "target_lengths"),
    "input_lengths_float_list": (dict(input_lengths=[10.0, 8.5, 9.0]), "input_lengths"),
    "input_lengths_count": (dict(input_lengths=torch.tensor([10, 8])), "input_lengths"),
    "input_lengths_count_list": (dict(input_lengths=[10, 8, 9, 9]), "input_lengths"),
    "target_lengths_count": (dict(target_lengths=torch.tensor([3, 2])), "target_lengths"),
    "target_lengths_count_list": (dict(target_lengths=[3, 2, 4, 1]), "target_lengths"),
    "input_lengths_negative": (dict(input_lengths=torch.tensor([10, -1, 9])), "input_lengths"),
    "target_lengths_negative": (dict(target_lengths=torch.tensor([3, -2, 4])), "target_lengths"),
    "target_lengths_negative_list": (dict(target_lengths=[3, 2, -4]), "target_lengths"),
    "input_lengths_gt_T": (dict(input_lengths=torch.tensor([10, 11, 9])), "input_lengths"),
    "input_lengths_gt_T_list": (dict(input_lengths=[10, 8, 100]), "input_lengths"),
    "input_lengths_none": (dict(input_lengths=None), "input_lengths"),
    "target_lengths_none": (dict(target_lengths=None), "target_lengths"),
    "input_lengths_str": (dict(input_lengths="abc"), "input_lengths"),
    "target_lengths_str": (dict(target_lengths="abc"), "target_lengths"),
    # blank
    "blank_eq_C": (dict(blank=C), "blank"),
    "blank_negative": (dict(blank=-1), "blank"),
    "blank_huge": (dict(blank=2**40), "blank"),
    "blank_float": (dict(blank=1.5), "blank"),
    # reduction
    "reduction_unknown": (dict(reduction="avg"), "reduction"),
    "reduction_empty": (dict(reduction=""), "reduction"),
    "reduction_none_object": (dict(reduction=None), "reduction"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input(case):
    over, pattern = BAD[case]
    with pytest.raises(ERRS, match=pattern):
        call(**over)


@pytest.mark.parametrize("case", ["label_eq_C_padded", "input_lengths_gt_T", "blank_eq_C", "label_is_blank_padded",
                                  "concat_numel_short", "target_lengths_negative"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_bad_input_batch_first(case, batch_first):
    over, pattern = BAD[case]
    over = dict(over)
    lp = over.pop("log_probs", base()["log_probs"])
    if batch_first:
        lp = lp.transpose(0, 1).contiguous()
    with pytest.raises(ERRS, match=pattern):
        call(log_probs=lp, batch_first=batch_first, **over)


@pytest.mark.parametrize("case", ["label_eq_C_padded", "label_neg_concat", "input_lengths_gt_T", "blank_eq_C",
                                  "label_is_blank_padded", "padded_too_narrow", "target_lengths_negative"])
def test_bad_input_from_logits(case):
    over, pattern = BAD[case]
    with pytest.raises(ERRS, match=pattern):
        call(from_logits=True, **over)


@pytest.mark.parametrize("case", ["label_eq_C_padded", "input_lengths_gt_T", "blank_eq_C", "label_is_blank_padded",
                                  "padded_too_narrow", "input_lengths_count", "target_lengths_negative"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_bad_input_other_dtypes(case, dtype):
    over, pattern = BAD[case]
    with pytest.raises(ERRS, match=pattern):
        call(log_probs=base()["log_probs"].to(dtype), **over)


def test_bad_input_requires_grad():
    lp = base()["log_probs"].requires_grad_(True)
    with pytest.raises(ERRS, match="target"):
        call(log_probs=lp, targets=torch.tensor([[1, 2, 7, 0], [4, 4, 0, 0], [1, 2, 3, 4]]))


# -------------------------------------------------------------------------- unbatched
def _unbatched(**over):
    g = torch.Generator().manual_seed(1)
    args = dict(log_probs=torch.randn(T, C, generator=g, dtype=torch.float64).log_softmax(-1),
                targets=torch.tensor([1, 2, 3]), input_lengths=T, target_lengths=3)
    kw = {}
    for k, v in over.items():
        (args if k in args else kw)[k] = v
    return torch_ctc.ctc_loss(args["log_probs"], args["targets"], args["input_lengths"], args["target_lengths"],
                              **kw)


def test_unbatched_base_is_valid():
    assert torch.isfinite(_unbatched(reduction="none"))


@pytest.mark.parametrize(
    "over,pattern",
    [
        (dict(input_lengths=T + 1), "input_lengths"),
        (dict(input_lengths=torch.tensor(T + 1)), "input_lengths"),
        (dict(input_lengths=torch.tensor([T, T])), "input_lengths"),
        (dict(target_lengths=4), "target"),
        (dict(target_lengths=-1), "target_lengths"),
        (dict(targets=torch.tensor([1, 2, 5])), "target"),
        (dict(targets=torch.tensor([1, 0, 3])), "blank|target"),
        (dict(targets=torch.ones(2, 2, 3, dtype=torch.long)), "targets"),
        (dict(blank=C), "blank"),
        (dict(log_probs=torch.zeros(T, 0, dtype=torch.float64)), "log_probs|blank|class|C"),
    ],
)
def test_unbatched_bad_input(over, pattern):
    with pytest.raises(ERRS, match=pattern):
        _unbatched(**over)


# -------------------------------------------------------------------------- module and raw ops
def test_module_unknown_reduction():
    b = base()
    with pytest.raises(ERRS, match="reduction"):
        m = torch_ctc.CTCLoss(reduction="avg")
        m(b["log_probs"], b["targets"], b["input_lengths"], b["target_lengths"])


def test_module_bad_label():
    b = base()
    with pytest.raises(ERRS, match="target"):
        torch_ctc.CTCLoss()(b["log_probs"], torch.tensor([[1, 2, 9, 0], [4, 4, 0, 0], [1, 2, 3, 4]]),
                            b["input_lengths"], b["target_lengths"])


@pytest.mark.parametrize(
    "over,pattern",
    [
        (dict(targets=torch.tensor([[1, 2, 5, 0], [4, 4, 0, 0], [1, 2, 3, 4]])), "target"),
        (dict(input_lengths=torch.tensor([10, 11, 9])), "input_lengths"),
        (dict(target_lengths=torch.tensor([3, -2, 4])), "target_lengths"),
        (dict(blank=C), "blank"),
        (dict(reduction=7), "reduction"),
        (dict(log_probs=torch.zeros(T, N, C, dtype=torch.long)), "log_probs"),
    ],
)
@pytest.mark.parametrize("op", ["ctc_loss", "ctc_nll", "_ctc_forward"])
def test_raw_ops_validate(over, pattern, op):
    args = base()
    args.update({k: v for k, v in over.items() if k in args})
    blank = over.get("blank", 0)
    red = over.get("reduction", 1)
    a = (args["log_probs"], args["targets"], args["input_lengths"], args["target_lengths"])
    if op == "ctc_loss":
        fn = lambda: torch.ops.torch_ctc.ctc_loss(*a, blank, red, False, False, False, True)  # noqa: E731
    elif op == "ctc_nll":
        if "reduction" in over:
            pytest.skip("no reduction argument")
        fn = lambda: torch.ops.torch_ctc.ctc_nll(*a, blank, False, False, False, True)  # noqa: E731
    else:
        if "reduction" in over:
            pytest.skip("no reduction argument")
        fn = lambda: torch.ops.torch_ctc._ctc_forward(*a, blank, False, False, True)  # noqa: E731
    with pytest.raises(ERRS, match=pattern):
        fn()


# -------------------------------------------------------------------------- absurd sizes
_HUGE_SCRIPT = textwrap.dedent(
    """
    import sys, torch, torch_ctc
    T, N, L, dtype = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), getattr(torch, sys.argv[4])
    leaf = torch.zeros(1, 1, 2, dtype=dtype, requires_grad=True)
    lp = leaf.expand(T, N, 2)              # a view: no real memory behind it
    tg = torch.ones(1, 1, dtype=torch.long).expand(N, L)
    il = torch.full((N,), T, dtype=torch.long)
    tl = torch.full((N,), L, dtype=torch.long)
    try:
        loss = torch_ctc.ctc_loss(lp, tg, il, tl, reduction="sum")
        loss.backward()
    except (ValueError, RuntimeError, MemoryError) as e:
        print("RAISED", type(e).__name__)
        print("MESSAGE", str(e)[:2000])
        sys.exit(0)
    print("NO ERROR")
    sys.exit(3)
    """
)


@pytest.mark.parametrize(
    "T,N,L,dtype",
    [
        (2**20, 64, 2**19, "float32"),  # ~ 64 * 2^20 * 2^20 cells: hundreds of TB
        (2**24, 1, 2**23, "float64"),  # 2^48 cells
        (2**20, 64, 2**19, "bfloat16"),
    ],
)
def test_absurd_workspace_raises_clearly(T, N, L, dtype, tmp_path):
    """Run in a subprocess so that a crash or a hang is reported as a failure, not a dead test run."""
    script = tmp_path / "huge.py"
    script.write_text(_HUGE_SCRIPT)
    env = dict(os.environ)
    try:
        r = subprocess.run([sys.executable, str(script), str(T), str(N), str(L), dtype], capture_output=True,
                           text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("absurd size did not raise within 120 s (it started computing?)")
    assert r.returncode == 0, f"rc={r.returncode}\nstdout={r.stdout}\nstderr={r.stderr[-3000:]}"
    assert "RAISED" in r.stdout
    msg = r.stdout.split("MESSAGE", 1)[1]
    import re

    assert re.search(r"(?i)workspace|memory|alloc|size|too large|bytes", msg), msg
