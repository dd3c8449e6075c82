"""Server optimizers against Reddi et al.'s Algorithm 2 written out per scalar, and closed forms."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError
from fedla.runtime.paramserv.server_optimizers import SERVER_OPTIMIZERS, make_server_optimizer


def reference(name, x0, deltas, lr=0.01, beta1=0.9, beta2=0.99, tau=1e-3):
    """Algorithm 2 of Reddi et al. 2021 for one scalar parameter, in plain Python floats."""
    x, m, v = x0, 0.0, tau**2
    for d in deltas:
        m = beta1 * m + (1 - beta1) * d
        if name == "fedadagrad":
            v = v + d * d
        elif name == "fedyogi":
            v = v - (1 - beta2) * d * d * math.copysign(1.0, v - d * d) * (v != d * d)
        else:
            v = beta2 * v + (1 - beta2) * d * d
        x = x + lr * m / (math.sqrt(v) + tau)
    return x


def run(opt, model, deltas):
    for d in deltas:
        model = opt.step(model, d)
    return model


def test_names():
    assert SERVER_OPTIMIZERS == ("fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad")
    for name in SERVER_OPTIMIZERS:
        assert make_server_optimizer(name).name == name


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fedavg_default_is_exactly_model_plus_delta(dtype):
    rng = np.random.default_rng(0)
    model = [rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=5).astype(dtype)]
    delta = [rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=5).astype(dtype)]
    out = make_server_optimizer("fedavg").step(model, delta)
    for o, m, d in zip(out, model, delta):
        assert o.dtype == dtype
        np.testing.assert_array_equal(o, m + d)


def test_fedavg_lr_scales_the_delta():
    out = make_server_optimizer("fedavg", lr=0.5).step([np.array([1.0, 2.0])],
                                                      [np.array([4.0, -2.0])])
    np.testing.assert_array_equal(out[0], [3.0, 1.0])


def test_fedavgm_closed_form_for_a_constant_delta():
    # v_T = d (1 - mu^T) / (1 - mu); x_T = x0 + lr * sum_t v_t
    mu, lr, d, rounds = 0.9, 0.5, 2.0, 7
    opt = make_server_optimizer("fedavgm", lr=lr, momentum=mu)
    out = run(opt, [np.array([1.0])], [[np.array([d])]] * rounds)
    expected = 1.0 + lr * sum(d * (1 - mu**t) / (1 - mu) for t in range(1, rounds + 1))
    assert out[0][0] == pytest.approx(expected, rel=1e-14)


def test_fedadam_first_step_by_hand():
    # m = 0.1 * 1, v = 0.99 * 1e-6 + 0.01 * 1, x = 0 + 0.01 * m / (sqrt(v) + 1e-3)
    out = make_server_optimizer("fedadam").step([np.zeros(1)], [np.ones(1)])
    assert out[0][0] == pytest.approx(0.01 * 0.1 / (math.sqrt(0.0100009900) + 1e-3), rel=1e-12)


@pytest.mark.parametrize("name", ["fedadam", "fedyogi", "fedadagrad"])
def test_adaptive_matches_algorithm_2(name):
    rng = np.random.default_rng(1)
    deltas = [[rng.normal(size=(2, 3)), rng.normal(size=4)] for _ in range(6)]
    x0 = [rng.normal(size=(2, 3)), rng.normal(size=4)]
    params = {"lr": 0.1, "beta1": 0.8, "beta2": 0.95, "tau": 1e-2}
    out = run(make_server_optimizer(name, **params), x0, deltas)
    for a, (o, x) in enumerate(zip(out, x0)):
        for idx in np.ndindex(x.shape):
            ref = reference(name, x[idx], [d[a][idx] for d in deltas], **params)
            assert o[idx] == pytest.approx(ref, rel=1e-12, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(["fedadam", "fedyogi", "fedadagrad"]),
       deltas=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=8))
def test_adaptive_property(name, deltas):
    out = run(make_server_optimizer(name), [np.zeros(1)], [[np.array([d])] for d in deltas])
    assert out[0][0] == pytest.approx(reference(name, 0.0, deltas), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("name", SERVER_OPTIMIZERS)
def test_integer_arrays_pass_through_rounded(name):
    model = [np.zeros(2), np.array([5, 7], dtype=np.int64), np.array([True, False])]
    delta = [np.ones(2), np.array([1.4, 2.6]), np.array([0.0, 1.0])]
    out = make_server_optimizer(name).step(model, delta)
    assert out[1].dtype == np.int64 and out[2].dtype == np.bool_
    np.testing.assert_array_equal(out[1], [6, 10])
    np.testing.assert_array_equal(out[2], [True, True])


@pytest.mark.parametrize("name", SERVER_OPTIMIZERS)
def test_state_round_trip_through_npz_resumes_exactly(name):
    rng = np.random.default_rng(2)
    x0 = [rng.normal(size=3), np.array([0], dtype=np.int32)]
    deltas = [[rng.normal(size=3), np.array([1.0])] for _ in range(5)]
    straight = run(make_server_optimizer(name), x0, deltas)
    first = make_server_optimizer(name)
    half = run(first, x0, deltas[:2])
    buf = io.BytesIO()
    np.savez(buf, **first.state())
    buf.seek(0)
    resumed = make_server_optimizer(name)
    with np.load(buf, allow_pickle=False) as data:
        resumed.load_state(dict(data))
    out = run(resumed, half, deltas[2:])
    for a, b in zip(out, straight):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.state()["steps"]) == 5


def test_unknown_name_lists_the_choices():
    with pytest.raises(InvalidArgumentError, match=r"'name'.*fedavg.*fedyogi.*Got 'adam'"):
        make_server_optimizer("adam")


def test_unknown_parameter_names_it_and_the_valid_ones():
    with pytest.raises(InvalidArgumentError, match=r"'momentum'.*'fedadam'.*'beta1'"):
        make_server_optimizer("fedadam", momentum=0.9)


@pytest.mark.parametrize("name,param,value", [("fedadam", "beta1", 1.0), ("fedyogi", "tau", 0.0),
                                              ("fedavgm", "momentum", -0.1),
                                              ("fedavg", "lr", "1")])
def test_out_of_range_parameter(name, param, value):
    with pytest.raises(InvalidArgumentError, match=rf"'{param}'.*must be.*Got {value!r} instead"):
        make_server_optimizer(name, **{param: value})


def test_delta_of_the_wrong_shape():
    with pytest.raises(ShapeMismatchError, match=r"delta\[0\] has shape \(3,\)"):
        make_server_optimizer("fedadam").step([np.zeros(2)], [np.zeros(3)])


def test_state_of_another_optimizer_is_refused():
    with pytest.raises(InvalidArgumentError, match="fedadam"):
        make_server_optimizer("fedyogi").load_state(make_server_optimizer("fedadam").state())
