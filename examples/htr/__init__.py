"""A complete CTC handwriting-recognition (HTR) trainer built on torch_ctc.

Run it with ``.venv/bin/python examples/htr/train.py --help`` (see docs/htr.md).
Modules: text (offline English text), data (synthetic lines, splits, cache, batches),
loaders (IAM lines and folder+TSV datasets), normalize (the lines' zone normalisation),
tokenizer, model (CRNN and the forum's broken model), train (the training loop, DDP,
checkpoints), plots.
"""
