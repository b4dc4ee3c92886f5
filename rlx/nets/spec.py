"""Network config sections, the same names in every algorithm: ``agent.policy``, ``agent.value`` (PPO),
``agent.actor``, ``agent.critic`` (SAC, TD3), ``agent.q`` (DQN). All fields are static (they fix shapes or
the program)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from rlx.config import ConfigError, field
from rlx.nets.layers import ACTIVATIONS, KERNEL_INITS
from rlx.ops.values import VALUE_KINDS


@dataclasses.dataclass(frozen=True)
class Net:
    """An MLP torso (``hidden`` widths) and a linear output layer, optionally after conv layers.

    With ``conv`` (image observations ``[height, width, channels]``), the observation first goes through one
    ``Conv(conv_kernel x conv_kernel, conv_stride, VALID) -> LayerNorm (norm layer) -> activation`` per entry (its
    output channels) and is flattened; MinAtar's network (Young & Tian 2019) is ``conv: [16]``, ``hidden: [128]``.

    A hidden layer is ``Dense -> dropout -> LayerNorm -> activation`` (the parts that are on); with
    ``norm: batch_renorm`` it is ``Dense -> dropout -> activation -> BatchRenorm`` and the input is
    batch-renormalized too (CrossQ's placement). With ``residual``, every layer after the first is a
    block ``x + norm(Dense(act(norm(Dense(x)))))`` (BRO's), so the widths must be equal.

    ``compute_dtype: bfloat16`` is mixed precision: the hidden dense and conv layers cast their input and float32
    parameters to bfloat16 for the matmul and return float32 (``rlx.nets.layers.mixed_dense``), so parameters,
    optimizer state, gradients, norms, the output layer and every loss stay float32.

    ``noisy_std > 0`` makes every dense layer, hidden and output (not the conv layers), NoisyNet's
    (``rlx.nets.layers.NoisyDense``): noisy where the network is called with a ``noise`` rng, its mean otherwise.

    ``architecture: simbav2`` replaces all of this by SimbaV2's hyperspherical network
    (``rlx.nets.hyper``): an embedder to ``hidden[0]`` features and one LERP residual block per entry of
    ``hidden`` (equal widths), relu, unit-norm features and weights, a dense -> scaler -> dense head. Only
    algorithms that project the weights after each update accept it.
    """

    hidden: tuple[int, ...] = field((256, 256), gt=0, doc="torso widths")
    conv: tuple[int, ...] = field(
        (), gt=0, doc="image observations [height, width, channels]: output channels of conv layers before the torso"
    )
    conv_kernel: int = field(3, gt=0, doc="conv: square kernel size")
    conv_stride: int = field(1, gt=0, doc="conv: stride (VALID padding)")
    activation: str = field("relu", choices=tuple(ACTIVATIONS))
    norm: str = field("none", choices=("none", "layer", "batch_renorm"), doc="normalization in the torso")
    residual: bool = field(False, doc="residual blocks after the first layer (equal widths)")
    dropout: float = field(0.0, ge=0, lt=1, doc="dropout rate after each hidden dense layer (0: none)")
    noisy_std: float = field(
        0.0,
        ge=0,
        doc="NoisyNet's sigma_0 (DQN): every dense layer, hidden and output, is a noisy layer whose noise scales "
        "start at noisy_std / sqrt(fan_in) (0: plain layers; the papers' 0.5, Dopamine's Rainbow 0.1)",
    )
    kernel_init: str = field(
        "orthogonal",
        choices=KERNEL_INITS,
        doc="orthogonal (gain sqrt 2), lecun_normal, lecun_uniform (brax.training's), pytorch (nn.Linear's default for kernels and biases; the "
        "output layer N(0, output_scale^2) with zero bias when output_scale != 1), or xavier_uniform (Glorot's, gain 1, "
        "zero biases: nn.init.xavier_uniform_, as REDQ's and DroQ's code)",
        read_with={"architecture": ("mlp",)},
    )
    output_scale: float = field(1.0, gt=0, doc="init gain of the output layer")
    renorm_momentum: float = field(
        0.99,
        gt=0,
        lt=1,
        doc="norm batch_renorm: decay of the running statistics",
        read_with={"norm": ("batch_renorm",)},
    )
    renorm_warmup: int = field(
        100_000,
        ge=0,
        doc="norm batch_renorm: training calls of plain batch norm first",
        read_with={"norm": ("batch_renorm",)},
    )
    renorm_correction: str = field(
        "ioffe",
        choices=("ioffe", "folded"),
        doc="norm batch_renorm after warm-up: Ioffe's (x - mean_B) / std_B * r + d, or folded into the batch "
        "statistics as CrossQ's code does",
        read_with={"norm": ("batch_renorm",)},
    )
    architecture: str = field("mlp", choices=("mlp", "simbav2"), doc="MLP torso, or SimbaV2's hyperspherical one")
    expansion: int = field(
        4, gt=0, doc="simbav2: widening of each block's inner layer", read_with={"architecture": ("simbav2",)}
    )
    c_shift: float = field(
        3.0,
        gt=0,
        doc="simbav2: constant appended to the input before its normalization",
        read_with={"architecture": ("simbav2",)},
    )
    recurrent: str = field(
        "none",
        choices=("none", "gru", "lstm"),
        doc="a GRU or LSTM cell of width hidden[0] after the first layer (PPO); norm layer normalizes the first "
        "layer and the layers after the cell",
    )
    obs_key: str | None = field(
        None, doc="dict observations: the entry this network sees, e.g. state or privileged_state (PPO)"
    )
    compute_dtype: str = field(
        "float32",
        choices=("float32", "bfloat16"),
        doc="matmuls of the hidden dense and conv layers (params, norms, output layer and losses stay float32)",
    )

    def check(self, prefix: str = "") -> None:
        # the recurrent cell's own needs first: the fields below name recurrent as the reason they are refused
        if self.recurrent != "none" and (self.architecture != "mlp" or self.norm == "batch_renorm"):
            raise ConfigError(
                f"{prefix}recurrent: needs architecture mlp and norm none or layer; got {self.architecture}, {self.norm}"
            )
        if self.recurrent != "none" and not self.hidden:
            raise ConfigError(
                f"{prefix}hidden: a recurrent network needs at least one layer (its cell's width is hidden[0]); got []"
            )
        if self.recurrent != "none" and self.residual:
            raise ConfigError(
                f"{prefix}residual: not available with recurrent {self.recurrent} (its cell sits between the first "
                "layer and the rest); got true"
            )
        if self.compute_dtype != "float32" and (self.architecture != "mlp" or self.recurrent != "none"):
            raise ConfigError(
                f"{prefix}compute_dtype: {self.compute_dtype} needs architecture mlp and recurrent none (simbav2's "
                f"and the recurrent cells' layers compute in float32); got {self.architecture}, {self.recurrent}"
            )
        if self.noisy_std > 0 and (
            self.architecture != "mlp" or self.recurrent != "none" or self.compute_dtype != "float32"
        ):
            raise ConfigError(
                f"{prefix}noisy_std: noisy layers need architecture mlp, recurrent none and compute_dtype float32; got "
                f"{self.architecture}, {self.recurrent}, {self.compute_dtype}"
            )
        if self.architecture == "simbav2":
            fixed = {"norm": ("none", self.norm), "residual": (False, self.residual), "dropout": (0.0, self.dropout)}
            fixed["activation"] = ("relu", self.activation)
            for name, (allowed, got) in fixed.items():
                if got != allowed:
                    raise ConfigError(
                        f"{prefix}{name}: must be {allowed} with architecture simbav2 (it has its own); got {got}"
                    )
            if len(set(self.hidden)) > 1:
                raise ConfigError(
                    f"{prefix}hidden: simbav2 needs equal widths (one block each); got {list(self.hidden)}"
                )
            if self.conv:
                raise ConfigError(f"{prefix}conv: not available with architecture simbav2; got {list(self.conv)}")
        if self.kernel_init == "pytorch" and (self.architecture != "mlp" or self.recurrent != "none"):
            raise ConfigError(
                f"{prefix}kernel_init: pytorch needs architecture mlp and recurrent none (simbav2's and the recurrent "
                f"cells' layers have their own initializers); got {self.architecture}, {self.recurrent}"
            )
        if self.residual and len(set(self.hidden)) > 1:
            raise ConfigError(f"{prefix}residual: needs equal hidden widths; got {list(self.hidden)}")
        if self.residual and self.norm == "batch_renorm":
            raise ConfigError(f"{prefix}residual: works with norm none or layer; got norm batch_renorm")


def conv_output_shape(net: Net, image_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``[height, width, channels]`` after ``net``'s conv layers (VALID padding); non-positive sizes mean the
    image is too small for them."""
    height, width, channels = image_shape
    for out_channels in net.conv:
        height = (height - net.conv_kernel) // net.conv_stride + 1
        width = (width - net.conv_kernel) // net.conv_stride + 1
        channels = out_channels
    return height, width, channels


def network_input(net: Net, obs: Any) -> Any:
    """What ``net`` sees of an observation: ``obs[net.obs_key]`` for dict observations, else ``obs``."""
    return obs if net.obs_key is None else obs[net.obs_key]


@dataclasses.dataclass(frozen=True)
class PolicyNet(Net):
    """A stochastic policy's network: categorical over discrete actions; for box actions a diagonal
    Gaussian whose sample is squashed into [-1, 1] (``tanh``, with the log-det correction, or ``clip``), or
    with ``distribution: bernoulli`` one Bernoulli per dimension over the extremes -1 and +1 (bang-bang), or with
    ``gaussian_mixture`` a mixture of ``num_components`` such Gaussians (PPO; it has no closed-form KL or
    reparameterized sample)."""

    distribution: str = field(
        "gaussian",
        choices=("gaussian", "bernoulli", "gaussian_mixture"),
        doc="box actions: Gaussian, bang-bang Bernoulli on {-1, 1}, or a mixture of num_components Gaussians",
    )
    num_components: int = field(
        4,
        gt=0,
        doc="distribution gaussian_mixture: Gaussians in the mixture",
        read_with={"distribution": ("gaussian_mixture",)},
    )
    squash: str = field("tanh", choices=("tanh", "clip"), doc="box actions into [-1, 1]")
    std: str = field(
        "softplus",
        choices=("softplus", "log_range", "log_clip"),
        doc="softplus(x) + min_std, exp of x squashed by tanh into [log_std_min, log_std_max], or exp of x clipped "
        "to it (the original SAC's and REDQ's torch.clamp: no gradient past the ends)",
    )
    min_std: float = field(1e-3, gt=0, doc="std: softplus floor", read_with={"std": ("softplus",)})
    log_std_min: float = field(
        -5.0, doc="std: log_range or log_clip lower end", read_with={"std": ("log_range", "log_clip")}
    )
    log_std_max: float = field(
        2.0, doc="std: log_range or log_clip upper end", read_with={"std": ("log_range", "log_clip")}
    )

    # read only with box actions (discrete ones take a categorical policy; another distribution is refused there)
    BOX_ONLY: ClassVar[tuple[str, ...]] = ("squash", "std", "min_std", "log_std_min", "log_std_max", "num_components")

    def check(self, prefix: str = "") -> None:
        super().check(prefix)
        if self.std in ("log_range", "log_clip") and not self.log_std_min < self.log_std_max:
            raise ConfigError(
                f"{prefix}log_std_max: must be > log_std_min = {self.log_std_min:g}; got {self.log_std_max:g}"
            )


@dataclasses.dataclass(frozen=True)
class CriticNet(Net):
    """A value or Q network with its value representation (``rlx.ops.values``): ``mse`` / ``huber``
    (one output), ``hl_gauss`` (histogram over ``num_bins`` bins of ``[v_min, v_max]``), ``c51``
    (categorical over ``num_bins`` atoms) or ``quantile`` (``num_bins`` quantiles)."""

    value: str = field("mse", choices=VALUE_KINDS, doc="value representation and TD loss")
    # No read_with here: presets carry a support under value mse so that one --set switches the representation.
    num_bins: int = field(51, ge=2, doc="bins (hl_gauss), atoms (c51) or quantiles (quantile)")
    v_min: float = field(-10.0, doc="support lower end (hl_gauss, c51)")
    v_max: float = field(10.0, doc="support upper end (hl_gauss, c51)")
    sigma_ratio: float = field(0.75, gt=0, doc="hl_gauss: Gaussian sigma / bin width")
    huber_delta: float = field(
        1.0,
        gt=0,
        doc="huber: the absolute TD error above which the loss grows linearly (LAP's and PAL's code: their floor)",
        read_with={"value": ("huber",)},
    )
    priority_error: str = field(
        "cross_entropy",
        choices=("cross_entropy", "kl"),
        doc="hl_gauss, c51 under prioritized or pal replay: what ranks a transition, its cross-entropy loss "
        "(Dopamine's Rainbow) or the KL divergence from its target (the Rainbow paper's: the cross-entropy less the "
        "target's entropy, 0 when the prediction matches the target)",
        read_with={"value": ("hl_gauss", "c51")},
    )

    def check(self, prefix: str = "") -> None:
        super().check(prefix)
        if self.value in ("hl_gauss", "c51") and not self.v_min < self.v_max:
            raise ConfigError(f"{prefix}v_max: must be > v_min = {self.v_min:g}; got {self.v_max:g}")


@dataclasses.dataclass(frozen=True)
class QNet(CriticNet):
    """A Q-network over discrete actions: outputs ``[num_actions, value outputs]``, optionally dueling."""

    dueling: bool = field(False, doc="separate state-value and advantage streams")

    def check(self, prefix: str = "") -> None:
        super().check(prefix)
        if self.dueling and self.architecture == "simbav2":
            raise ConfigError(f"{prefix}dueling: not available with architecture simbav2; use architecture mlp")
