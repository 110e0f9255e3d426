"""Checks for ``unet_block``: the sinusoidal time embedding and the U-Net's residual block.

The child fills the student's weights with ``harness.unet_block.fill`` (by kind
and shape only), so the NumPy ``block`` below, with the same rule, is what a
correct block computes. The property checks (shape, use of the embedding,
gradients) pay only for a layer that has the block's convolutions: a layer
with one weight of the right size is not a residual block.
"""

import numpy as np

from keras_diffusion.assignments.harness.unet_block import BLOCKS, EMB_DIM, fill

TITLE = "The U-Net's building blocks: sinusoidal time embedding and residual block"
CHECKS = (
    ("embedding_shape", 1, ("sinusoidal_embedding",)),
    ("embedding_values", 2, ("sinusoidal_embedding",)),
    ("block_shape", 1, ("ResidualBlock",)),
    ("block_parameters", 2, ("ResidualBlock",)),
    ("block_uses_emb", 1, ("ResidualBlock",)),
    ("block_gradients", 1, ("ResidualBlock",)),
    ("block_output", 2, ("ResidualBlock",)),
)


def inputs(seed=0):
    rng = np.random.default_rng([4, seed])
    return dict(
        **{f"x{c_in}": rng.standard_normal((2, 4, 4, c_in)).astype(np.float32) for c_in, _, _ in BLOCKS},
        emb=rng.standard_normal((2, EMB_DIM)).astype(np.float32),
        emb_other=rng.standard_normal((2, EMB_DIM)).astype(np.float32),
        weights_of_loss=rng.standard_normal((2, 4, 4, 16)).astype(np.float32),
        embedding_t0=np.sort(np.concatenate([[0, 1], rng.choice(np.arange(2, 1000), 3, replace=False)])),
        embedding_t1=rng.choice(1000, 2, replace=False),
        embedding_dims=np.array([2 * rng.integers(4, 13), 2 * rng.integers(2, 5)]),
    )


def embeddings(inp):
    return [(inp["embedding_t0"].tolist(), int(inp["embedding_dims"][0])), (inp["embedding_t1"].tolist(), int(inp["embedding_dims"][1]))]


def embedding(t, dim):
    # [sin(t·ω_i) | cos(t·ω_i)], ω_i = 10000^(−i/(dim/2)), i = 0 … dim/2 − 1
    omega = 10000.0 ** (-np.arange(dim // 2) / (dim // 2))
    angles = np.asarray(t, np.float64)[:, None] * omega[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def parameters(c_in, channels, emb_dim=EMB_DIM):
    """The weights of ResidualBlock, by layer."""
    counts = {
        "GroupNorm(x)": 2 * c_in,
        "Conv3x3": 9 * c_in * channels + channels,
        "Dense(emb)": emb_dim * channels + channels,
        "GroupNorm(h)": 2 * channels,
        "Conv3x3 (2nd)": 9 * channels * channels + channels,
    }
    if c_in != channels:
        counts["Conv1x1 skip"] = c_in * channels + channels
    return counts


def _group_norm(x, gamma, beta, groups, epsilon=1e-3):
    b, h, w, c = x.shape
    g = x.reshape(b, h, w, groups, c // groups)
    normed = (g - g.mean(axis=(1, 2, 4), keepdims=True)) / np.sqrt(g.var(axis=(1, 2, 4), keepdims=True) + epsilon)
    return normed.reshape(x.shape) * gamma + beta


def _conv(x, kernel, bias):
    """'same' convolution, stride 1: out[h, w] = Σ_ij x[h+i−k//2, w+j−k//2] · kernel[i, j] + bias."""
    k, (b, h, w, _) = kernel.shape[0], x.shape
    padded = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    out = sum(padded[:, i : i + h, j : j + w] @ kernel[i, j] for i in range(k) for j in range(k))
    return out + bias


def _swish(x):
    return x / (1 + np.exp(-x))


def block(x, emb, channels, groups):
    """The residual block in float64 with ``fill`` weights (the package's res_block)."""
    x, emb = np.asarray(x, np.float64), np.asarray(emb, np.float64)
    c_in = x.shape[-1]

    def gn(v):
        return _group_norm(v, fill("gamma", (v.shape[-1],)), fill("beta", (v.shape[-1],)), groups)

    def conv(v, k, width):
        return _conv(v, fill("kernel", (k, k, v.shape[-1], width)), fill("bias", (width,)))

    dense = emb @ fill("kernel", (emb.shape[-1], channels)) + fill("bias", (channels,))  # (B, channels)
    h = conv(_swish(gn(x)), 3, channels) + dense[:, None, None, :]
    h = conv(_swish(gn(h)), 3, channels)
    skip = x if c_in == channels else conv(x, 1, channels)
    return skip + h


# ---- the grader's side ----------------------------------------------------------------


def convolutions(c_in, channels):
    """The kernel shapes a residual block must have (padded to rank 4): two 3x3 convolutions, a 1x1 skip when the width changes."""
    shapes = [(3, 3, c_in, channels), (3, 3, channels, channels)] + ([(1, 1, c_in, channels)] if c_in != channels else [])
    return shapes


def _not_a_block(got, c_in, channels):
    """None when the returned kernel shapes include the block's convolutions, else what is missing."""
    have = [tuple(int(n) for n in row) for row in np.asarray(got, np.float64).reshape(-1, 4)]
    missing = []
    for shape in convolutions(c_in, channels):
        if shape in have:
            have.remove(shape)
        else:
            missing.append(shape)
    return "the layer lacks the block's convolution kernels " + ", ".join(map(str, missing)) if missing else None


def _of_a_block(c_in, channels, keys, judge):
    """A property check's judgement, given only to a layer that has the block's convolutions."""

    def judged(got):
        if not isinstance(got, dict) or set(got) != set(keys) | {"kernels"}:
            return "could not read what the block returned"
        return _not_a_block(got["kernels"], c_in, channels) or judge(got)

    return judged


def expected(inp):
    x, emb = {c: inp[f"x{c}"] for c, _, _ in BLOCKS}, inp["emb"]

    def call(c, w, g):
        return f"ResidualBlock({w}, groups={g})(x {x[c].shape}, emb {emb.shape})"

    def shape_is(shape):
        return lambda got: None if tuple(np.ravel(got).astype(int)) == shape else f"expected shape {shape}, got {tuple(np.ravel(got).astype(int))}"

    def count_is(c, w):
        counts = parameters(c, w)

        def judge(got):
            got = int(np.ravel(got["count"])[0])
            if got == sum(counts.values()):
                return None
            layers = " + ".join(f"{name} {n}" for name, n in counts.items())
            return f"expected {sum(counts.values())} parameters ({layers}), got {got}"

        return _of_a_block(c, w, ("count",), judge)

    def depends_on_emb(got):
        if np.max(np.abs(got["a"] - got["b"])) > 1e-4 * max(np.max(np.abs(got["a"])), 1.0):
            return None
        return "the output is the same for two different emb: add Dense(channels)(emb) to h"

    def gradients_reach(got):
        if got["names"].size == 1 and got["names"][0] == "":
            return "the block has no trainable weights"
        missing = [str(name) for name, norm in zip(got["names"], got["norms"]) if not norm > 0]
        return f"no gradient reaches {', '.join(missing)} (is that layer used in call?)" if missing else None

    def block_shape(c, w):
        return _of_a_block(c, w, ("shape",), lambda got: shape_is((2, 4, 4, w))(got["shape"]))

    return {
        "embedding_shape": [("sinusoidal_embedding(t of shape (7,), 32)", shape_is((7, 32)))],
        "embedding_values": [(f"sinusoidal_embedding(t={t}, {d})", embedding(t, d)) for t, d in embeddings(inp)],
        "block_shape": [(call(c, w, g), block_shape(c, w)) for c, w, g in BLOCKS],
        "block_parameters": [(call(c, w, g), count_is(c, w)) for c, w, g in BLOCKS],
        "block_uses_emb": [(call(c, w, g) + " and the same with another emb", _of_a_block(c, w, ("a", "b"), depends_on_emb)) for c, w, g in BLOCKS],
        "block_gradients": [(call(c, w, g), _of_a_block(c, w, ("names", "norms"), gradients_reach)) for c, w, g in BLOCKS],
        "block_output": [(call(c, w, g) + " with the grader's weights", block(x[c], emb, w, g)) for c, w, g in BLOCKS],
    }
