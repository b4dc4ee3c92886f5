"""rlx: JAX-native, vectorized reinforcement learning."""

__version__ = "0.1.0"
