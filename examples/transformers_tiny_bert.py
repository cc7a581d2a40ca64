"""Tune the learning rate of a Hugging Face ``Trainer``: a tiny BERT built from a config.

Nothing is downloaded: the model is ``BertForSequenceClassification(BertConfig(...))`` with one
layer of width 32, and the task is synthetic text: random 16-token sentences whose words lean
to the "positive" or the "negative" half of the vocabulary, labelled by that side (10% of labels
flipped, so the loss cannot reach 0).
``AutolrCallback`` reports ``eval_loss`` after every epoch; autolr stops runs that blow up or
trail the others.

    python examples/transformers_tiny_bert.py                    # ~30 s on one CPU core
    python examples/transformers_tiny_bert.py --trials 4 --storage sqlite:///bert.db

Needs ``pip install autolr[transformers]``.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging

import autolr
from autolr.transformers import AutolrCallback

VOCAB, LENGTH = 24, 16  # token 0 is [CLS]; 1..11 are "positive" words, 12..23 "negative"


class Sentiment(torch.utils.data.Dataset):
    """Random 16-token sentences, 65% of their words from the side of their label (10% flipped)."""

    def __init__(self, n: int, *, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        label = torch.randint(0, 2, (n,), generator=g)
        own = torch.rand(n, LENGTH, generator=g) < 0.65
        side = torch.where(own, label[:, None], 1 - label[:, None])  # 1: positive half
        word = torch.randint(0, 11, (n, LENGTH), generator=g)
        self.ids = torch.where(side == 1, 1 + word, 12 + word)
        self.ids[:, 0] = 0
        flip = torch.rand(n, generator=g) < 0.1
        self.labels = torch.where(flip, 1 - label, label)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def make_model(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=LENGTH, num_labels=2)
    return BertForSequenceClassification(config)


def finetune(lr: float, *, train: Sentiment, val: Sentiment, epochs: int, out: str,
             callbacks: list[Any]) -> Trainer:
    """One Trainer run at ``lr``, evaluated every epoch."""
    args = TrainingArguments(
        output_dir=out, learning_rate=lr, num_train_epochs=epochs, eval_strategy="epoch",
        save_strategy="no", logging_strategy="no", report_to="none", use_cpu=True,
        per_device_train_batch_size=32, per_device_eval_batch_size=256, disable_tqdm=True,
        seed=0, dataloader_num_workers=0,
    )
    trainer = Trainer(model=make_model(), args=args, train_dataset=train, eval_dataset=val,
                      callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # the table at the end says enough
    trainer.train()
    return trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--storage", default=None, help="default: a new temporary SQLite file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    hf_logging.set_verbosity_error()
    tmp = tempfile.mkdtemp(prefix="autolr-bert-")
    storage = args.storage or f"sqlite:///{tmp}/bert.db"
    train, val = Sentiment(800, seed=1), Sentiment(400, seed=2)

    @autolr.tune(n_trials=args.trials, lr=(1e-4, 1.0), seed=0, storage=storage)
    def tiny_bert(lr: float) -> float:
        callback = AutolrCallback()  # reports eval_loss each epoch, stops the trial when told
        finetune(lr, train=train, val=val, epochs=args.epochs, out=tmp, callbacks=[callback])
        assert callback.last_value is not None
        return callback.last_value

    result = tiny_bert.run()
    print(f"recommended lr: {result.best_lr:.3g} (eval_loss {result.best_value:.4f})")
    print(result.trials()[["number", "state", "lr", "value", "steps", "stop_reason"]]
          .to_string(index=False))
    print(f"study: {storage}")


if __name__ == "__main__":
    main()
