import os
import random
import sys

import pytest
import torch

# Make ``import reference`` work whatever the rootdir / import mode.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same seeds; thread count and default dtype are restored."""
    random.seed(0)
    torch.manual_seed(0)
    try:
        import numpy as np

        np.random.seed(0)
    except ImportError:  # pragma: no cover
        pass
    nthreads = torch.get_num_threads()
    default_dtype = torch.get_default_dtype()
    yield
    torch.set_num_threads(nthreads)
    torch.set_default_dtype(default_dtype)


@pytest.fixture
def gen():
    """A seeded generator for tests that want their own stream."""
    return torch.Generator().manual_seed(1234)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: slower tests (torch.compile, long targets)")
    config.addinivalue_line("markers", "cuda: tests that need a CUDA device")
