"""The output bottleneck of the MLP rungs: a rank-512 output cannot score below 272/784 on white-noise targets.

Both MLPs end with Dense(784) from 512 units, so ε̂ = W·h + b lies in a
512-dimensional affine subspace whatever the input. For ε ~ N(0, I) the part of
ε outside that subspace, 272 of 784 dimensions, is never predicted:
E‖ε − ε̂‖²/784 ≥ tr(P⊥)/784 = 272/784 = 0.347 at every t, however much the
input tells about ε (even when the input is ε itself).
"""

import numpy as np
import pytest

D, RANK = 784, 512
FLOOR = (D - RANK) / D  # 0.347


def best_rank_k_map(x, y, k):
    """Reduced-rank regression: the rank-k matrix B minimising ‖y − x·B‖² (OLS, then its fit projected on the top k directions)."""
    ols = np.linalg.solve(x.T @ x, x.T @ y)  # (d_in, D): least squares by the normal equations
    fitted = x @ ols  # (N, D)
    _, vectors = np.linalg.eigh(fitted.T @ fitted)  # ascending: the right singular vectors of the fit, last = largest
    top = vectors[:, -k:]  # (D, k)
    return ols @ top @ top.T  # (d_in, D), rank ≤ k


def test_best_rank_512_map_cannot_beat_the_floor_even_when_told_the_noise():
    rng = np.random.default_rng(0)
    eps_train, eps_test = rng.standard_normal((2, 1500, D))
    # the input is the target itself plus unrelated features: the most any network could be told
    extra = rng.standard_normal((2, 1500, 16))
    x_train, x_test = np.concatenate([eps_train, extra[0]], axis=1), np.concatenate([eps_test, extra[1]], axis=1)
    B = best_rank_k_map(x_train, eps_train, RANK)
    assert np.linalg.matrix_rank(B, tol=1e-6) == RANK
    test_loss = np.mean((eps_test - x_test @ B) ** 2)
    train_loss = np.mean((eps_train - x_train @ B) ** 2)
    # on new noise the floor holds (the standard error here is 0.0008); on the fitted sample it
    # dips below only by fitting that sample's chance correlations (the smallest of its eigenvalues)
    assert test_loss == pytest.approx(FLOOR, abs=0.004)
    assert test_loss > FLOOR - 0.004 and train_loss < FLOOR
    # a full-rank map told the noise would score 0: the floor is the rank's doing, not the input's
    full = np.linalg.solve(x_train.T @ x_train, x_train.T @ eps_train)
    assert np.mean((eps_test - x_test @ full) ** 2) < 1e-20


@pytest.mark.parametrize("name", ["mlp_seed", "mlp"])
def test_the_mlps_output_layer_has_rank_512_and_so_this_floor(name):
    from keras_diffusion.models import build_model

    last = build_model(name).layers[-2]  # the Dense(784) before the Reshape
    W, b = (np.asarray(w, np.float64) for w in last.get_weights())  # (512, 784), (784,)
    assert W.shape == (RANK, D) and np.linalg.matrix_rank(W) == RANK
    # the best output this layer can give for a target ε is b + P(ε − b), P the projection on its row space
    q, _ = np.linalg.qr(W.T)  # (784, 512): an orthonormal basis of the outputs W·h can reach
    eps = np.random.default_rng(1).standard_normal((2000, D))
    best = b + (eps - b) @ q @ q.T
    assert np.mean((eps - best) ** 2) == pytest.approx(FLOOR, abs=0.003)
