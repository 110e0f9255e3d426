"""Guidance: steering the reverse process toward a class by changing ε̂, never the update rule.

Both kinds follow from Bayes' rule on scores, with the score
∇ log p(x_t) = −ε̂/sqrt(1−ᾱ_t) (Song et al. 2021):

    ∇ log p(x_t | y) = ∇ log p(x_t) + ∇ log p(y | x_t).

Classifier guidance takes the second term from a noise-aware classifier
(Dhariwal & Nichol 2021); classifier-free guidance gets it from the same
network run with and without its label (Ho & Salimans 2022). Either way the
result is an ε̃ that the DDPM or DDIM step uses in place of ε̂.
"""

import numpy as np
from keras import ops

from keras_diffusion import backends
from keras_diffusion.forward import extract
from keras_diffusion.models.embeddings import num_classes_of
from keras_diffusion.models.prompt import prompt_tokenizer_of


def cfg_eps(denoiser, x_t, t, labels, null_label, guidance):
    """ε̃ = (1 + w)·ε(x_t, y) − w·ε(x_t, ∅)   (Ho & Salimans 2022, eq. 6).

    The conditional and the null pass go through the denoiser as ONE batch
    of 2B, which costs less than two calls; w = 0 makes a single pass. A
    prompt works the same way: y is its tokens, ∅ the null prompt (all
    padding) or a negative prompt. KerasHub's and diffusers' ``guidance_scale``
    is this w + 1: their ε̃ = ε(∅) + s·(ε(y) − ε(∅)).

    Args:
        denoiser: a conditional denoiser, called as ``denoiser([x_t, t, y])``.
        x_t: (B, H, W, C). t: int (B,). labels: int (B,), or prompt tokens int (B, L).
        null_label: the label that means "no class" (the denoiser's num_classes),
            or the tokens (B, L) that take ∅'s place (the null prompt, or a negative prompt).
        guidance: w ≥ 0, a Python float (it decides the graph).
    """
    if guidance == 0:
        return denoiser([x_t, t, labels])
    null = ops.full_like(labels, null_label) if isinstance(null_label, (int, np.integer)) else null_label
    eps = denoiser([ops.concatenate([x_t, x_t], 0), ops.concatenate([t, t], 0), ops.concatenate([labels, null], 0)])  # (2B, H, W, C)
    eps_cond, eps_null = ops.split(ops.cast(eps, "float32"), 2, axis=0)  # (B, H, W, C) each
    return (1.0 + guidance) * eps_cond - guidance * eps_null


def classifier_gradient(classifier, x_t, t, labels):
    """∇_{x_t} log p_φ(y | x_t, t), the classifier's pull toward y, shaped like x_t."""

    def log_p(x):  # (B,): each image's log p depends only on its own pixels, so the gradient of the sum is per image
        logits = ops.cast(classifier([x, t]), "float32")  # (B, classes)
        return ops.take_along_axis(ops.log_softmax(logits), ops.reshape(ops.cast(labels, "int32"), (-1, 1)), axis=1)[:, 0]

    return backends.gradient(log_p, x_t)


def classifier_eps(schedule, eps, classifier, x_t, t, labels, scale):
    """ε̃ = ε̂ − s·sqrt(1−ᾱ_t)·∇_{x_t} log p_φ(y | x_t, t)   (Dhariwal & Nichol 2021, eq. 14).

    The ε form works for DDIM as well as DDPM: it is the score of
    p(x_t)·p(y | x_t)^s written as a noise prediction.
    """
    ndim = len(x_t.shape)
    return ops.cast(eps, "float32") - scale * extract(schedule, "sqrt_one_minus_alpha_bars", t, ndim) * classifier_gradient(
        classifier, x_t, t, labels
    )


class Guide:
    """How a sampling loop gets ε̃ at each step: the denoiser alone, CFG, classifier guidance, or both.

    ``sample`` builds one from its arguments, checks them against the
    denoiser once, and calls ``eps(x_t, t, labels)`` inside its compiled loop.
    With a classifier and no classifier-free guidance (w = 0), a conditional
    denoiser runs with its null label, so classifier guidance always steers
    an unconditional model; w > 0 with a classifier combines both.
    """

    def __init__(self, denoiser, labels=None, guidance=0.0, classifier=None, classifier_scale=0.0, prompts=None, negative_prompt=None):
        self.num_classes = num_classes_of(denoiser)
        self.tokenizer = prompt_tokenizer_of(denoiser)
        self.guidance, self.classifier_scale = float(guidance), float(classifier_scale)
        self.classifier = classifier if self.classifier_scale else None
        if self.tokenizer is None:
            if prompts is not None or negative_prompt is not None:
                raise ValueError("prompts need a text-conditioned denoiser (train one with --text); this one takes labels= or nothing")
            _check(self, labels, classifier)
        else:
            _check_prompts(self, labels, classifier, prompts, negative_prompt)
            self.prompts = None if prompts is None else self.tokenizer.encode(prompts)  # (P, L)
            self.negative = self.tokenizer.encode(negative_prompt or "")  # (1, L): all padding is the null prompt

    @property
    def key(self):
        """What decides the compiled graph (the labels and prompts themselves are a loop input)."""
        return (self.num_classes, self.tokenizer is not None, self.guidance, self.classifier_scale, id(self.classifier))

    def labels(self, labels, n):
        """What the loop is fed for n images: labels int32 (n,), the null label when none were asked for;
        for a text model, int32 (n, 2, L): each image's prompt tokens and the tokens that stand for ∅."""
        if self.tokenizer is not None:
            prompts = self.negative if self.prompts is None else self.prompts
            if len(prompts) not in (1, n):
                raise ValueError(f"prompts: give one prompt for all {n} images or one per image, got {len(prompts)}")
            return np.stack([np.broadcast_to(prompts, (n, prompts.shape[1])), np.broadcast_to(self.negative, (n, prompts.shape[1]))], axis=1)
        if labels is None:
            return np.full(n, self.num_classes or 0, np.int32)
        labels = np.asarray(labels)
        return np.broadcast_to(labels, (n,)).astype(np.int32) if labels.ndim == 0 else labels.astype(np.int32)

    def eps(self, denoiser, schedule, x_t, t, labels):
        """ε̃ for a batch: (B, H, W, C) float32."""
        if self.tokenizer is not None:
            return ops.cast(cfg_eps(denoiser, x_t, t, labels[:, 0], labels[:, 1], self.guidance), "float32")
        if self.num_classes is None:
            eps = denoiser([x_t, t])
        elif self.classifier is not None and not self.guidance:
            # classifier guidance alone: the conditional network with its null label IS an unconditional model
            eps = denoiser([x_t, t, ops.full_like(labels, self.num_classes)])
        else:
            eps = cfg_eps(denoiser, x_t, t, labels, self.num_classes, self.guidance)
        if self.classifier is not None:
            eps = classifier_eps(schedule, eps, self.classifier, x_t, t, labels, self.classifier_scale)
        return ops.cast(eps, "float32")


def _check(guide, labels, classifier):
    """One-line errors for guidance settings that cannot mean what the caller wants."""
    if not guide.guidance >= 0:
        raise ValueError(f"guidance must be >= 0 (0 = no classifier-free guidance), got {guide.guidance}")
    if not guide.classifier_scale >= 0:
        raise ValueError(f"classifier_scale must be >= 0, got {guide.classifier_scale}")
    if guide.classifier_scale and classifier is None:
        raise ValueError("classifier_scale needs classifier=: a noise-aware classifier (python -m keras_diffusion.train --classifier)")
    if classifier is not None and len(classifier.inputs) != 2:
        raise ValueError("classifier must be a noise-aware classifier called as classifier([x_t, t])")
    if guide.num_classes is None and guide.guidance:
        raise ValueError(
            "classifier-free guidance needs a class-conditional denoiser (train one with --conditional); "
            "for this unconditional one use classifier guidance (classifier=, classifier_scale=)"
        )
    if guide.num_classes is None and labels is not None and guide.classifier is None:
        raise ValueError(
            "labels were given to an unconditional denoiser, which would ignore them: "
            "train with --conditional, or add a classifier for classifier guidance"
        )
    if labels is None and (guide.guidance or guide.classifier is not None):
        raise ValueError("guidance needs labels=: the class of each image (or one class for all)")
    if labels is not None:
        values = np.asarray(labels)
        classes = guide.num_classes if guide.num_classes is not None else classifier.outputs[0].shape[-1]
        # the null label is a valid input only to a conditional model without guidance (an unconditional draw)
        top = classes if guide.num_classes is not None and not guide.guidance and guide.classifier is None else classes - 1
        if values.dtype.kind not in "iu" or values.size == 0 or values.min() < 0 or values.max() > top:
            raise ValueError(f"labels must be integers in [0, {top}], got {_quote(values)}")


def _check_prompts(guide, labels, classifier, prompts, negative_prompt):
    """One-line errors for a text-conditioned denoiser's settings."""
    if not guide.guidance >= 0:
        raise ValueError(f"guidance must be >= 0 (0 = no classifier-free guidance), got {guide.guidance}")
    if labels is not None:
        raise ValueError("this denoiser is conditioned on text: give prompts= (e.g. prompts=['a dark ankle boot']), not labels=")
    if classifier is not None or guide.classifier_scale:
        raise ValueError("classifier guidance steers toward a class label; a text-conditioned denoiser is steered by prompts= with guidance=")
    if prompts is None and (guide.guidance or negative_prompt is not None):
        raise ValueError("guidance and negative_prompt need prompts=: the text of each image (or one text for all)")
    if prompts is not None and (isinstance(prompts, str) and not prompts.strip() or not isinstance(prompts, str) and len(list(prompts)) == 0):
        raise ValueError("prompts is empty: give a text such as 'a dark ankle boot' (no prompt at all: leave prompts out)")


def _quote(values):
    flat = np.asarray(values).reshape(-1)
    return repr(flat[:8].tolist()) + (" ..." if flat.size > 8 else "")


DEFAULT_GUIDANCE = 3.0  # the w that `sample --label` uses unless told otherwise (see README: label accuracy against w)


def accuracy_against_t(classifier, schedule, x0, labels, timesteps, seed=0, batch_size=500):
    """The noisy classifier's accuracy on x_t = q_sample(x_0, t, ε) at each t: how far its gradient can be trusted.

    Args:
        x0: scaled images (N, H, W, C). labels: int (N,). timesteps: the t to test.

    Returns:
        float accuracies, one per t.
    """
    from keras_diffusion.forward import q_sample

    rng = np.random.default_rng(seed)
    accuracies = []
    for t in timesteps:
        hits = 0
        for first in range(0, len(x0), batch_size):
            batch = np.asarray(x0[first : first + batch_size], np.float32)
            t_batch = np.full(len(batch), t, np.int32)
            x_t = q_sample(schedule, batch, t_batch, rng.standard_normal(batch.shape).astype(np.float32))
            logits = backends.to_numpy(classifier([x_t, ops.convert_to_tensor(t_batch)], training=False))  # (B, classes)
            hits += int(np.sum(np.argmax(logits, -1) == labels[first : first + batch_size]))
        accuracies.append(hits / len(x0))
    return accuracies
