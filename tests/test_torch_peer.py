"""The PyTorch peer of the BLUR model (benchmarks/peers/torch_blur.py) against linrec:
same loss and every gradient to 1e-10 in float64 from copied parameters. Autograd
through the peer checks linrec's hand-written backward passes independently."""

from pathlib import Path

import numpy as np
import pytest

from linrec.nn import Model
from tests.helpers import load_script

torch = pytest.importorskip("torch")

PEER = Path(__file__).resolve().parents[1] / "benchmarks" / "peers" / "torch_blur.py"


def load_peer():
    return load_script(PEER, "torch_blur")


@pytest.mark.parametrize("bidirectional, pool, T", [(True, "window", 13),
                                                    (False, "last+mean", 9),
                                                    (True, "last+mean", 16)])
def test_loss_and_every_gradient_match_linrec(bidirectional, pool, T):
    peer_mod = load_peer()
    model = Model(3, horizon=4, n_targets=2, d_model=6, d_state=5, n_layers=2,
                  bidirectional=bidirectional, pool=pool, seed=3, dtype=np.float64)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, T, 3))
    y = rng.standard_normal((4, 4, 2))
    loss, grads = model.loss_and_grad(x, y)

    peer = peer_mod.from_linrec(model)
    torch_loss = torch.nn.functional.mse_loss(peer(torch.from_numpy(x)),
                                              torch.from_numpy(y))
    torch_loss.backward()
    peer_grads = peer_mod.linrec_grads(peer)

    assert set(peer_grads) == set(grads)
    np.testing.assert_allclose(torch_loss.item(), loss, rtol=1e-10, atol=0)
    for name, g in grads.items():
        scale = np.abs(g).max()
        assert scale > 0, name
        np.testing.assert_allclose(peer_grads[name], g, rtol=0, atol=1e-10 * scale,
                                   err_msg=name)


def test_doubling_scan_matches_a_loop():
    peer_mod = load_peer()
    rng = np.random.default_rng(0)
    lam = torch.from_numpy(0.9 * np.exp(1j * rng.uniform(0, 6, 5)))
    b = torch.from_numpy(rng.standard_normal((2, 11, 5))
                         + 1j * rng.standard_normal((2, 11, 5)))
    for reverse in (False, True):
        want = b.numpy().copy()
        order = range(9, -1, -1) if reverse else range(1, 11)
        for t in order:
            want[:, t] += lam.numpy() * want[:, t + 1 if reverse else t - 1]
        got = peer_mod.doubling_scan(lam, b, reverse).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_unsupported_config_is_refused():
    peer_mod = load_peer()
    model = Model(3, horizon=2, d_model=4, d_state=2, n_layers=1, merge="concat")
    with pytest.raises(ValueError, match="merge"):
        peer_mod.TorchBLUR(model.config)
