"""Pieces every training loop shares: the mean loss over a dataset and the progress bar.

A dataset here is anything with ``__len__`` and ``batch(index) -> (x, y)`` (NumPy arrays;
``index`` a slice or an integer array).
"""

__all__ = ["evaluate_loss", "require_tqdm"]


def evaluate_loss(model, data, batch_size=256):
    """Mean loss of ``model`` (no dropout) over every sample of ``data``."""
    total, count = 0.0, 0
    for i in range(0, len(data), batch_size):
        x, y = data.batch(slice(i, i + batch_size))
        total += model.loss(model.xp.asarray(x), y) * len(x)
        count += len(x)
    return total / max(count, 1)


def require_tqdm(caller):
    """``tqdm.auto.tqdm``; ImportError naming the 'model' extra when tqdm is missing
    (``caller`` names what needs it)."""
    try:
        from tqdm.auto import tqdm
    except ImportError as err:
        raise ImportError(f"{caller} needs tqdm, part of the 'model' extra: "
                          "pip install 'linrec[model]'") from err
    return tqdm
