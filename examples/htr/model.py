"""The CRNN done right, and the forum's broken model.

CRNN: four conv blocks (3x3 conv, BatchNorm, LeakyReLU) with max-pooling that halves the
height each time (32 -> 2) and the width ``width_pool`` = 4 or 8 times, then a 2-layer
BiLSTM over the columns, a Linear layer and log_softmax. With ``stem="stride"`` the first
block is a stride-2 conv instead of a conv and a 2x2 max-pool (the same output size for
a quarter of that layer's work). Its output is (T, N, C) with T = W // width_pool
(``stem="stride"`` rounds the first halving up); :meth:`CRNN.frames` gives each image's
own T from its real width through the same arithmetic, which is what goes into
``input_lengths``.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, pool, stride=1) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
              nn.LeakyReLU(0.1, inplace=True)]
    if pool is not None:
        layers.append(nn.MaxPool2d(pool, pool))
    return nn.Sequential(*layers)


class CRNN(nn.Module):
    def __init__(self, num_classes: int, height: int = 32, channels=(32, 64, 96, 128), hidden: int = 192,
                 layers: int = 2, width_pool: int = 4, dropout: float = 0.2, stem: str = "pool"):
        super().__init__()
        if height % 16:
            raise ValueError("height must be a multiple of 16")
        if width_pool not in (2, 4, 8):
            raise ValueError("width_pool must be 2, 4 or 8")
        if stem not in ("pool", "stride"):
            raise ValueError("stem must be 'pool' or 'stride'")
        wp = [2 if width_pool >= 2 else 1, 2 if width_pool >= 4 else 1, 1, 2 if width_pool >= 8 else 1]
        c1, c2, c3, c4 = channels
        self.width_pools = wp
        # stem "pool": 3x3 conv at full resolution, then max-pooling; "stride": a 3x3 conv of
        # stride 2 (the same output size, a quarter of the first layer's work and no pooling)
        first = _block(1, c1, (2, wp[0])) if stem == "pool" else _block(1, c1, None, stride=(2, wp[0]))
        self.stem = stem
        self.conv = nn.Sequential(
            first,
            _block(c1, c2, (2, wp[1])),
            _block(c2, c3, None),
            _block(c3, c3, (2, wp[2])),
            _block(c3, c4, (2, wp[3])),
        )
        feat = c4 * (height // 16)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.LSTM(feat, hidden, num_layers=layers, bidirectional=True, dropout=dropout if layers > 1 else 0)
        self.head = nn.Linear(2 * hidden, num_classes)

    def frames(self, widths: torch.Tensor) -> torch.Tensor:
        """Output frames for images of these real widths (floor division at each pooling; the
        stride-2 stem conv gives ceil(W / 2))."""
        t = widths.clone().long()
        for k, p in enumerate(self.width_pools):
            if k == 0 and self.stem == "stride" and p > 1:
                t = torch.div(t - 1, p, rounding_mode="floor") + 1  # conv: (W + 2 - 3) // 2 + 1
            else:
                t = torch.div(t, p, rounding_mode="floor")
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) images -> (T, N, C) log-probabilities."""
        if self.conv[0][0].weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)  # see train.py: faster convs on the CPU
        f = self.conv(x)  # (N, C4, H/16, W/p)
        n, c, h, w = f.shape
        f = f.reshape(n, c * h, w).permute(2, 0, 1)  # (T, N, F)
        f, _ = self.rnn(self.dropout(f))
        return self.head(self.dropout(f)).log_softmax(-1)


class ForumNet(nn.Module):
    """The forum post's model: five convs with no pooling and no nonlinearity, a BiLSTM and a
    Linear layer, and no log_softmax (its raw outputs go to the loss). T equals the padded
    image width, and the training loop hard-codes input_lengths to 128."""

    def __init__(self, num_classes: int, height: int = 32, channels: int = 16, hidden: int = 128):
        super().__init__()
        convs, cin = [], 1
        for _ in range(5):
            convs.append(nn.Conv2d(cin, channels, 3, padding=1))
            cin = channels
        self.conv = nn.Sequential(*convs)  # no pooling, no nonlinearity
        self.rnn = nn.LSTM(channels * height, hidden, bidirectional=True)
        self.head = nn.Linear(2 * hidden, num_classes)

    def frames(self, widths: torch.Tensor) -> torch.Tensor:
        return widths.clone().long()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv(x)
        n, c, h, w = f.shape
        f, _ = self.rnn(f.reshape(n, c * h, w).permute(2, 0, 1))
        return self.head(f)  # raw scores, (T, N, C): the missing log_softmax
