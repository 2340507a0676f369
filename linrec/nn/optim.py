"""Adam / AdamW with bias correction over the parameter groups a model declares, and
global-norm gradient clipping. Parameters are updated in place."""

import math

from linrec.nn._layer import default_group

__all__ = ["Adam", "clip_grad_norm"]


def clip_grad_norm(grads, max_norm):
    """Scale every gradient in place so that their global L2 norm is at most
    ``max_norm`` (None: no clipping). Returns the norm before clipping (a float): NaN or
    inf when a gradient holds NaN or inf, which the caller must check (clipping cannot
    repair it)."""
    total = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
    if max_norm is not None and total > max_norm:
        scale = max_norm / (total + 1e-12)
        for g in grads.values():
            g *= scale
    return total


class Adam:
    """Adam (``decoupled=False``: L2 added to the gradient) or AdamW (``decoupled=True``).

    Weight decay applies to the parameters of group "decay" only (matrices, as the LRU
    paper does); every group's learning rate is ``lr * lr_scale.get(group, 1)``.

    Parameters
    ----------
    params : dict
        name -> array (``model.parameters()``), updated in place by :meth:`step`.
    groups : dict, optional
        name -> group (``model.param_groups()``: "decay", "no_decay", and "recurrence"
        for the LRU's ``nu_log``, ``theta_log``, ``gamma_log``). Default: "decay" for
        matrices, "no_decay" for the rest.
    lr, betas, eps, weight_decay : the usual Adam hyper-parameters.
    lr_scale : dict, optional
        group -> learning-rate multiplier, e.g. ``{"recurrence": 0.5}``.

    Raises
    ------
    ValueError
        ``groups`` that do not name exactly the parameters.
    """

    def __init__(self, params, *, groups=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, decoupled=True, lr_scale=None):
        if groups is None:
            groups = {k: default_group(p) for k, p in params.items()}
        if set(groups) != set(params):
            raise ValueError("groups must name exactly the parameters: pass "
                             "model.param_groups() with model.parameters()")
        self.params, self.groups = params, dict(groups)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.decoupled = weight_decay, decoupled
        self.lr_scale = dict(lr_scale or {})
        self.t = 0
        self.m = {k: p * 0 for k, p in params.items()}
        self.v = {k: p * 0 for k, p in params.items()}

    def decays(self, name):
        """Whether parameter ``name`` gets weight decay (its group is "decay")."""
        return self.groups[name] == "decay"

    def step(self, grads, lr=None):
        """One update from ``grads`` (same keys as params) with learning rate ``lr``
        (default: the constructor's)."""
        lr = self.lr if lr is None else lr
        b1, b2 = self.betas
        self.t += 1
        bc1, bc2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        for k, p in self.params.items():
            g = grads[k]
            decay = self.weight_decay if self.decays(k) else 0.0
            if decay and not self.decoupled:
                g = g + decay * p
            m, v = self.m[k], self.v[k]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            step_lr = lr * self.lr_scale.get(self.groups[k], 1.0)
            if decay and self.decoupled:
                p *= 1.0 - step_lr * decay
            p -= (step_lr / bc1) * m / ((v / bc2) ** 0.5 + self.eps)

    def state(self):
        """``(t, arrays)``: the step count and name -> moment arrays ("m/..", "v/..")."""
        arrays = {f"m/{k}": v for k, v in self.m.items()}
        arrays.update({f"v/{k}": v for k, v in self.v.items()})
        return self.t, arrays

    def load_state(self, t, arrays):
        """Restore :meth:`state` (copies into the existing moment arrays)."""
        for k in self.params:
            self.m[k][...] = arrays[f"m/{k}"]
            self.v[k][...] = arrays[f"v/{k}"]
        self.t = int(t)
