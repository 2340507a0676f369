"""An exponential moving average (EMA) of a model's parameters during training.

After ``t`` updates with parameters ``p_1 .. p_t`` the average is

    sum_i decay**(t - i) * (1 - decay) * p_i  /  (1 - decay**t)

the weighted mean of every parameter seen so far with weights that fall geometrically
into the past (about the last ``1 / (1 - decay)`` updates count). The denominator is the
sum of the weights, so the average is unbiased from the first update on (no pull towards
zero or towards the initial parameters), as in Adam's bias correction.
"""

import math

__all__ = ["ParameterAverage"]


class ParameterAverage:
    """EMA of parameters (name -> NumPy or CuPy array), updated after each step.

    Parameters
    ----------
    params : dict
        name -> array; read by :meth:`update`, never written.
    decay : float
        In (0, 1): the weight of the average so far at each update. ValueError
        otherwise.
    """

    def __init__(self, params, decay):
        number = isinstance(decay, int | float) and not isinstance(decay, bool)
        if not (number and math.isfinite(decay) and 0.0 < decay < 1.0):
            raise ValueError(f"decay={decay!r}: the parameter average needs a decay in "
                             f"(0, 1), e.g. 0.99")
        self.decay = float(decay)
        self.t = 0
        self.sums = {k: p * 0 for k, p in params.items()}

    def update(self, params):
        """Add the current ``params`` (same names and shapes as at construction)."""
        self.t += 1
        for k, s in self.sums.items():
            s *= self.decay
            s += (1.0 - self.decay) * params[k]

    def average(self):
        """name -> new array: the bias-corrected average. ValueError before the first
        :meth:`update` (there is nothing to average)."""
        if self.t == 0:
            raise ValueError("the parameter average has no update yet; call update() "
                             "after a training step first")
        scale = 1.0 / (1.0 - self.decay ** self.t)
        return {k: s * scale for k, s in self.sums.items()}

    def state(self):
        """``(t, arrays)``: the update count and name -> running sums."""
        return self.t, dict(self.sums)

    def load_state(self, t, arrays):
        """Restore :meth:`state` (copies into the existing arrays)."""
        for k in self.sums:
            self.sums[k][...] = arrays[k]
        self.t = int(t)
