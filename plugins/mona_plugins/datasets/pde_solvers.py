"""Numerical solvers for PDEBench-style 1-D tasks on the periodic unit interval.

- Advection ``u_t + beta u_x = 0``: Fourier (spectral) derivative in space, classical RK4 in
  time with a CFL-limited step. Checked against the exact shift ``u0(x - beta t)``.
- Diffusion-reaction ``u_t = nu u_xx + rho u (1 - u)`` (Fisher-KPP, PDEBench's 1-D
  diffusion-reaction): Strang splitting of an exact diffusion step in Fourier space
  (each mode decays as ``exp(-nu k^2 dt)``) and the exact logistic reaction step.
  Checked against the Fourier-mode decay (rho = 0) and the logistic ODE (nu = 0).

All functions take and return numpy arrays ``[batch, n_points]`` (float64).
"""

from __future__ import annotations

import numpy as np


def grid(n: int) -> np.ndarray:
    """Cell centres of the periodic unit interval."""
    return (np.arange(n) + 0.5) / n


def wavenumbers(n: int) -> np.ndarray:
    """Angular wavenumbers ``2 pi k`` matching ``np.fft.rfft`` of n points on [0, 1)."""
    return 2.0 * np.pi * np.fft.rfftfreq(n, d=1.0 / n)


def advect(u0: np.ndarray, beta: float, t: float, cfl: float = 0.25) -> np.ndarray:
    """Solve the advection equation to time ``t`` (RK4 + spectral derivative)."""
    u = np.array(u0, dtype=np.float64, copy=True)
    n = u.shape[-1]
    if t == 0 or beta == 0:
        return u
    ik = 1j * wavenumbers(n)
    if n % 2 == 0:
        ik[-1] = 0.0  # the Nyquist mode has no well-defined derivative for real data
    # RK4 is stable for |lambda dt| <= 2.8 on the imaginary axis; lambda_max = beta * pi * n.
    dt_max = cfl * 2.8 / (abs(beta) * np.pi * n)
    steps = int(np.ceil(t / dt_max))
    dt = t / steps

    def rhs(v: np.ndarray) -> np.ndarray:
        return -beta * np.fft.irfft(ik * np.fft.rfft(v, axis=-1), n=n, axis=-1)

    for _ in range(steps):
        k1 = rhs(u)
        k2 = rhs(u + 0.5 * dt * k1)
        k3 = rhs(u + 0.5 * dt * k2)
        k4 = rhs(u + dt * k3)
        u = u + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return u


def logistic(u: np.ndarray, rho: float, t: float) -> np.ndarray:
    """Exact solution of ``u' = rho u (1 - u)`` after time t."""
    if rho == 0 or t == 0:
        return np.array(u, dtype=np.float64, copy=True)
    e = np.exp(-rho * t)
    return u / (u + (1.0 - u) * e)


def diffuse(u: np.ndarray, nu: float, t: float) -> np.ndarray:
    """Exact periodic heat flow: each Fourier mode times ``exp(-nu k^2 t)``."""
    n = u.shape[-1]
    k = wavenumbers(n)
    return np.fft.irfft(np.fft.rfft(u, axis=-1) * np.exp(-nu * k**2 * t), n=n, axis=-1)


def diffusion_reaction(u0: np.ndarray, nu: float, rho: float, t: float, dt: float = 1e-3) -> np.ndarray:
    """Solve Fisher-KPP to time ``t`` by Strang splitting (half reaction, diffusion, half reaction)."""
    u = np.array(u0, dtype=np.float64, copy=True)
    if t == 0:
        return u
    steps = max(1, int(np.ceil(t / dt)))
    h = t / steps
    for _ in range(steps):
        u = logistic(u, rho, h / 2)
        u = diffuse(u, nu, h)
        u = logistic(u, rho, h / 2)
    return u


def sine_initial_conditions(rng: np.random.Generator, batch: int, n: int, *, waves: int = 2, k_max: int = 8) -> np.ndarray:
    """PDEBench's initial conditions: sums of ``waves`` sines, integer wavenumber 1..k_max,
    amplitude U(0, 1), phase U(0, 2 pi)."""
    x = grid(n)
    k = rng.integers(1, k_max + 1, size=(batch, waves, 1))
    amp = rng.uniform(0.0, 1.0, size=(batch, waves, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(batch, waves, 1))
    return (amp * np.sin(2 * np.pi * k * x[None, None, :] + phase)).sum(axis=1)


def unit_interval(u: np.ndarray) -> np.ndarray:
    """Map each profile into [0, 1] (min-max per sample): Fisher-KPP states are densities."""
    lo = u.min(axis=-1, keepdims=True)
    hi = u.max(axis=-1, keepdims=True)
    return (u - lo) / np.maximum(hi - lo, 1e-12)
