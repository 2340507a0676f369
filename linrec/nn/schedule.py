"""Learning-rate schedules: linear warm-up, then cosine decay, step decay or constant."""

import math

__all__ = ["lr_at", "SCHEDULES"]

SCHEDULES = ("cosine", "step", "constant")


def lr_at(step, *, base_lr, total_steps, kind="cosine", warmup=0, min_ratio=0.05,
          step_every=1000, step_gamma=0.5):
    """The learning rate for 0-based ``step``.

    ``cosine`` falls from ``base_lr`` to ``min_ratio * base_lr`` over ``total_steps``;
    ``step`` multiplies by ``step_gamma`` every ``step_every`` steps; all three start
    with ``warmup`` steps of linear warm-up. ValueError for an unknown ``kind``.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"schedule {kind!r}; use one of {SCHEDULES}")
    if step < warmup:
        return base_lr * (step + 1) / warmup
    if kind == "constant":
        return base_lr
    if kind == "step":
        return base_lr * step_gamma ** ((step - warmup) // step_every)
    frac = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    cosine = 0.5 * (1.0 + math.cos(math.pi * frac))
    return base_lr * (min_ratio + (1.0 - min_ratio) * cosine)
