"""The PDE solvers against analytic solutions and invariants."""

import numpy as np
import pytest

from mona_plugins.datasets import pde_solvers as S


def test_advection_is_an_exact_periodic_shift():
    n, beta = 128, 0.4
    rng = np.random.default_rng(0)
    u0 = S.sine_initial_conditions(rng, 4, n)
    # beta * t = 16 grid cells: the exact solution is a roll of the grid values.
    t = 16 / n / beta
    u = S.advect(u0, beta, t)
    np.testing.assert_allclose(u, np.roll(u0, 16, axis=-1), atol=1e-5)
    # a full period returns the profile; mass (the mean) is conserved
    np.testing.assert_allclose(S.advect(u0, beta, 1 / beta), u0, atol=1e-4)
    np.testing.assert_allclose(u.mean(-1), u0.mean(-1), atol=1e-12)


def test_advection_matches_translated_function():
    n, beta, t = 96, 1.3, 0.37
    x = S.grid(n)
    f = lambda s: np.sin(2 * np.pi * s) + 0.5 * np.cos(6 * np.pi * s)  # noqa: E731
    np.testing.assert_allclose(S.advect(f(x)[None], beta, t)[0], f(x - beta * t), atol=1e-5)


@pytest.mark.parametrize("k", [1, 3])
def test_diffusion_fourier_mode_decays_at_nu_k2(k):
    n, nu, t = 64, 0.05, 0.3
    x = S.grid(n)
    u0 = np.sin(2 * np.pi * k * x)[None]
    u = S.diffusion_reaction(u0, nu=nu, rho=0.0, t=t, dt=0.01)
    expected = np.exp(-nu * (2 * np.pi * k) ** 2 * t) * u0
    np.testing.assert_allclose(u, expected, atol=1e-10)


def test_reaction_alone_is_the_logistic_ode():
    n, rho, t = 32, 2.0, 0.8
    u0 = np.random.default_rng(1).uniform(0.05, 0.95, size=(3, n))
    u = S.diffusion_reaction(u0, nu=0.0, rho=rho, t=t, dt=0.01)
    exact = u0 * np.exp(rho * t) / (1 - u0 + u0 * np.exp(rho * t))
    np.testing.assert_allclose(u, exact, atol=1e-10)


def test_fisher_kpp_stays_in_unit_interval_and_converges():
    u0 = S.unit_interval(S.sine_initial_conditions(np.random.default_rng(2), 8, 64))
    u = S.diffusion_reaction(u0, nu=0.01, rho=1.0, t=1.0)
    assert u.min() >= -1e-9 and u.max() <= 1 + 1e-9
    # reaction drives the density up (u=1 is the stable state); splitting error is second order
    assert (u.mean(-1) > u0.mean(-1)).all()
    coarse = S.diffusion_reaction(u0, 0.01, 1.0, 1.0, dt=0.1)
    fine = S.diffusion_reaction(u0, 0.01, 1.0, 1.0, dt=0.05)
    finest = S.diffusion_reaction(u0, 0.01, 1.0, 1.0, dt=0.001)
    e1, e2 = np.abs(coarse - finest).max(), np.abs(fine - finest).max()
    assert e2 < e1 / 3  # halving dt cuts the error ~4x
