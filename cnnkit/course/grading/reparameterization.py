"""Graders of exercise 12 · Re-parameterization (solutions/12_reparameterization.ipynb)."""

from __future__ import annotations

import numpy as np

from .core import array, expect, grade, one_of, student

__all__ = ["check_fuse_conv_bn", "check_pad_to_3x3", "check_identity_as_3x3"]


def _run_conv(x, kernel, bias=None):
    """Output of a real Keras Conv2D (stride 1, padding "same") holding `kernel` (and `bias`)."""
    import keras

    kernel = np.asarray(kernel, dtype="float32")
    layer = keras.layers.Conv2D(kernel.shape[-1], kernel.shape[:2], padding="same",
                                use_bias=bias is not None)
    layer.build(x.shape)
    layer.set_weights([kernel] + ([np.asarray(bias, dtype="float32")] if bias is not None else []))
    return keras.ops.convert_to_numpy(layer(x))


def _fuse_hint(kernel, bias, w, gamma, beta, mean, var, eps):
    """Name the usual slip behind a wrong fused (kernel, bias)."""
    scale = gamma / np.sqrt(var + eps)
    tolerance = {"rtol": 1e-4, "atol": 1e-6}
    no_eps = f"add eps = {eps:g} to the variance under the square root: sqrt(var + eps)"
    fixed = f"use the eps you are given ({eps:g}), not a fixed value"
    if not (kernel.shape == w.shape and np.allclose(kernel, w * scale, **tolerance)):
        return one_of(kernel, [
            (w, "the kernel changes too: scale each output channel's filter (the LAST axis of "
                "the kernel) by gamma / sqrt(var + eps)"),
            (w * gamma / np.sqrt(var), no_eps),
            *((w * gamma / np.sqrt(var + e), fixed) for e in (1e-3, 1e-5) if e != eps),
            (w * gamma / (var + eps), "divide by the standard deviation sqrt(var + eps), not "
                                      "by the variance")],
            "W' = W · gamma / sqrt(var + eps), one factor per OUTPUT channel: the last axis of "
            "a Keras kernel (height, width, c_in, c_out)", **tolerance)
    return one_of(bias, [
        (beta - mean * gamma / np.sqrt(var), no_eps),
        (beta - mean, "the mean is scaled too: b' = beta − mean · gamma / sqrt(var + eps)"),
        (beta, "BatchNorm subtracts the moving mean: b' = beta − mean · gamma / "
               "sqrt(var + eps)"),
        ((beta - mean) * scale, "beta is added after the scaling: b' = beta − mean · gamma / "
                                "sqrt(var + eps)")],
        "your kernel is right; the bias is b' = beta − mean · gamma / sqrt(var + eps)",
        **tolerance)


def check_fuse_conv_bn(fuse_conv_bn):
    """`fuse_conv_bn(kernel, gamma, beta, mean, var, eps)` -> (kernel, bias) of one Conv2D.

    Checked on real layers: a Conv2D without bias followed by a BatchNormalization with random
    statistics, in inference mode, must equal one Conv2D holding the returned kernel and bias.
    """
    fuse_conv_bn = student(fuse_conv_bn)
    import keras

    def run():
        rng = np.random.default_rng(12)
        # (kernel size, c_in, c_out, eps, variances from, to): small variances make eps matter.
        cases = [(3, 4, 6, 1e-5, 0.2, 3.0), (3, 6, 6, 1e-3, 1e-3, 5e-3), (1, 8, 8, 1e-3, 0.2, 3.0),
                 (3, 5, 3, 1e-5, 1e-5, 5e-5), (1, 3, 16, 1e-5, 0.5, 2.0)]
        for _ in range(5):
            c = int(rng.integers(1, 17))
            cases.append((int(rng.choice([1, 3])), c, c if rng.random() < 0.5 else int(
                rng.integers(1, 17)), float(rng.choice([1e-3, 1e-5])), 0.05, 4.0))
        for k, c_in, c_out, eps, low, high in cases:
            x = rng.normal(size=(2, 7, 7, c_in)).astype("float32")
            conv = keras.layers.Conv2D(c_out, k, padding="same", use_bias=False)
            bn = keras.layers.BatchNormalization(epsilon=eps)
            bn(conv(x))  # builds both
            w = conv.get_weights()[0].astype("float64")
            gamma, beta = rng.normal(1, 0.3, c_out), rng.normal(0, 0.3, c_out)
            mean, var = rng.normal(0, 0.5, c_out), rng.uniform(low, high, c_out)
            bn.set_weights([gamma, beta, mean, var])
            want = keras.ops.convert_to_numpy(bn(conv(x), training=False))
            call = (f"fuse_conv_bn(kernel of shape {w.shape}, gamma, beta, mean, var, "
                    f"eps={eps:g})")
            result = fuse_conv_bn(w.copy(), gamma.copy(), beta.copy(), mean.copy(), var.copy(),
                                  eps)
            expect(isinstance(result, (tuple, list)) and len(result) == 2,
                    f"{call} returned {type(result).__name__}: return a pair (kernel, bias).")
            kernel = array(result[0], f"{call}[0], the kernel,")
            bias = array(result[1], f"{call}[1], the bias,")
            if kernel.shape == (c_out,) and bias.shape == w.shape:
                expect(False, f"{call} returned (bias, kernel): return them in the order "
                       "(kernel, bias).")
            expect(kernel.shape == w.shape, f"{call}: your kernel has shape {kernel.shape}, "
                    f"expected {w.shape}, the shape of the convolution's kernel.")
            expect(bias.shape == (c_out,), f"{call}: your bias has shape {bias.shape}, expected "
                    f"({c_out},): one bias per output channel.")
            got = _run_conv(x, kernel, bias)
            error = float(np.abs(got - want).max())
            expect(np.allclose(got, want, rtol=1e-4, atol=1e-4),
                    f"{call}: a Conv2D with your kernel and bias differs from Conv2D + "
                    f"BatchNormalization (inference) by up to {error:.3g}: "
                    f"{_fuse_hint(kernel, bias, w, gamma, beta, mean, var, eps)}.")
        return (f"{len(cases)} Conv2D + BatchNormalization pairs (1x1 and 3x3, eps 1e-3 and "
                "1e-5, small and large variances) equal one Conv2D with your kernel and bias.")

    return grade("fuse_conv_bn", run)


def check_pad_to_3x3(pad_to_3x3):
    """`pad_to_3x3(kernel)` -> the (1, 1, c_in, c_out) kernel as a (3, 3, c_in, c_out) kernel.

    Checked by running real Conv2D layers with padding="same": the 3x3 kernel must give the 1x1
    kernel's output.
    """
    pad_to_3x3 = student(pad_to_3x3)

    def run():
        rng = np.random.default_rng(13)
        cases = [(4, 6), (1, 1), (8, 8), (3, 16)] + [
            (int(rng.integers(1, 13)), int(rng.integers(1, 13))) for _ in range(6)]
        for c_in, c_out in cases:
            k1 = rng.normal(size=(1, 1, c_in, c_out))
            call = f"pad_to_3x3(kernel of shape {k1.shape})"
            k3 = array(pad_to_3x3(k1.copy()), call)
            order = "keep the kernel's axes in their order: (height, width, c_in, c_out)"
            if k3.shape == (3, 3, c_in + 2, c_out + 2):
                hint = ("pad only the two spatial axes (the first two), not the channels: "
                        "np.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))")
            elif k3.shape == (3, 3, c_out, c_in):
                hint = order
            else:
                hint = "a 3x3 kernel has shape (3, 3, c_in, c_out)"
            expect(k3.shape == (3, 3, c_in, c_out), f"{call} has shape {k3.shape}, expected "
                    f"{(3, 3, c_in, c_out)}: {hint}.")
            x = rng.normal(size=(2, 7, 6, c_in)).astype("float32")
            want, got = _run_conv(x, k1), _run_conv(x, k3)
            if c_in == c_out > 1 and np.allclose(k3[1, 1], k1[0, 0].T):
                hint = order
            elif not np.allclose(k3[1, 1], k1[0, 0]):
                hint = ("the 1x1 weights go unchanged to the centre tap [1, 1]: with "
                        "padding='same' the centre of a 3x3 window is the pixel the 1x1 kernel "
                        "reads")
            else:
                hint = "every tap but the centre must be zero"
            expect(np.allclose(got, want, rtol=1e-4, atol=1e-5),
                    f"{call}: Conv2D(padding='same') with your 3x3 kernel differs from the 1x1 "
                    f"convolution by up to {float(np.abs(got - want).max()):.3g}: {hint}.")
        return (f"{len(cases)} 1x1 kernels padded to 3x3: with padding='same' every one gives "
                "the 1x1 convolution's output.")

    return grade("pad_to_3x3", run)


def check_identity_as_3x3(identity_as_3x3):
    """`identity_as_3x3(channels)` -> a (3, 3, channels, channels) kernel that copies its input.

    Checked by running a real Conv2D (padding="same") with the kernel on random maps.
    """
    identity_as_3x3 = student(identity_as_3x3)

    def run():
        rng = np.random.default_rng(14)
        cases = [1, 3, 4, 8, 16] + [int(rng.integers(2, 33)) for _ in range(3)]
        for c in cases:
            call = f"identity_as_3x3({c})"
            kernel = array(identity_as_3x3(c), call)
            expect(kernel.shape == (3, 3, c, c), f"{call} has shape {kernel.shape}, expected "
                    f"{(3, 3, c, c)}: (height, width, input channels, output channels).")
            x = rng.normal(size=(2, 5, 6, c)).astype("float32")
            got = _run_conv(x, kernel)
            eye = np.eye(c)
            if c > 1 and np.allclose(kernel[1, 1], 1):
                hint = ("channel i goes to channel i only: at the centre the c×c matrix is the "
                        "identity matrix np.eye(c), not all ones (that sums the channels)")
            elif all(np.allclose(kernel[i, j], eye) for i in range(3) for j in range(3)):
                hint = ("only the centre tap [1, 1] is non-zero: the other eight would add the "
                        "neighbouring pixels")
            elif not np.allclose(kernel[1, 1], eye) and any(
                    np.allclose(kernel[i, j], eye) for i in range(3) for j in range(3)):
                hint = ("put the 1s at the centre tap [1, 1]: another tap shifts the image by "
                        "one pixel")
            else:
                hint = ("a 1 at the centre tap from input channel i to output channel i, "
                        "kernel[1, 1, i, i] = 1, and 0 everywhere else")
            expect(np.allclose(got, x, atol=1e-5), f"{call}: Conv2D(padding='same') with your "
                    f"kernel changes its input (by up to {float(np.abs(got - x).max()):.3g}): "
                    f"{hint}.")
        return (f"{len(cases)} identity kernels (1 to {max(cases)} channels): a Conv2D with each "
                "returns its input unchanged.")

    return grade("identity_as_3x3", run)
