"""The LR range test on a loop that updates weights by hand: pytorch/examples' word_language_model.

That example trains an LSTM language model with no optimizer at all: after ``loss.backward()``
and gradient clipping it runs ``p.data.add_(p.grad, alpha=-lr)``, and it calls
``model(data, hidden)`` with a hidden state carried from batch to batch. Its training step goes
to ``find_lr`` as it is, with the ``lr`` it reads as an argument::

    def step(batch, lr):
        ...                          # the body of word_language_model's train() loop
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        return loss

    result = find_lr(model, data=batches, step=step, start_lr=1e-2, end_lr=1e3)

Here on a synthetic corpus (a random Markov chain over 32 tokens, so nothing is downloaded),
in a few seconds on one CPU core::

    python examples/lr_finder_word_language_model.py

Needs ``pip install autolr[torch]``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from autolr.torch import find_lr

VOCAB, EMSIZE, NHID, BPTT, BATCH, CLIP = 32, 32, 64, 16, 16, 0.25


def corpus(n_tokens: int, *, seed: int) -> torch.Tensor:
    """Tokens from a fixed random Markov chain in which each token has 3 likely successors."""
    g = torch.Generator().manual_seed(0)  # the same language for every seed
    logits = torch.randn(VOCAB, VOCAB, generator=g)
    top = logits.topk(3, dim=1).indices
    probs = torch.full((VOCAB, VOCAB), 0.1 / VOCAB)
    probs.scatter_(1, top, 0.3)
    probs = probs / probs.sum(1, keepdim=True)
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n_tokens, dtype=torch.long)
    out[0] = 0
    for i in range(1, n_tokens):
        out[i] = torch.multinomial(probs[out[i - 1]], 1, generator=g)
    return out


def batchify(data: torch.Tensor, bsz: int) -> torch.Tensor:
    """As in word_language_model: columns of ``bsz`` independent streams."""
    nbatch = data.size(0) // bsz
    return data[: nbatch * bsz].view(bsz, -1).t().contiguous()


def get_batch(source: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    seq_len = min(BPTT, len(source) - 1 - i)
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len].reshape(-1)


class RNNModel(nn.Module):
    """word_language_model's RNNModel (LSTM flavour): encoder, recurrent module, decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.2)
        self.encoder = nn.Embedding(VOCAB, EMSIZE)
        self.rnn = nn.LSTM(EMSIZE, NHID, 1)
        self.decoder = nn.Linear(NHID, VOCAB)

    def forward(self, x: torch.Tensor, hidden: Any) -> tuple[torch.Tensor, Any]:
        output, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(output)).view(-1, VOCAB), hidden

    def init_hidden(self, bsz: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(1, bsz, NHID), torch.zeros(1, bsz, NHID)


def repackage_hidden(h: Any) -> Any:
    """Detach the hidden state from the graph of the previous batch."""
    return h.detach() if isinstance(h, torch.Tensor) else tuple(repackage_hidden(v) for v in h)


def make_step(model: RNNModel) -> Any:
    """word_language_model's training step; the hidden state lives in the closure."""
    criterion = nn.CrossEntropyLoss()
    state = {"hidden": model.init_hidden(BATCH)}

    def step(batch: tuple[torch.Tensor, torch.Tensor], lr: float) -> torch.Tensor:
        data, targets = batch
        model.zero_grad()
        state["hidden"] = repackage_hidden(state["hidden"])
        output, state["hidden"] = model(data, state["hidden"])
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        return loss

    return step


def evaluate(model: RNNModel, source: torch.Tensor) -> float:
    model.eval()
    hidden, total = model.init_hidden(BATCH), 0.0
    with torch.no_grad():
        for i in range(0, source.size(0) - 1, BPTT):
            data, targets = get_batch(source, i)
            output, hidden = model(data, hidden)
            total += len(data) * nn.functional.cross_entropy(output, targets).item()
    return total / (len(source) - 1)


def train_epochs(lr: float, train: torch.Tensor, val: torch.Tensor, *, epochs: int = 2) -> float:
    """Train a fresh model at ``lr`` (the hand-written loop) and return the validation loss."""
    torch.manual_seed(0)
    model = RNNModel()
    for _ in range(epochs):
        model.train()
        step = make_step(model)
        for i in range(0, train.size(0) - 1, BPTT):
            step(get_batch(train, i), lr)
    loss = evaluate(model, val)
    return loss if math.isfinite(loss) else math.inf


def main() -> None:
    torch.set_num_threads(1)
    train = batchify(corpus(16_000, seed=1), BATCH)
    val = batchify(corpus(4_000, seed=2), BATCH)
    batches = [get_batch(train, i) for i in range(0, train.size(0) - 1, BPTT)]

    torch.manual_seed(0)
    model = RNNModel()
    result = find_lr(model, data=batches, step=make_step(model), start_lr=1e-2, end_lr=1e3,
                     seed=0)
    print(result)
    lr = result.suggestion
    assert lr is not None
    print(f"suggested lr: {lr:.3g} (word_language_model's default: 20)")
    for name, value in (("suggested", lr), ("default 20", 20.0), ("suggested / 100", lr / 100)):
        print(f"  {name:>16}: lr {value:8.3g} -> validation loss after 2 epochs "
              f"{train_epochs(value, train, val):.3f}")


if __name__ == "__main__":
    main()
