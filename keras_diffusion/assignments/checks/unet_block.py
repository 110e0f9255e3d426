"""Checks for ``unet_block``: the sinusoidal time embedding and the U-Net's residual block.

The block's weights are the student's own layers, so the checks that need
numbers first overwrite every weight with values chosen by its kind
(kernel, bias, gamma, beta) and shape only (``fill``): whatever order the
student builds the layers in, the block then computes what the NumPy
reference below computes with the same rule.
"""

import zlib

import numpy as np

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
# (input channels, block channels, groups): a 1x1-conv skip, then the identity skip with the default groups=8
BLOCKS = ((8, 16, 4), (16, 16, 8))
EMB_DIM = 12
EMBEDDINGS = (([0, 1, 2, 17, 199], 16), ([3, 150], 6))


def inputs():
    rng = np.random.default_rng(4)
    return dict(
        x={c_in: rng.standard_normal((2, 4, 4, c_in)).astype(np.float32) for c_in, _, _ in BLOCKS},
        emb=rng.standard_normal((2, EMB_DIM)).astype(np.float32),
        emb_other=rng.standard_normal((2, EMB_DIM)).astype(np.float32),
        weights_of_loss=rng.standard_normal((2, 4, 4, 16)).astype(np.float32),
    )


def fill(kind, shape):
    """The value every weight of this kind and shape gets: a fixed draw, scaled so activations stay near 1."""
    rng = np.random.default_rng([zlib.crc32(kind.encode()), *shape])
    if kind == "kernel":
        return rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
    return (1.0 if kind == "gamma" else 0.0) + 0.2 * rng.standard_normal(shape)


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


# ---- the child's side: build the student's block, set its weights, call it ----------


def _filled_block(student, x, emb, channels, groups):
    layer = student.ResidualBlock(channels, groups=groups)
    layer(x, emb)  # builds the weights
    for variable in layer.weights:
        kind = variable.name.split("/")[-1].split(":")[0]
        variable.assign(np.asarray(fill(kind, tuple(variable.shape)), dtype=variable.dtype))
    return layer


def _count(student, x, emb, channels, groups):
    layer = student.ResidualBlock(channels, groups=groups)
    layer(x, emb)
    return sum(int(np.prod(variable.shape)) for variable in layer.weights)


def _gradients(student, x, emb, channels, groups, weights_of_loss):
    import tensorflow as tf

    layer = _filled_block(student, x, emb, channels, groups)
    variables = layer.trainable_weights
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(layer(x, emb), tf.float32) * weights_of_loss)
    grads = tape.gradient(loss, variables)
    norms = [-1.0 if g is None else float(tf.norm(tf.convert_to_tensor(g))) for g in grads]
    return {"names": np.array([v.path for v in variables] or [""]), "norms": np.array(norms or [-1.0])}


def cases(student, inp):
    x, emb = inp["x"], inp["emb"]
    return {
        "embedding_shape": [lambda: np.shape(student.sinusoidal_embedding(np.arange(7), 32))],
        "embedding_values": [lambda t=t, d=d: student.sinusoidal_embedding(np.array(t), d) for t, d in EMBEDDINGS],
        "block_shape": [lambda c=c, w=w, g=g: np.shape(student.ResidualBlock(w, groups=g)(x[c], emb)) for c, w, g in BLOCKS],
        "block_parameters": [lambda c=c, w=w, g=g: _count(student, x[c], emb, w, g) for c, w, g in BLOCKS],
        "block_uses_emb": [
            lambda c=c, w=w, g=g: (lambda layer: {"a": layer(x[c], emb), "b": layer(x[c], inp["emb_other"])})(
                _filled_block(student, x[c], emb, w, g)
            )
            for c, w, g in BLOCKS
        ],
        "block_gradients": [lambda c=c, w=w, g=g: _gradients(student, x[c], emb, w, g, inp["weights_of_loss"]) for c, w, g in BLOCKS],
        "block_output": [lambda c=c, w=w, g=g: _filled_block(student, x[c], emb, w, g)(x[c], emb) for c, w, g in BLOCKS],
    }


# ---- the grader's side ----------------------------------------------------------------


def expected(inp):
    x, emb = inp["x"], inp["emb"]

    def call(c, w, g):
        return f"ResidualBlock({w}, groups={g})(x {x[c].shape}, emb {emb.shape})"

    def shape_is(shape):
        return lambda got: None if tuple(np.ravel(got).astype(int)) == shape else f"expected shape {shape}, got {tuple(np.ravel(got).astype(int))}"

    def count_is(c, w):
        counts = parameters(c, w)

        def judge(got):
            got = int(np.ravel(got)[0])
            if got == sum(counts.values()):
                return None
            layers = " + ".join(f"{name} {n}" for name, n in counts.items())
            return f"expected {sum(counts.values())} parameters ({layers}), got {got}"

        return judge

    def depends_on_emb(got):
        if not isinstance(got, dict) or set(got) != {"a", "b"}:
            return "could not read the block's outputs"
        if np.max(np.abs(got["a"] - got["b"])) > 1e-4 * max(np.max(np.abs(got["a"])), 1.0):
            return None
        return "the output is the same for two different emb: add Dense(channels)(emb) to h"

    def gradients_reach(got):
        if not isinstance(got, dict) or set(got) != {"names", "norms"}:
            return "could not read the gradients"
        if got["names"].size == 1 and got["names"][0] == "":
            return "the block has no trainable weights"
        missing = [str(name) for name, norm in zip(got["names"], got["norms"]) if not norm > 0]
        return f"no gradient reaches {', '.join(missing)} (is that layer used in call?)" if missing else None

    return {
        "embedding_shape": [("sinusoidal_embedding(t of shape (7,), 32)", shape_is((7, 32)))],
        "embedding_values": [(f"sinusoidal_embedding(t={t}, {d})", embedding(t, d)) for t, d in EMBEDDINGS],
        "block_shape": [(call(c, w, g), shape_is((2, 4, 4, w))) for c, w, g in BLOCKS],
        "block_parameters": [(call(c, w, g), count_is(c, w)) for c, w, g in BLOCKS],
        "block_uses_emb": [(call(c, w, g) + " and the same with another emb", depends_on_emb) for c, w, g in BLOCKS],
        "block_gradients": [(call(c, w, g), gradients_reach) for c, w, g in BLOCKS],
        "block_output": [(call(c, w, g) + " with the grader's weights", block(x[c], emb, w, g)) for c, w, g in BLOCKS],
    }
