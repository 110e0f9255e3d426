"""The names the command lines offer as choices, in a module that imports nothing.

``--help`` and argument errors must answer at once, and importing TensorFlow
takes seconds: the parsers read their choices here, and the modules that use
them (data, devices, reverse) import them from here, so there is one list.
The samplers' names live with their registry, ``samplers``, which is import-free too.
"""

DATASETS = ("fashion_mnist", "mnist")
SCALINGS = ("zero_one", "minus_one_one")  # [0, 1] as the classic demo, [-1, 1] as DDPM
SOURCES = ("auto", "idx", "tfds", "keras")
STRATEGIES = ("default", "mirrored", "multiworker")
VARIANCES = ("beta", "posterior")
EDITS = ("inpaint", "superres", "img2img", "translate")  # python -m keras_diffusion.edit METHOD
MASKS = ("box", "left", "right", "top", "bottom", "random")  # the region inpainting fills
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")  # the dtype policies a denoiser computes in
OBJECTIVES = ("eps", "x0", "v")  # what a denoiser's network predicts and its loss compares
LOSS_WEIGHTS = ("uniform", "min_snr")  # how the loss weighs the noise levels
LR_SCHEDULES = ("constant", "cosine")  # the learning rate over the run
