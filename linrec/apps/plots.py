"""PNG plots of a job's results (matplotlib with the Agg backend, no display needed)."""

import numpy as np

__all__ = ["plot_forecasts", "plot_losses"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_forecasts(path, data, actual, preds, days=7):
    """A test week: ``days`` consecutive daily forecasts (test windows 0..days-1, one
    horizon apart) of the first target, actual against every forecaster.

    ``actual`` (n, horizon, n_targets) and ``preds`` (name -> same shape) in data units.
    """
    plt = _pyplot()
    n = min(days, len(actual))
    starts = data.sets["test"].starts[:n] + data.lookback
    times = data.series.times[starts[:, None] + np.arange(data.horizon)].ravel()
    fig, ax = plt.subplots(figsize=(12, 4.5))
    ax.plot(times, actual[:n, :, 0].ravel(), color="black", lw=2, label="actual")
    for name, p in preds.items():
        ax.plot(times, p[:n, :, 0].ravel(), lw=1.2, label=name)
    ax.set_ylabel(data.series.targets[0])
    ax.set_title(f"test split: {n} consecutive day-ahead forecasts")
    ax.legend(loc="upper right", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_losses(path, summaries, loss="MSE"):
    """Train and validation loss (named ``loss``) per epoch for each ``name -> fit()
    summary``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, s) in enumerate(summaries.items()):
        epochs = [h["epoch"] for h in s["history"]]
        color = f"C{i}"
        ax.plot(epochs, [h["train_loss"] for h in s["history"]], color=color, ls="--",
                label=f"{name} train")
        ax.plot(epochs, [h["val_loss"] for h in s["history"]], color=color,
                label=f"{name} val")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{loss} (normalised units)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
