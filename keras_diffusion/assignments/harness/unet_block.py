"""The calls of the ``unet_block`` checks (the child's side; see harness/__init__.py).

The block's weights are the student's own layers, so the checks that need
numbers first overwrite every weight with values chosen by its kind
(kernel, bias, gamma, beta) and shape only (``fill``): whatever order the
student builds the layers in, the block then computes what the grader's
NumPy version computes with the same rule. Every call also reports the
shapes of the layer's kernels, so the grader can tell a residual block from
a layer that merely has the right number of weights.
"""

import zlib

import numpy as np

PRELOAD = ("keras", "tensorflow")
BLOCKS = ((8, 16, 4), (16, 16, 8))  # (input channels, block channels, groups): a 1x1-conv skip, then the identity
EMB_DIM = 12


def fill(kind, shape):
    """The value every weight of this kind and shape gets: a fixed draw, scaled so activations stay near 1."""
    rng = np.random.default_rng([zlib.crc32(kind.encode()), *shape])
    if kind == "kernel":
        return rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
    return (1.0 if kind == "gamma" else 0.0) + 0.2 * rng.standard_normal(shape)


def kernels(layer):
    """The shapes of the layer's kernels (weights of rank 2 to 4), padded to rank 4 with -1: (n, 4)."""
    shapes = [tuple(v.shape) for v in layer.weights if 2 <= len(v.shape) <= 4]
    return np.array([list(s) + [-1] * (4 - len(s)) for s in shapes] or [[-1] * 4])


def _filled_block(student, x, emb, channels, groups):
    layer = student.ResidualBlock(channels, groups=groups)
    layer(x, emb)  # builds the weights
    for variable in layer.weights:
        kind = variable.name.split("/")[-1].split(":")[0]
        variable.assign(np.asarray(fill(kind, tuple(variable.shape)), dtype=variable.dtype))
    return layer


def _shape(student, x, emb, channels, groups):
    layer = student.ResidualBlock(channels, groups=groups)
    return {"shape": np.shape(layer(x, emb)), "kernels": kernels(layer)}


def _count(student, x, emb, channels, groups):
    layer = student.ResidualBlock(channels, groups=groups)
    layer(x, emb)
    return {"count": sum(int(np.prod(variable.shape)) for variable in layer.weights), "kernels": kernels(layer)}


def _two_embeddings(student, x, emb, emb_other, channels, groups):
    layer = _filled_block(student, x, emb, channels, groups)
    return {"a": layer(x, emb), "b": layer(x, emb_other), "kernels": kernels(layer)}


def _gradients(student, x, emb, channels, groups, weights_of_loss):
    import tensorflow as tf

    layer = _filled_block(student, x, emb, channels, groups)
    variables = layer.trainable_weights
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(layer(x, emb), tf.float32) * weights_of_loss)
    grads = tape.gradient(loss, variables)
    norms = [-1.0 if g is None else float(tf.norm(tf.convert_to_tensor(g))) for g in grads]
    return {"names": np.array([v.path for v in variables] or [""]), "norms": np.array(norms or [-1.0]), "kernels": kernels(layer)}


def cases(student, inp):
    emb = inp["emb"]

    def x(c):
        return inp[f"x{c}"]

    embeddings = [(inp["embedding_t0"], int(inp["embedding_dims"][0])), (inp["embedding_t1"], int(inp["embedding_dims"][1]))]
    return {
        "embedding_shape": [lambda: np.shape(student.sinusoidal_embedding(np.arange(7), 32))],
        "embedding_values": [lambda t=t, d=d: student.sinusoidal_embedding(t, d) for t, d in embeddings],
        "block_shape": [lambda c=c, w=w, g=g: _shape(student, x(c), emb, w, g) for c, w, g in BLOCKS],
        "block_parameters": [lambda c=c, w=w, g=g: _count(student, x(c), emb, w, g) for c, w, g in BLOCKS],
        "block_uses_emb": [lambda c=c, w=w, g=g: _two_embeddings(student, x(c), emb, inp["emb_other"], w, g) for c, w, g in BLOCKS],
        "block_gradients": [lambda c=c, w=w, g=g: _gradients(student, x(c), emb, w, g, inp["weights_of_loss"]) for c, w, g in BLOCKS],
        "block_output": [lambda c=c, w=w, g=g: _filled_block(student, x(c), emb, w, g)(x(c), emb) for c, w, g in BLOCKS],
    }
