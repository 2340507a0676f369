"""The Linear Recurrent Unit (Orvieto et al. 2023) with a hand-written backward pass.

For an input u of shape ``(batch, T, H)`` (real) and a complex diagonal state of size N:

    lambda = exp(-exp(nu_log) + i exp(theta_log))          (N,)
    gamma  = exp(gamma_log)                                (N,)
    x[t]   = lambda * x[t-1] + gamma * (B u[t])            (complex, x[-1] = 0)
    y[t]   = Re(C x[t]) + D * u[t]

with B = B_re + i B_im of shape (N, H), C = C_re + i C_im of shape (H, N) and D of shape
(H,). ``reverse=True`` runs the recurrence from the last step to the first (x[T] = 0),
the backward half of BLUR. The only recurrence is ``linrec.scan`` along axis 1 with a
per-channel ``lambda``; its gradient comes from ``linrec.scan_vjp``.

Streaming: the state is x at the last step taken, complex of shape ``(batch, N)``.
``forward(u, state=s, return_state=True)`` continues a sequence from ``s`` (x[-1] = s)
and returns the new state, so chunks fed one after another give the full-sequence output;
:meth:`LRU.step` takes one step in O(N H) work, independent of how many came before.

Stability: ``|lambda| = exp(-nu)`` with ``nu = max(exp(nu_log), NU_MIN)``, so
``|lambda| <= exp(-NU_MIN) < 1`` for every parameter value (in float32 too); the floor
only acts below ``nu_log = log(NU_MIN)``, where ``d nu / d nu_log`` is 0.
"""

import numpy as np

import linrec
from linrec.nn._layer import Layer
from linrec.nn._reduce import sum_rows

__all__ = ["LRU", "NU_MIN", "ring_init"]

NU_MIN = 1e-6


def ring_init(rng, n, r_min, r_max, max_phase):
    """``(nu_log, theta_log)`` with |lambda| on the ring [r_min, r_max] (uniform in area)
    and phase uniform in [0, max_phase]. ValueError unless 0 <= r_min <= r_max < 1 and
    max_phase > 0."""
    if not 0.0 <= r_min <= r_max < 1.0:
        raise ValueError(f"need 0 <= r_min <= r_max < 1, got r_min={r_min}, r_max={r_max}")
    if not max_phase > 0.0:
        raise ValueError(f"need max_phase > 0, got {max_phase}")
    u1, u2 = rng.random(n), rng.random(n)
    nu = -0.5 * np.log(np.maximum(u1 * (r_max**2 - r_min**2) + r_min**2, 1e-300))
    theta = max_phase * np.maximum(u2, 1e-12)
    return np.log(np.maximum(nu, NU_MIN)), np.log(theta)


class LRU(Layer):
    """One LRU over time; see the module docstring for the equations.

    Parameters
    ----------
    d_model, d_state : int
        H (input and output features) and N (complex state size).
    reverse : bool
        Run the recurrence backwards in time.
    r_min, r_max, max_phase : float
        Ring initialisation of lambda (0 <= r_min <= r_max < 1, max_phase > 0).
    rng : numpy.random.Generator
        Source of the initial values.

    Parameter names: ``nu_log, theta_log, gamma_log`` (N,), ``B_re, B_im`` (N, H),
    ``C_re, C_im`` (H, N), ``D`` (H,), all real. The first three form the optimizer
    group "recurrence" (no weight decay, and their own learning-rate scale in
    :class:`~linrec.nn.Adam`).
    """

    PARAM_GROUPS = {"nu_log": "recurrence", "theta_log": "recurrence",
                    "gamma_log": "recurrence"}

    def __init__(self, d_model, d_state, *, rng, reverse=False, r_min=0.0, r_max=0.99,
                 max_phase=2 * np.pi, xp=np, dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        self.H, self.N, self.reverse = int(d_model), int(d_state), bool(reverse)
        nu_log, theta_log = ring_init(rng, self.N, r_min, r_max, max_phase)
        self.new_param("nu_log", nu_log)
        self.new_param("theta_log", theta_log)
        self.new_param("gamma_log", 0.5 * np.log1p(-np.exp(-2.0 * np.exp(nu_log))))
        scale_b = 1.0 / np.sqrt(2.0 * self.H)
        self.new_param("B_re", rng.standard_normal((self.N, self.H)) * scale_b)
        self.new_param("B_im", rng.standard_normal((self.N, self.H)) * scale_b)
        scale_c = 1.0 / np.sqrt(self.N)
        self.new_param("C_re", rng.standard_normal((self.H, self.N)) * scale_c)
        self.new_param("C_im", rng.standard_normal((self.H, self.N)) * scale_c)
        self.new_param("D", rng.standard_normal(self.H))

    def eigenvalues(self):
        """``(lambda, nu)``: the complex diagonal (N,) and ``nu = -log|lambda|`` (N,)."""
        xp, p = self.xp, self.params
        nu = xp.maximum(xp.exp(p["nu_log"]), NU_MIN)
        theta = xp.exp(p["theta_log"])
        r = xp.exp(-nu)
        lam = (r * xp.cos(theta) + 1j * (r * xp.sin(theta))).astype(_complex(self.dtype))
        return lam, nu

    def _weights(self):
        """Interleaved real weights: W_B (H, 2N) = (gamma B)^T, W_C (2N, H) for Re(C x)."""
        xp, p = self.xp, self.params
        gamma = xp.exp(p["gamma_log"])[:, None]
        w_b = xp.empty((self.H, 2 * self.N), dtype=self.dtype)
        w_b[:, 0::2] = (p["B_re"] * gamma).T
        w_b[:, 1::2] = (p["B_im"] * gamma).T
        w_c = xp.empty((2 * self.N, self.H), dtype=self.dtype)
        w_c[0::2] = p["C_re"].T
        w_c[1::2] = -p["C_im"].T
        return w_b, w_c

    def forward(self, u, state=None, return_state=False):
        """``(y, cache)`` for u of shape ``(batch, T, H)``; y has u's shape and dtype.

        ``state`` (complex ``(batch, N)``, see the module docstring) continues a sequence
        (for ``reverse=True``: the state after the last step); ``return_state=True``
        returns ``(y, cache, state)`` with the state at the last step taken. The
        gradients of :meth:`backward` treat the incoming state as a constant.
        """
        lam, nu = self.eigenvalues()
        w_b, w_c = self._weights()
        b = (u @ w_b).view(lam.dtype)
        h0 = None if state is None else self._check_state(state, u.shape[0])
        x = self.xp.ascontiguousarray(linrec.scan(lam, b, h0=h0, axis=1,
                                                  reverse=self.reverse))
        y = x.view(self.dtype) @ w_c
        y += self.params["D"] * u
        cache = (u, lam, nu, x, w_b, w_c, h0)
        if return_state:
            last = x[:, 0] if self.reverse else x[:, -1]
            return y, cache, last.copy()
        return y, cache

    def step(self, u, state=None):
        """``(y, state)``: one step forward in time for u of shape ``(batch, H)`` from
        ``state`` (complex ``(batch, N)``; None: zeros), O(N H) work.

        ValueError for a reverse-time LRU: its output at a step depends on later inputs.
        """
        if self.reverse:
            raise ValueError("LRU.step: this LRU runs backwards in time (reverse=True), "
                             "so its output at a step depends on steps not seen yet; "
                             "run forward() over the whole window instead")
        if getattr(u, "ndim", None) != 2 or u.shape[1] != self.H:
            raise ValueError(f"LRU.step: u has shape {getattr(u, 'shape', None)}; "
                             f"it needs (batch, {self.H}), one time step")
        lam, _ = self.eigenvalues()
        w_b, w_c = self._weights()
        x = (u @ w_b).view(lam.dtype)
        if state is not None:
            x += lam * self._check_state(state, u.shape[0])
        y = x.view(self.dtype) @ w_c
        y += self.params["D"] * u
        return y, x

    def _check_state(self, state, batch):
        """``state`` as an array of x's namespace; ValueError unless its shape is
        ``(batch, N)``."""
        state = self.xp.asarray(state)
        if state.shape != (batch, self.N):
            raise ValueError(f"state has shape {state.shape}; this LRU needs "
                             f"(batch, d_state) = ({batch}, {self.N})")
        return state

    def backward(self, dy, cache):
        """``(du, grads)`` from ``dy`` (batch, T, H); grads keyed like the params."""
        xp, p = self.xp, self.params
        u, lam, nu, x, w_b, w_c, h0 = cache
        n2 = 2 * self.N
        g = {"D": sum_rows(xp, dy * u)}
        du = dy * p["D"]
        d_wc = x.view(self.dtype).reshape(-1, n2).T @ dy.reshape(-1, self.H)
        g["C_re"] = d_wc[0::2].T.copy()
        g["C_im"] = -d_wc[1::2].T
        dx = xp.ascontiguousarray(dy @ w_c.T).view(lam.dtype)
        d_lam, d_b, _ = linrec.scan_vjp(dx, lam, x, h0=h0, axis=1,
                                         reverse=self.reverse)
        d_bv = xp.ascontiguousarray(d_b).view(self.dtype)
        du += d_bv @ w_b.T
        d_wb = u.reshape(-1, self.H).T @ d_bv.reshape(-1, n2)
        gamma = xp.exp(p["gamma_log"])
        d_re, d_im = d_wb[:, 0::2].T, d_wb[:, 1::2].T
        g["B_re"] = d_re * gamma[:, None]
        g["B_im"] = d_im * gamma[:, None]
        g["gamma_log"] = (d_re * p["B_re"] + d_im * p["B_im"]).sum(axis=1) * gamma
        prod = xp.conj(lam) * d_lam
        floor = xp.exp(p["nu_log"]) > NU_MIN
        g["nu_log"] = xp.where(floor, -prod.real * nu, 0.0).astype(self.dtype)
        g["theta_log"] = (prod.imag * xp.exp(p["theta_log"])).astype(self.dtype)
        return du, g


def _complex(dtype):
    return np.complex64 if np.dtype(dtype) == np.float32 else np.complex128
