"""The noise schedule: betas and every quantity derived from them.

Symbols follow Ho et al. 2020 (DDPM, https://arxiv.org/abs/2006.11239).
The timestep index t runs over 0..T-1 and indexes these arrays directly:
index t is DDPM's step t+1, so ``alpha_bars[0] = 1 - betas[0]`` and
``alpha_bars[T-1]`` is the signal left at the end of the forward process.

All arrays are float64 NumPy of length T; the forward and reverse code casts
the few it needs to float32 tensors (see ``NoiseSchedule.tensor``).
"""

import math

import numpy as np

SCHEDULES = ("linear", "scaled_linear", "cosine")


class NoiseSchedule:
    """A fixed variance schedule β_1..β_T and its derived quantities.

    Build one with ``NoiseSchedule.linear``, ``NoiseSchedule.scaled_linear``,
    ``NoiseSchedule.cosine`` or ``NoiseSchedule.from_config``.

    Args:
        betas: 1-D array of T variances, each in (0, 1).
        name: which constructor made it (kept for ``get_config``).
        params: the constructor's keyword arguments (kept for ``get_config``).
    """

    def __init__(self, betas, name="custom", params=None):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or betas.size < 1:
            raise ValueError(f"betas must be a 1-D array with at least one value, got shape {betas.shape}")
        if not np.all((betas > 0) & (betas < 1)):
            raise ValueError(f"betas must lie in (0, 1), got values in [{betas.min()}, {betas.max()}]")
        self.name = name
        self.params = dict(params or {})
        self.timesteps = int(betas.size)
        self.betas = betas
        # α_t = 1 − β_t
        self.alphas = 1.0 - betas
        # ᾱ_t = ∏_{s≤t} α_s   (DDPM eq. 4)
        self.alpha_bars = np.cumprod(self.alphas)
        # ᾱ_{t−1}, with ᾱ_0 = 1 before the first step (x_0 is the data itself)
        self.alpha_bars_prev = np.append(1.0, self.alpha_bars[:-1])
        self.sqrt_alpha_bars = np.sqrt(self.alpha_bars)
        self.sqrt_one_minus_alpha_bars = np.sqrt(1.0 - self.alpha_bars)
        # q(x_{t−1} | x_t, x_0) = N(coef1·x_0 + coef2·x_t, β̃_t)   (DDPM eq. 6-7)
        self.posterior_variance = betas * (1.0 - self.alpha_bars_prev) / (1.0 - self.alpha_bars)
        self.posterior_mean_coef1 = betas * np.sqrt(self.alpha_bars_prev) / (1.0 - self.alpha_bars)
        self.posterior_mean_coef2 = (1.0 - self.alpha_bars_prev) * np.sqrt(self.alphas) / (1.0 - self.alpha_bars)
        # β̃_0 = 0; its log is clipped to β̃_1, as in the DDPM reference code
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1:2], self.posterior_variance[1:])
            if self.timesteps > 1
            else betas
        )
        # SNR(t) = ᾱ_t / (1 − ᾱ_t)   (Kingma et al. 2021, eq. 2)
        self.snr = self.alpha_bars / (1.0 - self.alpha_bars)

    # ---- constructors -------------------------------------------------

    @classmethod
    def linear(cls, timesteps=200, beta_start=1e-4, beta_end=0.02):
        """Betas spaced evenly from beta_start to beta_end (DDPM sec. 4; the classic demo's default).

        At T=200 these leave sqrt(ᾱ_T) ≈ 0.36 of the signal: the values were
        tuned for T=1000. Use ``scaled_linear`` or ``cosine`` to destroy it.
        """
        _check_timesteps(timesteps)
        _check_beta("beta_start", beta_start)
        _check_beta("beta_end", beta_end)
        if beta_start > beta_end:
            raise ValueError(f"beta_start must be <= beta_end, got beta_start={beta_start} > beta_end={beta_end}")
        betas = np.linspace(beta_start, beta_end, timesteps, dtype=np.float64)
        return cls(betas, "linear", dict(timesteps=timesteps, beta_start=beta_start, beta_end=beta_end))

    @classmethod
    def scaled_linear(cls, timesteps=200, beta_start=1e-4, beta_end=0.02):
        """Linear betas multiplied by 1000/T, so any T destroys the signal like T=1000 does.

        This is improved-diffusion's ``get_named_beta_schedule("linear")``
        (Nichol & Dhariwal 2021, https://arxiv.org/abs/2102.09672): at T=200
        the betas run 5e-4..0.1 and ᾱ_T ≈ 3e-5.
        """
        _check_timesteps(timesteps)
        scale = 1000.0 / timesteps
        start, end = beta_start * scale, min(beta_end * scale, 0.999)
        _check_beta("beta_start * 1000/T", start)
        _check_beta("beta_end * 1000/T", end)
        if start > end:
            raise ValueError(f"beta_start must be <= beta_end, got beta_start={beta_start} > beta_end={beta_end}")
        betas = np.linspace(start, end, timesteps, dtype=np.float64)
        return cls(betas, "scaled_linear", dict(timesteps=timesteps, beta_start=beta_start, beta_end=beta_end))

    @classmethod
    def cosine(cls, timesteps=200, s=0.008, max_beta=0.999):
        """ᾱ_t = f(t)/f(0) with f(t) = cos²((t/T + s)/(1 + s) · π/2)   (Nichol & Dhariwal 2021, eq. 17).

        Betas are clipped to max_beta so the last step is not singular.
        """
        _check_timesteps(timesteps)
        if s < 0:
            raise ValueError(f"s must be >= 0, got {s}")
        _check_beta("max_beta", max_beta)

        def f(u):
            return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

        # β_t = 1 − ᾱ_t / ᾱ_{t−1}   (Nichol & Dhariwal 2021, sec. 3.2)
        betas = [min(1 - f((i + 1) / timesteps) / f(i / timesteps), max_beta) for i in range(timesteps)]
        return cls(np.array(betas), "cosine", dict(timesteps=timesteps, s=s, max_beta=max_beta))

    @classmethod
    def from_name(cls, name, timesteps=200, **kwargs):
        """Build a schedule by name: one of ``SCHEDULES``."""
        if name not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {name!r}")
        return getattr(cls, name)(timesteps=timesteps, **kwargs)

    # ---- serialisation ------------------------------------------------

    def get_config(self):
        """A JSON-ready dict that ``from_config`` turns back into this schedule."""
        if self.name == "custom":
            return {"name": "custom", "betas": self.betas.tolist()}
        return {"name": self.name, **self.params}

    @classmethod
    def from_config(cls, config):
        """Inverse of ``get_config``."""
        config = dict(config)
        name = config.pop("name", None)
        if name == "custom":
            return cls(config["betas"])
        try:
            return cls.from_name(name, **config)
        except TypeError as error:
            raise ValueError(f"schedule config for {name!r} has unexpected keys {sorted(config)}: {error}") from None

    def __eq__(self, other):
        return isinstance(other, NoiseSchedule) and np.array_equal(self.betas, other.betas)

    def __repr__(self):
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"NoiseSchedule.{self.name}({params})"

    # ---- tensors --------------------------------------------------------

    def tensor(self, name, dtype="float32"):
        """One schedule array as a constant tensor (cast once, then indexed with t)."""
        from keras import ops

        return ops.convert_to_tensor(getattr(self, name).astype(dtype))

    def check_t(self, t):
        """Raise ValueError when an integer timestep (array) lies outside [0, T-1]."""
        t = np.asarray(t)
        if t.size and (t.min() < 0 or t.max() > self.timesteps - 1):
            raise ValueError(
                f"t must be in [0, {self.timesteps - 1}] for a schedule of T={self.timesteps}, "
                f"got values in [{t.min()}, {t.max()}]"
            )


def _check_timesteps(timesteps):
    if isinstance(timesteps, bool) or not isinstance(timesteps, (int, np.integer)) or timesteps < 1:
        raise ValueError(f"timesteps must be an integer >= 1, got {timesteps!r}")


def _check_beta(name, value):
    if not 0 < value < 1:
        raise ValueError(f"{name} must be in (0, 1), got {value}")
