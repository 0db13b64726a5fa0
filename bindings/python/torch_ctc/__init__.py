"""torch-ctc: a from-scratch CTC loss for PyTorch.

Drop-in replacements for ``torch.nn.functional.ctc_loss`` and
``torch.nn.CTCLoss`` that also accept batch-first and raw-logits input,
float16/bfloat16, any label length, and check their arguments.
"""

import os as _os

import torch as _torch  # noqa: F401  (loads libtorch before our extension)

from . import _C  # registers torch.ops.torch_ctc.*
from .functional import ctc_loss
from .modules import CTCLoss
from .diagnostics import diagnose, set_warnings

__version__ = _C.__version__

#: Prefix to put on CMAKE_PREFIX_PATH for ``find_package(torch_ctc)`` in C++ projects.
cmake_prefix_path = _os.path.dirname(_os.path.abspath(__file__))

__all__ = ["CTCLoss", "ctc_loss", "diagnose", "set_warnings", "cmake_prefix_path"]
