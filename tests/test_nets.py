"""Network building blocks: vmapped initialization is safe on XLA:CPU and equals one-at-a-time init; conv layers
and the conv torso against NumPy."""

import dataclasses
import re
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlx import driver
from rlx.config import ConfigError
from rlx.nets import MLP, Net, QNet
from rlx.nets.coarse_to_fine import CoarseToFineQ
from rlx.nets.implicit import ImplicitQuantileMLP
from rlx.nets.layers import Conv
from rlx.nets.recurrent import RecurrentMLP, zero_carry
from rlx.nets.spec import conv_output_shape

# Actor and twin-critic init vmapped over 3 seeds: with flax's own orthogonal initializer this program
# deadlocked every time on a 2-core machine (batched QR decompositions waiting on each other in XLA:CPU's
# intra-op thread pool, jaxlib 0.10.2). It runs in a subprocess so that a regression fails, not hangs.
PROGRAM = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from rlx.nets import MLP, Ensemble, Net

    actor, critic = MLP(Net(hidden=(64, 64)), (1,)), Ensemble(Net(hidden=(64, 64)), (1,), 2)
    obs, act = jnp.zeros((1, 4)), jnp.zeros((1, 1))

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"actor": actor.init(k1, obs), "critic": critic.init(k2, obs, act)}

    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(3)])
    batched = jax.block_until_ready(jax.jit(jax.vmap(init))(keys))
    for s in range(3):
        alone = jax.jit(init)(keys[s])
        for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(batched), strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b)[s])
    q = np.asarray(batched["actor"]["params"]["Dense_0"]["kernel"][0])
    gram = q @ q.T if q.shape[0] <= q.shape[1] else q.T @ q  # 4 x 64: orthogonal rows, gain sqrt(2)
    assert np.allclose(gram, 2.0 * np.eye(len(gram)), atol=1e-5)
    print("ok")
""")


def test_vmapped_init_completes_and_equals_one_seed_at_a_time():
    result = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def _numpy_conv(x, kernel, bias, stride):
    """VALID 2-D convolution by loops: x [N, H, W, C], kernel [k, k, C, F] -> [N, H', W', F]."""
    k = kernel.shape[0]
    out_h, out_w = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, i * stride : i * stride + k, j * stride : j * stride + k, :]
            out[:, i, j] = np.einsum("nhwc,hwcf->nf", window, kernel) + bias
    return out


@pytest.mark.parametrize("kernel_size,stride", [(3, 1), (2, 2), (3, 2)])
def test_conv_layer_matches_numpy_and_flax(kernel_size, stride):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 10, 9, 4))
    layer = Conv(5, kernel_size, stride)
    params = layer.init(jax.random.PRNGKey(1), x)
    params = jax.tree.map(lambda p: p + 0.1, params)  # a nonzero bias
    kernel, bias = (np.asarray(params["params"][n], np.float64) for n in ("kernel", "bias"))
    out = np.asarray(layer.apply(params, x))
    np.testing.assert_allclose(out, _numpy_conv(np.asarray(x, np.float64), kernel, bias, stride), rtol=1e-5, atol=1e-5)
    flax_conv = nn.Conv(5, (kernel_size, kernel_size), stride, "VALID")
    np.testing.assert_allclose(out, flax_conv.apply(params, x), rtol=1e-5, atol=1e-5)  # same parameter layout


def test_conv_torso_sees_images_with_any_batch_axes_and_layer_norms_them():
    net = Net(hidden=(8,), conv=(4, 3), conv_kernel=3, norm="layer")
    module = MLP(net, (2,), obs_ndim=3)
    images = jax.random.uniform(jax.random.PRNGKey(0), (2, 3, 7, 7, 2))
    params = module.init(jax.random.PRNGKey(1), images)["params"]
    assert params["Conv_0"]["kernel"].shape == (3, 3, 2, 4) and params["Conv_1"]["kernel"].shape == (3, 3, 4, 3)
    assert params["Dense_0"]["kernel"].shape == (3 * 3 * 3, 8)  # 7 -> 5 -> 3 pixels, 3 channels, flattened
    assert conv_output_shape(net, (7, 7, 2)) == (3, 3, 3)
    out = module.apply({"params": params}, images)
    assert out.shape == (2, 3, 2)
    one = module.apply({"params": params}, images[1, 2])  # no batch axes
    np.testing.assert_allclose(one, out[1, 2], rtol=1e-5, atol=1e-6)

    def reference(image):
        h = image
        for name in ("Conv_0", "Conv_1"):
            p = {k: np.asarray(v, np.float64) for k, v in params[name].items()}
            h = _numpy_conv(h[None], p["kernel"], p["bias"], 1)[0]
            norm = params[f"LayerNorm_{name[-1]}"]
            h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-6)
            h = np.maximum(h * np.asarray(norm["scale"]) + np.asarray(norm["bias"]), 0.0)
        return h.reshape(-1)

    features = reference(np.asarray(images[0, 0], np.float64))
    h = features @ np.asarray(params["Dense_0"]["kernel"]) + np.asarray(params["Dense_0"]["bias"])
    norm = params["LayerNorm_2"]
    h = (h - h.mean()) / np.sqrt(h.var() + 1e-6) * np.asarray(norm["scale"]) + np.asarray(norm["bias"])
    h = np.maximum(h, 0.0) @ np.asarray(params["Dense_1"]["kernel"]) + np.asarray(params["Dense_1"]["bias"])
    np.testing.assert_allclose(out[0, 0], h, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"algo": "dqn", "env": {"name": "gymnax/CartPole-v1"}, "agent": {"q": {"conv": [16]}}},
            "agent.q.conv: needs image observations [height, width, channels]; gymnax/CartPole-v1 gives shape [4]",
        ),
        (
            {
                "algo": "pqn",
                "env": {"name": "gymnax/Breakout-MinAtar"},
                "agent": {"q": {"conv": [16, 16], "conv_kernel": 6}},
            },
            "agent.q.conv_kernel: 6 (stride 1) leaves no pixels of gymnax/Breakout-MinAtar's 10x10 images after 2",
        ),
        (
            {"algo": "simbav2", "env": {"name": "gymnax/Pendulum-v1"}, "agent": {"critic": {"conv": [16]}}},
            "agent.critic.conv: not available with architecture simbav2",
        ),
        (
            {"algo": "dqn", "env": {"name": "gymnax/Breakout-MinAtar"}, "agent": {"q": {"conv": [0]}}},
            "agent.q.conv",
        ),
    ],
)
def test_conv_configs_that_cannot_work_fail_in_one_line_before_compiling(data, message):
    with pytest.raises(ConfigError) as info:
        driver.Experiment(driver.build_config(data))
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_every_network_module_puts_the_conv_layers_first():
    """IQN's, CQN's and the recurrent network see conv features of the image like the MLP (same first layer)."""
    images = jax.random.uniform(jax.random.PRNGKey(0), (3, 6, 6, 2))
    net = QNet(hidden=(8, 8), conv=(4,))
    modules = {
        "mlp": (MLP(net, (2,), obs_ndim=3), (images,)),
        "implicit": (ImplicitQuantileMLP(net, 2, 4, obs_ndim=3), (images, jnp.full((3, 5), 0.5))),
        "coarse_to_fine": (
            CoarseToFineQ(net, levels=2, bins=3, num_outputs=1, feature_dim=4, obs_ndim=3),
            (images, jnp.zeros((3, 1)), jnp.zeros((3,), jnp.int32)),
        ),
        "recurrent": (
            RecurrentMLP(dataclasses.replace(net, recurrent="gru"), (2,), obs_ndim=3),
            (zero_carry(dataclasses.replace(net, recurrent="gru"), 3), images, jnp.ones((3,), bool)),
        ),
    }
    first = None
    for name, (module, inputs) in modules.items():
        params = module.init(jax.random.PRNGKey(1), *inputs)["params"]
        assert params["Conv_0"]["kernel"].shape == (3, 3, 2, 4), name
        out = module.apply({"params": params}, *inputs)
        assert all(np.isfinite(x).all() for x in jax.tree.leaves(out)), name
        first = params["Conv_0"]["kernel"] if first is None else first
        np.testing.assert_array_equal(params["Conv_0"]["kernel"], first)  # same init path: same first layer


# ---------------------------------------------------------------- mixed precision


@pytest.mark.parametrize(
    "net,obs_shape",
    [(Net(hidden=(64, 64), norm="layer"), (5,)), (Net(hidden=(32,), conv=(8,), conv_kernel=3), (6, 6, 2))],
)
def test_bfloat16_compute_keeps_float32_params_and_gradients_and_stays_close(net, obs_shape):
    """Same parameters, matmuls in bfloat16: outputs within 3% and each gradient within 5% (relative norm) of
    float32, everything the optimizer sees float32, and the program really multiplies in bfloat16."""
    obs = jax.random.normal(jax.random.PRNGKey(0), (16, *obs_shape))
    full = MLP(net, (3,), obs_ndim=len(obs_shape))
    mixed = MLP(dataclasses.replace(net, compute_dtype="bfloat16"), (3,), obs_ndim=len(obs_shape))
    params = full.init(jax.random.PRNGKey(1), obs)["params"]
    assert jax.tree.structure(params) == jax.tree.structure(mixed.init(jax.random.PRNGKey(1), obs)["params"])

    def loss(module, p):
        return jnp.mean(jnp.square(module.apply({"params": p}, obs)))

    out_full, out_mixed = full.apply({"params": params}, obs), mixed.apply({"params": params}, obs)
    assert out_mixed.dtype == jnp.float32
    scale = float(jnp.max(jnp.abs(out_full)))
    assert 0 < float(jnp.max(jnp.abs(out_mixed - out_full))) < 0.03 * scale
    grads_full, grads_mixed = (jax.grad(lambda p, m=m: loss(m, p))(params) for m in (full, mixed))
    for g_full, g_mixed in zip(jax.tree.leaves(grads_full), jax.tree.leaves(grads_mixed), strict=True):
        assert g_mixed.dtype == jnp.float32
        assert float(jnp.linalg.norm(g_mixed - g_full)) < 0.05 * float(jnp.linalg.norm(g_full))
    program = str(jax.make_jaxpr(lambda p: loss(mixed, p))(params))
    assert re.search(r"bf16\[[0-9,]*\] = dot_general", program), program
    assert "bf16" not in str(jax.make_jaxpr(lambda p: loss(full, p))(params))


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        ({"critic": {"compute_dtype": "float16"}}, "agent.critic.compute_dtype: must be one of"),
        (
            {"critic": {"architecture": "simbav2", "compute_dtype": "bfloat16"}},
            "agent.critic.compute_dtype: bfloat16 needs architecture mlp and recurrent none",
        ),
    ],
)
def test_compute_dtype_configs_that_cannot_work_fail_in_one_line(agent, message):
    data = {"algo": "sac", "env": {"name": "gymnax/Pendulum-v1"}, "agent": agent}
    with pytest.raises(ConfigError) as info:
        driver.Experiment(driver.build_config(data))
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_pytorch_init_draws_kernels_and_biases_as_torch_nn_linear():
    """``kernel_init: pytorch``: every dense and conv layer's kernel and bias uniform in +-1/sqrt(fan_in) (torch's
    ``nn.Linear``/``nn.Conv2d`` default); an output layer with ``output_scale != 1`` is N(0, scale^2) with a zero
    bias (FastTD3's actor head)."""
    net = Net(hidden=(512, 384), kernel_init="pytorch", conv=(64,), conv_kernel=3)
    params = MLP(net, (300,), obs_ndim=3).init(jax.random.PRNGKey(0), jnp.zeros((1, 7, 7, 5)))["params"]
    fan_ins = {"Conv_0": 3 * 3 * 5, "Dense_0": 5 * 5 * 64, "Dense_1": 512, "Dense_2": 384}
    for name, fan_in in fan_ins.items():
        bound = 1.0 / np.sqrt(fan_in)
        for leaf in ("kernel", "bias"):
            x = np.asarray(params[name][leaf]).ravel()
            assert np.abs(x).max() <= bound and np.abs(x).max() > 0.9 * bound, (name, leaf)
            assert abs(x.std() - bound / np.sqrt(3)) < 0.15 * bound, (name, leaf)  # uniform's std
    head = Net(hidden=(256,), kernel_init="pytorch", output_scale=0.01)
    params = MLP(head, (400,)).init(jax.random.PRNGKey(1), jnp.zeros((1, 8)))["params"]
    assert abs(float(np.std(params["Dense_1"]["kernel"])) - 0.01) < 0.001
    assert not np.any(np.asarray(params["Dense_1"]["bias"]))
    with pytest.raises(ConfigError, match="kernel_init: pytorch needs architecture mlp and recurrent none"):
        Net(kernel_init="pytorch", recurrent="gru").check("agent.actor.")


def test_lecun_uniform_init_draws_brax_kernels_and_zero_biases():
    """``kernel_init: lecun_uniform`` (brax.training's networks, every layer): kernels uniform in +-sqrt(3 / fan_in),
    a conv's fan-in times its kernel area, zero biases; an output layer's gain is ``output_scale``."""
    net = Net(hidden=(512, 384), kernel_init="lecun_uniform", conv=(64,), conv_kernel=3, output_scale=0.5)
    params = MLP(net, (300,), obs_ndim=3).init(jax.random.PRNGKey(0), jnp.zeros((1, 7, 7, 5)))["params"]
    fans = {"Conv_0": (9 * 5, 1.0), "Dense_0": (5 * 5 * 64, 1.0), "Dense_1": (512, 1.0), "Dense_2": (384, 0.5)}
    for name, (fan_in, gain) in fans.items():
        bound = gain * np.sqrt(3.0 / fan_in)
        x = np.asarray(params[name]["kernel"]).ravel()
        assert np.abs(x).max() <= bound * (1 + 1e-6) and np.abs(x).max() > 0.9 * bound, name
        assert abs(x.std() - bound / np.sqrt(3)) < 0.05 * bound, name
        assert not np.any(np.asarray(params[name]["bias"])), name


def test_xavier_init_draws_glorot_uniform_kernels_and_zero_biases():
    """``kernel_init: xavier_uniform`` (REDQ's and DroQ's ``nn.init.xavier_uniform_``, gain 1): kernels uniform in
    +-sqrt(6 / (fan_in + fan_out)), a conv's fans times its kernel area, zero biases; an output layer's gain is
    ``output_scale``. A simbav2 network ignores it (its own init), which is a note, not silence."""
    net = Net(hidden=(512, 384), kernel_init="xavier_uniform", conv=(64,), conv_kernel=3, output_scale=0.5)
    params = MLP(net, (300,), obs_ndim=3).init(jax.random.PRNGKey(0), jnp.zeros((1, 7, 7, 5)))["params"]
    fans = {"Conv_0": (9 * 5, 9 * 64, 1.0), "Dense_0": (5 * 5 * 64, 512, 1.0), "Dense_1": (512, 384, 1.0)}
    fans["Dense_2"] = (384, 300, 0.5)
    for name, (fan_in, fan_out, gain) in fans.items():
        bound = gain * np.sqrt(6.0 / (fan_in + fan_out))
        x = np.asarray(params[name]["kernel"]).ravel()
        assert np.abs(x).max() <= bound * (1 + 1e-6) and np.abs(x).max() > 0.9 * bound, name
        assert abs(x.std() - bound / np.sqrt(3)) < 0.05 * bound, name
        assert not np.any(np.asarray(params[name]["bias"])), name
    simba = driver.build_config(
        {
            "algo": "simbav2",
            "env": {"name": "gymnax/Pendulum-v1"},
            "agent": {"actor": {"kernel_init": "xavier_uniform"}},
        }
    )
    assert driver.unread_settings(simba) == [
        "agent.actor.kernel_init=xavier_uniform is never read: read only with architecture: mlp; architecture is "
        "simbav2"
    ]
