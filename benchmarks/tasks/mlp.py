"""MLP tasks: the seven original members of the suite, and MLPs that overfit or see noise."""

from __future__ import annotations

import math

from benchmarks.tasks._core import mlp_task

LN10, LN3, LN2 = math.log(10), math.log(3), math.log(2)

# -- the seven original tasks (unchanged: same data, model, optimizer, loop) --------------------

mlp_task(
    "digits_adam",
    """digits (10 classes), MLP 64, Adam, 15 epochs, CE: the common case, 1e-3 a little low.""",
    dataset="digits", classification=True, hidden=(64,), opt="adam", epochs=15, batch=64,
    default_lr=1e-3, cap=LN10,
)
mlp_task(
    "wine_sgdm",
    """wine (3 classes), MLP 32, SGD momentum 0.9, 20 epochs: tiny data, wants lr >> 1e-3.""",
    dataset="wine", classification=True, hidden=(32,), opt="sgdm", epochs=20, batch=16,
    default_lr=1e-2, cap=LN3,
)
mlp_task(
    "breast_cancer_adamw",
    """breast_cancer (2 classes), MLP 32-32, AdamW wd 1e-2, 20 epochs: overfits at high lr.""",
    dataset="breast_cancer", classification=True, hidden=(32, 32), opt="adamw", epochs=20,
    batch=32, wd=1e-2, default_lr=1e-3, cap=LN2,
)
mlp_task(
    "diabetes_rmsprop",
    """diabetes regression, MLP 32, RMSprop, 25 epochs, MSE: noisy target, flat valley.""",
    dataset="diabetes", classification=False, hidden=(32,), opt="rmsprop", epochs=25, batch=32,
    default_lr=1e-2, cap=1.0,
)
mlp_task(
    "iris_sgd",
    """iris (3 classes), MLP 16 tanh, plain SGD, batch 4: best lr far above 1e-3 (1.78).""",
    dataset="iris", classification=True, hidden=(16,), opt="sgd", epochs=20, batch=4,
    act="tanh", default_lr=1e-2, cap=LN3,
)
mlp_task(
    "friedman_relu_adam",
    """synthetic Friedman #1, narrow deep ReLU MLP 8-8-8, Adam, MSE: seed noise grows with lr.""",
    dataset="friedman", classification=False, hidden=(8, 8, 8), opt="adam", epochs=15,
    batch=32, default_lr=1e-3, cap=1.0,
)
mlp_task(
    "heavy_tail_sgdm",
    """synthetic linear regression, raw feature scales (30x), 2% heavy rows, SGD momentum.

    A cliff right above the optimum where some seeds blow up and a lucky one looks best.""",
    dataset="heavy_tail", classification=False, hidden=(), opt="sgdm", epochs=20, batch=32,
    scale_x="none", default_lr=1e-2, cap=1.0,
)

# -- overfitting and noise: the best final value is at a low lr ---------------------------------

mlp_task(
    "diabetes_wide_adam",
    """diabetes regression, wide MLP 128-128, Adam, batch 32, 40 epochs, MSE.

    442 rows and 18k weights: at 1e-3 and above the validation loss bottoms out early and rises
    late (overfitting), so the best *final* loss is at a low lr; 1e-3 is off.""",
    dataset="diabetes", classification=False, hidden=(128, 128), opt="adam", epochs=40,
    batch=32, default_lr=1e-3, cap=1.0,
)
mlp_task(
    "digits_noisy_adam",
    """digits with 40% of the training labels replaced by random ones, MLP 128, Adam, 20 epochs.

    Noisy labels: a fast learner memorizes the noise and its clean validation loss climbs late
    (above ~3e-3); the best final loss is near 1e-3.""",
    dataset="digits", classification=True, hidden=(128,), opt="adam", epochs=20, batch=64,
    label_noise=0.4, default_lr=1e-3, cap=LN10,
)
mlp_task(
    "digits_raw_rmsprop",
    """digits with raw pixel values (0..16, not standardized), MLP 64-64, RMSprop, 12 epochs.

    Unscaled inputs make every step large: the good region (1e-3 .. 7.5e-3) is below RMSprop's
    own default of 1e-2, with a steep climb above it.""",
    dataset="digits", classification=True, hidden=(64, 64), opt="rmsprop", epochs=12,
    batch=64, scale_x="none", default_lr=1e-2, cap=LN10,
)
mlp_task(
    "breast_cancer_deep_adam",
    """breast_cancer, deep MLP 64x3, Adam, batch 32, 30 epochs, CE: tiny data, big net.

    Overfits quickly: validation loss rises late at every lr above a few 1e-4.""",
    dataset="breast_cancer", classification=True, hidden=(64, 64, 64), opt="adam",
    epochs=30, batch=32, default_lr=1e-3, cap=LN2,
)
mlp_task(
    "wine_adagrad_acc",
    """wine, MLP 16, Adagrad, 25 epochs, validation *accuracy* maximized.

    Adagrad's steps shrink by themselves, so it wants a large lr (torch default 1e-2); accuracy
    is coarse (45 validation rows) with a plateau of ties.""",
    dataset="wine", classification=True, hidden=(16,), opt="adagrad", epochs=25, batch=16,
    metric="accuracy", default_lr=1e-2, cap=0.4,
)
mlp_task(
    "friedman_sgd_step",
    """Friedman #1, MLP 64-64, SGD momentum 0.9, step decay (x0.1 every third of the run), MSE.""",
    dataset="friedman", classification=False, hidden=(64, 64), opt="sgdm", epochs=18, batch=64,
    schedule="step", default_lr=1e-2, cap=1.0,
)
mlp_task(
    "digits_bn_onecycle",
    """digits, MLP 128-128 with BatchNorm, SGD Nesterov, one-cycle schedule, 8 epochs, CE.

    BatchNorm and the one-cycle warmup tolerate very large peak lrs: the best is far above 0.1.""",
    dataset="digits", classification=True, hidden=(128, 128), opt="nesterov", epochs=8,
    batch=64, bn=True, schedule="onecycle", default_lr=1e-1, cap=LN10,
)
mlp_task(
    "diabetes_huber_adamw_cosine",
    """diabetes, MLP 64, AdamW (wd 1e-2), warmup + cosine schedule, Huber loss, 20 epochs.""",
    dataset="diabetes", classification=False, hidden=(64,), opt="adamw", epochs=20, batch=32,
    wd=1e-2, loss="huber", schedule="warmup_cosine", default_lr=1e-3, cap=0.40,
)
