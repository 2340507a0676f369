"""``python -m linrec predict``: a forecast CSV from a saved model and a data CSV."""

from pathlib import Path

from linrec.apps.forecaster import Forecaster
from linrec.nn.checkpoint import CheckpointError

__all__ = ["run_predict"]


def run_predict(args, xp):
    """Forecast from the last rows of ``args.csv`` with the model in ``args.model``;
    write the forecast to ``args.out`` (time column, then the forecast columns) and
    return it as a DataFrame. SystemExit naming the problem when the model file or the
    data cannot be used."""
    try:
        forecaster = Forecaster.load(args.model, xp=xp)
        table = forecaster.predict_table(args.csv, fill=args.fill)
    except (CheckpointError, ValueError, FileNotFoundError) as err:
        raise SystemExit(f"python -m linrec predict: {err}") from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    times = table.iloc[:, 0]
    print(f"{len(table)}-step forecast ({times.iloc[0]} .. {times.iloc[-1]}) of "
          f"{', '.join(table.columns[1:])} written to {out}")
    return table
