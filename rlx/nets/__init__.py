"""Networks every algorithm is assembled from.

- :class:`Net` and its sections :class:`PolicyNet`, :class:`CriticNet`, :class:`QNet` (``agent.policy``,
  ``agent.value``, ``agent.actor``, ``agent.critic``, ``agent.q``): torso widths, activation, norm
  (none, layer, batch_renorm), residual blocks, dropout, init; critics add their value representation.
- :class:`MLP` (torso + linear or dueling output), :class:`Ensemble` (N members on one leading axis),
  :class:`Model` (params apart from mutable collections such as batch statistics).
- Policy heads: :func:`policy_distribution`, :func:`deterministic_action`.
- SimbaV2's hyperspherical network (``architecture: simbav2``, ``rlx.nets.hyper``) and
  :func:`project_to_sphere`, the weight projection its optimizer steps need.
"""

from rlx.nets.heads import deterministic_action, policy_distribution, policy_outputs
from rlx.nets.hyper import project_to_sphere
from rlx.nets.layers import ACTIVATIONS, BatchRenorm, orthogonal
from rlx.nets.mlp import MLP, Ensemble, Model
from rlx.nets.spec import CriticNet, Net, PolicyNet, QNet

__all__ = [
    "ACTIVATIONS",
    "BatchRenorm",
    "CriticNet",
    "Ensemble",
    "MLP",
    "Model",
    "Net",
    "PolicyNet",
    "QNet",
    "deterministic_action",
    "orthogonal",
    "policy_distribution",
    "policy_outputs",
    "project_to_sphere",
]
