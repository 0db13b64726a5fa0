"""A toy CTC model trained on the CPU with torch_ctc.CTCLoss.

Each sample is a short random label sequence "spoken" as a noisy signal: every
label becomes 1-4 frames of its own random prototype vector, with optional
silence frames between labels. A small BiGRU learns to read the labels back;
its loss falls and its greedy-decoding accuracy rises within a minute or two.
This stands in for the HTR example until that exists.

    .venv/bin/python examples/toy/train_toy.py --steps 300
"""

from __future__ import annotations

import argparse
import time

import torch
import torch_ctc

BLANK = 0


def make_batch(gen: torch.Generator, prototypes: torch.Tensor, batch: int, max_labels: int):
    num_classes, dim = prototypes.shape  # class 0 (blank) doubles as "silence"
    features, labels, frame_counts = [], [], []
    for _ in range(batch):
        length = int(torch.randint(1, max_labels + 1, (1,), generator=gen))
        seq = torch.randint(1, num_classes, (length,), generator=gen)
        frames = []
        for label in seq.tolist():
            frames += [label] * int(torch.randint(1, 5, (1,), generator=gen))
            frames += [0] * int(torch.randint(0, 3, (1,), generator=gen))
        x = prototypes[torch.tensor(frames)] + 0.6 * torch.randn(len(frames), dim, generator=gen)
        features.append(x)
        labels.append(seq)
        frame_counts.append(len(frames))
    x = torch.nn.utils.rnn.pad_sequence(features)  # (T, N, D), zero-padded
    targets = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True, padding_value=-1)  # (N, S)
    return x, targets, torch.tensor(frame_counts), torch.tensor([len(s) for s in labels])


class Reader(torch.nn.Module):
    def __init__(self, dim: int, num_classes: int, hidden: int = 64):
        super().__init__()
        self.rnn = torch.nn.GRU(dim, hidden, bidirectional=True)
        self.head = torch.nn.Linear(2 * hidden, num_classes)

    def forward(self, x):
        return self.head(self.rnn(x)[0])  # logits, (T, N, C)


def greedy_decode(logits: torch.Tensor, lengths: torch.Tensor):
    best = logits.argmax(-1).T  # (N, T)
    out = []
    for row, n in zip(best.tolist(), lengths.tolist()):
        seq, prev = [], BLANK
        for c in row[:n]:
            if c != prev and c != BLANK:
                seq.append(c)
            prev = c
        out.append(seq)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--classes", type=int, default=12, help="labels + blank")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    dim = 16
    prototypes = torch.randn(args.classes, dim, generator=gen)
    prototypes[0] = 0  # silence
    model = Reader(dim, args.classes)
    criterion = torch_ctc.CTCLoss(blank=BLANK, from_logits=True)  # log_softmax fused into the loss
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    val = make_batch(torch.Generator().manual_seed(args.seed + 1), prototypes, 256, 8)

    start = time.time()
    first_loss = None
    for step in range(1, args.steps + 1):
        x, targets, input_lengths, target_lengths = make_batch(gen, prototypes, args.batch, 8)
        loss = criterion(model(x), targets, input_lengths, target_lengths)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        first_loss = first_loss if first_loss is not None else loss.item()
        if step % 50 == 0 or step == 1:
            with torch.no_grad():
                vx, vt, vil, vtl = val
                decoded = greedy_decode(model(vx), vil)
                exact = sum(d == t[:n].tolist() for d, t, n in zip(decoded, vt, vtl.tolist())) / len(decoded)
            print(f"step {step:4d}  loss {loss.item():7.4f}  val exact-match {exact:6.1%}  ({time.time() - start:5.1f} s)",
                  flush=True)
    print(f"loss fell from {first_loss:.3f} to {loss.item():.3f}")
    if not loss.item() < first_loss:
        raise SystemExit("the loss did not fall")


if __name__ == "__main__":
    main()
