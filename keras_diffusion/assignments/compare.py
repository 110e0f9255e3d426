"""How the grader compares a student's array with the expected one: float64, a float32-sized tolerance.

A value passes when |got − expected| ≤ RTOL·|expected| + ATOL·max(1, max|expected|).
float32 keeps about 7 significant digits; a correct float32 solution loses a
few more in cumulative products and in the divisions of the reverse step,
and stays well inside 1e-4. The bugs the checks look for (ᾱ for sqrt(ᾱ), an
off-by-one in t, sin and cos swapped) move values by far more.
"""

import numpy as np

RTOL = 1e-4
ATOL = 1e-5


def within(expected, got):
    """True where got is within the tolerance of expected (NaN never is); arrays of one shape."""
    expected, got = np.asarray(expected, np.float64), np.asarray(got, np.float64)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    return np.abs(got - expected) <= RTOL * np.abs(expected) + ATOL * scale


def compare(expected, got):
    """None when got matches expected, else one line: the first differing index, both values, the max abs error."""
    expected = np.asarray(expected, np.float64)
    if isinstance(got, dict):
        return f"returned {len(got)} values, expected one array of shape {expected.shape}"
    got = np.asarray(got, np.float64)
    if expected.shape == () and got.size == 1:
        got = got.reshape(())  # a scalar may come back as shape (1,)
    if got.shape != expected.shape:
        return f"expected shape {expected.shape}, got {got.shape}"
    bad = ~within(expected, got)
    if not bad.any():
        return None
    error = np.abs(got - expected)
    worst = "nan" if np.isnan(error).any() else f"{np.max(error):.3g}"
    if expected.shape == ():
        return f"expected {expected:.6g}, got {got:.6g}"
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return (
        f"expected {expected[index]:.6g} at index {index}, got {got[index]:.6g}; "
        f"max abs error {worst} ({int(bad.sum())} of {bad.size} values off)"
    )
