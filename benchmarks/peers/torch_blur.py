"""The BLUR forecasting model of :class:`linrec.nn.Model` in idiomatic PyTorch: the peer
that ``benchmarks/train_step.py`` times linrec's training step against, and an
independent check of linrec's hand-written gradients (by autograd, in
``tests/test_torch_peer.py``).

Same parameters (copied from a linrec model), same loss and gradients; the LRU's
recurrence ``x[t] = lambda x[t-1] + b[t]`` is a doubling (Hillis-Steele) parallel scan
over time, ``ceil(log2 T)`` whole-array steps, as a PyTorch user would write it for a
time-invariant ``lambda``. Covers the configurations the benchmark uses: ``merge="sum"``,
``projection="glu"``, ``norm="layer"``, no dropout, ``task="forecast"`` with
``pool="window"`` or ``"last+mean"``, bidirectional or not.

Needs the ``peers`` extra (``pip install 'linrec[peers]'``); linrec itself never imports
torch.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional

NU_MIN = 1e-6  # linrec.nn.lru.NU_MIN

SUPPORTED = {"merge": "sum", "projection": "glu", "norm": "layer", "task": "forecast",
             "dropout": 0.0}


def doubling_scan(lam, b, reverse=False):
    """``x[t] = lam * x[t-1] + b[t]`` along axis 1 of ``b`` (batch, T, N), complex;
    ``lam`` (N,). ``reverse`` runs from the last step to the first."""
    if reverse:
        return doubling_scan(lam, b.flip(1)).flip(1)
    shift, power = 1, lam
    while shift < b.shape[1]:
        b = torch.cat([b[:, :shift], b[:, shift:] + power * b[:, :-shift]], dim=1)
        shift, power = 2 * shift, power * power
    return b


class LRU(nn.Module):
    """linrec.nn.LRU: parameters of the same names and shapes."""

    def __init__(self, d_model, d_state, reverse):
        super().__init__()
        self.reverse = reverse
        for name, shape in (("nu_log", (d_state,)), ("theta_log", (d_state,)),
                            ("gamma_log", (d_state,)), ("B_re", (d_state, d_model)),
                            ("B_im", (d_state, d_model)), ("C_re", (d_model, d_state)),
                            ("C_im", (d_model, d_state)), ("D", (d_model,))):
            self.register_parameter(name, nn.Parameter(torch.zeros(shape)))

    def forward(self, u):
        nu = torch.clamp(torch.exp(self.nu_log), min=NU_MIN)
        lam = torch.polar(torch.exp(-nu), torch.exp(self.theta_log))
        gamma = torch.exp(self.gamma_log)[:, None]
        b = torch.complex(u @ (self.B_re * gamma).T, u @ (self.B_im * gamma).T)
        x = doubling_scan(lam, b, self.reverse)
        return x.real @ self.C_re.T - x.imag @ self.C_im.T + self.D * u


class GLU(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * dim)

    def forward(self, x):
        a, g = self.proj(x).chunk(2, dim=-1)
        return a * torch.sigmoid(g)


class Block(nn.Module):
    def __init__(self, d_model, d_state, bidirectional):
        super().__init__()
        self.norm = nn.LayerNorm(d_model, eps=1e-5)
        self.fwd = LRU(d_model, d_state, reverse=False)
        self.bwd = LRU(d_model, d_state, reverse=True) if bidirectional else None
        self.proj = GLU(d_model)

    def forward(self, x):
        z = self.norm(x)
        m = self.fwd(z) if self.bwd is None else self.fwd(z) + self.bwd(z)
        return x + self.proj(functional.gelu(m, approximate="tanh"))


class TorchBLUR(nn.Module):
    """The model of a linrec ``Model.config`` (see the module docstring for the subset)."""

    def __init__(self, config):
        super().__init__()
        bad = {k: config[k] for k, v in SUPPORTED.items() if config[k] != v}
        if bad or config["pool"] not in ("window", "last+mean"):
            raise ValueError(f"the peer covers {SUPPORTED} and pool 'window' or "
                             f"'last+mean'; got {bad or {'pool': config['pool']}}")
        h, self.config = config["d_model"], config
        self.inp = nn.Linear(config["n_features"], h)
        self.blocks = nn.ModuleList(
            Block(h, config["d_state"], config["bidirectional"])
            for _ in range(config["n_layers"]))
        self.norm = nn.LayerNorm(h, eps=1e-5)
        n_pool = config["horizon"] * h if config["pool"] == "window" else 2 * h
        self.head = nn.Linear(n_pool, config["horizon"] * config["n_targets"])

    def forward(self, x):
        """Forecasts ``(batch, horizon, n_targets)`` for x ``(batch, T, n_features)``."""
        h = self.inp(x)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        horizon = self.config["horizon"]
        if self.config["pool"] == "window":
            pooled = h[:, -horizon:].reshape(h.shape[0], -1)
        else:
            pooled = torch.cat([h[:, -1], h.mean(dim=1)], dim=-1)
        return self.head(pooled).reshape(-1, horizon, self.config["n_targets"])


def linrec_name(torch_name):
    """The linrec parameter name of a peer parameter, and whether linrec stores it
    transposed (``nn.Linear`` weights are ``(out, in)``, linrec's ``W`` is ``(in, out)``).
    """
    name = torch_name.replace(".weight", ".W").replace(".bias", ".b")
    name = name.replace("norm.W", "norm.g")
    return name, torch_name.endswith(".weight") and ".norm." not in f".{torch_name}"


def from_linrec(model, dtype=torch.float64):
    """A :class:`TorchBLUR` holding copies of the parameters of linrec ``model``."""
    peer = TorchBLUR(model.config).to(dtype)
    params = model.host_parameters()
    with torch.no_grad():
        for name, p in peer.named_parameters():
            key, transposed = linrec_name(name)
            value = params[key].T if transposed else params[key]
            p.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return peer


def linrec_grads(peer):
    """linrec name -> NumPy gradient (in linrec's layout) after ``loss.backward()``."""
    out = {}
    for name, p in peer.named_parameters():
        key, transposed = linrec_name(name)
        g = p.grad.detach().numpy()
        out[key] = g.T if transposed else g
    return out


def optimizer(peer, *, lr, weight_decay):
    """AdamW as :class:`linrec.nn.Adam` with its default groups: weight decay on the
    matrices only."""
    decay = [p for p in peer.parameters() if p.ndim >= 2]
    rest = [p for p in peer.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=lr)


def train_step(peer, opt, x, y, max_norm):
    """One step: MSE forward, backward, global-norm clipping, AdamW. Returns the loss."""
    opt.zero_grad(set_to_none=True)
    loss = functional.mse_loss(peer(x), y)
    loss.backward()
    nn.utils.clip_grad_norm_(peer.parameters(), max_norm)
    opt.step()
    return loss.item()
