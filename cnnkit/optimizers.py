"""Optimizers that Keras does not ship, registered so compiled models save and load safely."""

import keras
from keras import ops

__all__ = ["AdaBound", "adabound_bounds"]


def adabound_bounds(step, final_lr=0.1, gamma=1e-3):
    """AdaBound's (lower, upper) bounds on the per-parameter step size at `step` (1, 2, ...).

    Both start far apart (0 and final_lr·(1 + 1/gamma)) and close in on `final_lr`: early on
    Adam's step sizes pass through unchanged, late in training every parameter gets the same
    step size, as in SGD with learning rate `final_lr`.
    """
    lower = final_lr * (1.0 - 1.0 / (gamma * step + 1.0))
    upper = final_lr * (1.0 + 1.0 / (gamma * step))
    return lower, upper


@keras.saving.register_keras_serializable(package="cnnkit")
class AdaBound(keras.optimizers.Optimizer):
    """Adam whose per-parameter step sizes are clipped to bounds that converge to SGD's.

    Paper: "Adaptive Gradient Methods with Dynamic Bound of Learning Rate", Luo, Xiong, Liu and
    Sun, ICLR 2019, Algorithm 2. Each step, with t = 1, 2, ...:
        m = β1·m + (1 − β1)·g                      first moment, as Adam
        v = β2·v + (1 − β2)·g²                     second moment, as Adam
        α_t = lr · √(1 − β2^t) / (1 − β1^t)        Adam's bias-corrected step
        η = clip(α_t / (√v + ε), lower(t), upper(t))
        θ = θ − η·m
    with lower(t) = final_lr·(1 − 1/(γt + 1)) and upper(t) = final_lr·(1 + 1/(γt)).

    Follows the authors' released implementation (github.com/Luolc/AdaBound), which is what the
    paper's experiments ran: it uses Adam's bias correction instead of Algorithm 2's constant β1
    and extra 1/√t factor, and scales `final_lr` by lr / initial lr, so a learning-rate schedule
    moves the bounds too. `amsbound=True` keeps the largest v seen (the AMSGrad variant, AMSBound).
    `weight_decay` is Keras's decoupled weight decay, not the authors' L2 term.
    """

    def __init__(self, learning_rate=0.001, final_lr=0.1, beta_1=0.9, beta_2=0.999, gamma=1e-3,
                 epsilon=1e-8, amsbound=False, name="adabound", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if final_lr <= 0:
            raise ValueError(f"final_lr must be > 0 (the SGD learning rate the bounds approach); "
                             f"got {final_lr}.")
        if not 0 < gamma < 1:
            raise ValueError(f"gamma must be in (0, 1): how fast the bounds close; got {gamma}.")
        self.final_lr, self.gamma = float(final_lr), float(gamma)
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon, self.amsbound = float(epsilon), bool(amsbound)
        initial = learning_rate
        if isinstance(initial, keras.optimizers.schedules.LearningRateSchedule):
            initial = initial(0)
        self._initial_lr = float(ops.convert_to_numpy(initial)) if not callable(initial) else None

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"])
        if self.amsbound:
            self._velocity_hats = self.add_optimizer_variables(var_list, "velocity_hat")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        if self.amsbound:
            v_hat = self._velocity_hats[index]
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        alpha = lr * ops.sqrt(1 - ops.power(ops.cast(self.beta_2, dtype), step)) / (
            1 - ops.power(ops.cast(self.beta_1, dtype), step))
        final_lr = self.final_lr if self._initial_lr is None else (
            self.final_lr * lr / self._initial_lr)
        lower, upper = adabound_bounds(step, final_lr, self.gamma)
        step_size = ops.minimum(ops.maximum(alpha / (ops.sqrt(v) + self.epsilon), lower), upper)
        self.assign_sub(variable, ops.multiply(step_size, m))

    def get_config(self):
        return {**super().get_config(), "final_lr": self.final_lr, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "gamma": self.gamma, "epsilon": self.epsilon,
                "amsbound": self.amsbound}
