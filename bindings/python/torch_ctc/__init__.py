"""torch-ctc: a from-scratch CTC loss for PyTorch, and what comes after it.

Drop-in replacements for ``torch.nn.functional.ctc_loss`` and
``torch.nn.CTCLoss`` that also accept batch-first and raw-logits input,
float16/bfloat16, any label length, and check their arguments; batched forced
alignment (``forced_align``, ``merge_tokens``) and greedy decoding
(``greedy_decode``) on the CPU and CUDA; prefix beam search with n-gram
language models (``beam_search``, ``NGramLM``).
"""

import os as _os

import torch as _torch  # noqa: F401  (loads libtorch before our extension)

from . import _C  # registers torch.ops.torch_ctc.*
from .functional import ctc_loss
from .modules import CTCLoss
from .alignment import GreedyDecoding, TokenSpan, forced_align, greedy_decode, merge_tokens
from .decoding import BeamSearchDecoder, Hypothesis, NGramLM, beam_search
from .diagnostics import diagnose, set_warnings

__version__ = _C.__version__


def empty_host_cache() -> None:
    """Return the blocks that the CPU operators keep for reuse to the system.

    The CPU forward and backward passes take their large buffers (the alpha
    workspace and the gradient) from a cache, so repeated calls do not pay fresh
    page faults; it holds at most ``TORCH_CTC_HOST_CACHE_MB`` MiB (default 1024;
    0 turns it off). See :func:`host_cache_info`.
    """
    _C.empty_host_cache()


def host_cache_info() -> dict:
    """``cached_bytes`` held for reuse now, ``limit_bytes``, and the ``hits`` and
    ``misses`` of allocations served from the cache so far."""
    return _C.host_cache_info()


#: Prefix to put on CMAKE_PREFIX_PATH for ``find_package(torch_ctc)`` in C++ projects.
cmake_prefix_path = _os.path.dirname(_os.path.abspath(__file__))

__all__ = ["CTCLoss", "ctc_loss", "diagnose", "set_warnings", "cmake_prefix_path", "empty_host_cache",
           "host_cache_info", "forced_align", "merge_tokens", "greedy_decode", "TokenSpan", "GreedyDecoding",
           "beam_search", "BeamSearchDecoder", "Hypothesis", "NGramLM"]
