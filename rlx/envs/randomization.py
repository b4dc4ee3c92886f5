"""Domain randomization for brax and MuJoCo Playground (MJX) envs: physical parameters drawn per env at every
reset, kept in the env state.

Each reset draws one multiplicative factor per geom (sliding friction), per body (mass and inertia together,
i.e. the density), and per actuator (its force: gain and bias terms), uniformly from the configured ranges.
The factors live in the env state, so a batch of vmapped envs steps with different dynamics, and checkpoints
and resumed runs keep them. Stepping rebuilds the model from the nominal one and the factors (a few
multiplies), instead of carrying a full model per env.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rlx.config import ConfigError, field
from rlx.envs.base import EnvStep, Wrapper

EVALUATE = ("nominal", "randomized")
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class RandomizationConfig:
    """Ranges ``[low, high]`` of multiplicative factors on the nominal model; null leaves a parameter alone."""

    friction: tuple[float, ...] | None = field(
        None,
        doc="[low, high] factor on each geom's sliding friction (>= 0; MJX's JAX pipeline can step to NaN near 0)",
    )
    mass: tuple[float, ...] | None = field(None, doc="[low, high] factor on each body's mass and inertia (> 0)")
    actuator_gain: tuple[float, ...] | None = field(
        None, doc="[low, high] factor on each actuator's force, gain and bias terms (> 0)"
    )
    evaluate: str = field("nominal", choices=EVALUATE, doc="evaluation episodes on the nominal or randomized model")

    @property
    def enabled(self) -> bool:
        return any(r is not None for r in self.ranges().values())

    def ranges(self) -> dict[str, tuple[float, ...] | None]:
        return {"friction": self.friction, "mass": self.mass, "actuator_gain": self.actuator_gain}

    def check(self, prefix: str = "env.randomize.") -> None:
        for name, bounds in self.ranges().items():
            if bounds is None:
                continue
            strictly_positive = name != "friction"  # frictionless is physical; massless or powerless is not
            low_ok = len(bounds) == 2 and (bounds[0] > 0 if strictly_positive else bounds[0] >= 0)
            if not low_ok or bounds[0] > bounds[1] or bounds[1] > FLOAT32_MAX:  # the factors are float32
                sign = "> 0" if strictly_positive else ">= 0"
                raise ConfigError(
                    f"{prefix}{name}: expected [low, high] factors with {sign} low <= high <= {FLOAT32_MAX:.4g} "
                    f"(float32); got {list(bounds)}"
                )
        if self.evaluate == "randomized" and not self.enabled:
            raise ConfigError(
                f"{prefix}evaluate: 'randomized' needs a range to draw from (friction, mass or actuator_gain); none is set"
            )


@struct.dataclass
class RandomizedState:
    inner: Any
    factors: dict[str, jax.Array]  # name -> [num geoms | bodies | actuators]


def _sizes(model: Any) -> dict[str, int]:
    return {
        "friction": model.geom_friction.shape[0],
        "mass": model.body_mass.shape[0],
        "actuator_gain": model.actuator_gainprm.shape[0],
    }


def scaled_model(model: Any, factors: dict[str, jax.Array]) -> Any:
    """``model`` (a brax ``System`` or an ``mjx.Model``) with its parameters multiplied by ``factors``.

    brax's own pipelines read ``link.inertia`` (bodies without the world body) and ``actuator.gain/bias_*``,
    MJX reads ``body_mass``/``body_inertia`` and ``actuator_gainprm/biasprm``: both are scaled, so every
    backend sees the same randomized model."""
    updates: dict[str, Any] = {}
    if "friction" in factors:
        updates["geom_friction"] = model.geom_friction.at[:, 0].multiply(factors["friction"])
    if "mass" in factors:
        m = factors["mass"]
        updates["body_mass"] = model.body_mass * m
        updates["body_inertia"] = model.body_inertia * m[:, None]
        link = getattr(model, "link", None)
        if link is not None:  # brax System: links are the bodies after the world body
            inertia = link.inertia.replace(mass=link.inertia.mass * m[1:], i=link.inertia.i * m[1:, None, None])
            updates["link"] = link.replace(inertia=inertia)
    if "actuator_gain" in factors:
        g = factors["actuator_gain"]
        updates["actuator_gainprm"] = model.actuator_gainprm * g[:, None]
        updates["actuator_biasprm"] = model.actuator_biasprm * g[:, None]
        actuator = getattr(model, "actuator", None)
        if actuator is not None and hasattr(actuator, "gain"):  # brax System's own actuator struct
            updates["actuator"] = actuator.replace(
                gain=actuator.gain * g, bias_q=actuator.bias_q * g, bias_qd=actuator.bias_qd * g
            )
    return model.replace(**updates)


_SCALED = {  # the model fields each factor multiplies (of friction, the sliding column only)
    "friction": {"geom_friction": lambda m: m.geom_friction[:, 0]},
    "mass": {"body_mass": lambda m: m.body_mass, "body_inertia": lambda m: m.body_inertia},
    "actuator_gain": {
        "actuator_gainprm": lambda m: m.actuator_gainprm,
        "actuator_biasprm": lambda m: m.actuator_biasprm,
    },
}


def check_scaled_range(model: Any, name: str, bounds: tuple[float, ...], prefix: str = "env.randomize.") -> None:
    """A ConfigError when a factor in ``bounds`` takes one of ``model``'s parameters out of float32's normal
    range (to inf, or a nonzero one below the smallest normal value): the run would diverge after compiling."""
    for factor in bounds:
        for attr, read in _SCALED[name].items():
            nominal = np.asarray(read(model), np.float32)
            with np.errstate(over="ignore", under="ignore"):
                scaled = nominal * np.float32(factor)
            # XLA on CPU flushes subnormals to zero, so a nonzero value below float32's smallest normal one is lost
            # a factor of exactly 0 (friction's allowed low end) gives exact zeros, not lost values
            tiny = np.finfo(np.float32).tiny
            overflow, underflow = ~np.isfinite(scaled), (np.abs(scaled) < tiny) & (nominal != 0) & (factor != 0)
            if np.any(overflow | underflow):
                value = float(np.max(np.abs(nominal)) if np.any(overflow) else np.min(np.abs(nominal[nominal != 0])))
                raise ConfigError(
                    f"{prefix}{name}: a factor of {factor:g} takes this model's {attr} ({value:g}) "
                    f"{'past the float32 maximum' if np.any(overflow) else 'below the smallest normal float32'}; got {list(bounds)}"
                )


# MJX's JAX pipeline computes frictional contacts in float32 without MuJoCo's floor (C and Warp clamp at mjMINMU =
# 1e-5): as mu -> 0 the pyramid's edges approach the normal and the rows' regularizer (proportional to mu^2) vanishes.
# Measured (20 steps at a fixed action): Playground CheetahRun steps to NaN at factors <= 0.002 (nominal frictions 0.4
# and 1), from the first step at 0.001; CartpoleBalance and brax hopper (backend=mjx) stay finite at 0. Model-dependent,
# so a low end below this sliding friction is named when a run diverges rather than refused.
MJX_LOW_FRICTION = 0.01


def uses_mjx_jax(target: Any, model: Any) -> bool:
    """Whether the env steps with MJX's JAX pipeline: brax with ``backend: mjx``, or a Playground model whose
    implementation is JAX (Warp's is not: it floors friction like MuJoCo)."""
    if hasattr(target, "sys"):
        return getattr(target, "backend", None) == "mjx"
    return str(getattr(model, "impl", "")).upper().endswith("JAX")


def low_friction_note(model: Any, bounds: tuple[float, ...]) -> str:
    """For a run that diverged: a note when the low factor takes the model's largest sliding friction (a contact
    takes the larger of its two geoms': usually the floor's) below :data:`MJX_LOW_FRICTION`; else nothing."""
    largest = float(np.max(np.asarray(model.geom_friction)[:, 0], initial=0.0))
    if not (largest > 0 and bounds[0] * largest < MJX_LOW_FRICTION):
        return ""
    return (
        f"env.randomize.friction's low factor {bounds[0]:g} takes this model's largest sliding friction ({largest:g}) "
        f"below {MJX_LOW_FRICTION:g}, where MJX's JAX pipeline (float32, no friction floor) can step to NaN "
        f"(Playground CheetahRun does at 0.002); try a low >= {MJX_LOW_FRICTION / largest:.3g}"
    )


class DomainRandomization(Wrapper):
    """Wraps a :class:`~rlx.envs.adapters.BraxEnv` or :class:`~rlx.envs.adapters.PlaygroundEnv` (no batch):
    ``reset`` draws the factors, ``step`` runs the env on the model they define."""

    def __init__(self, env: Any, config: RandomizationConfig):
        super().__init__(env)
        self.config = config
        target = env._env.unwrapped
        self._target, self._attr = (target, "sys") if hasattr(target, "sys") else (target, "_mjx_model")
        self.nominal = getattr(self._target, self._attr)
        sizes = _sizes(self.nominal)
        self._ranges = {k: (v, sizes[k]) for k, v in config.ranges().items() if v is not None}
        for name, (bounds, _) in self._ranges.items():
            check_scaled_range(self.nominal, name, bounds)
        friction = self._ranges.get("friction")
        mjx_jax = friction is not None and uses_mjx_jax(target, self.nominal)
        self.divergence_note = low_friction_note(self.nominal, friction[0]) if mjx_jax else ""

    def draw(self, key: jax.Array) -> dict[str, jax.Array]:
        """Uniform factors per parameter kind: name -> ``[num geoms | bodies | actuators]``."""
        keys = jax.random.split(key, len(self._ranges))
        return {
            name: jax.random.uniform(k, (size,), jnp.float32, low, high)
            for k, (name, ((low, high), size)) in zip(keys, self._ranges.items(), strict=True)
        }

    def _on_model(self, factors: dict[str, jax.Array], fn: Any, *args: Any) -> EnvStep:
        # brax and Playground read their model from an attribute while tracing (as brax.training's and
        # Playground's own randomization wrappers rely on); swap it in for this call only.
        setattr(self._target, self._attr, scaled_model(self.nominal, factors))
        try:
            return fn(*args)
        finally:
            setattr(self._target, self._attr, self.nominal)

    def reset(self, key: jax.Array) -> EnvStep:
        key, factor_key = jax.random.split(key)
        factors = self.draw(factor_key)
        first = self._on_model(factors, self.env.reset, key)
        return first.replace(state=RandomizedState(first.state, factors))

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        factors = env_step.state.factors
        nxt = self._on_model(factors, self.env.step, env_step.replace(state=env_step.state.inner), action)
        return nxt.replace(state=RandomizedState(nxt.state, factors))
