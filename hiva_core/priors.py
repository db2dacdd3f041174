"""How often each AU occurs in a new domain, estimated without labels, and the thresholds that follow from it.

A model's probabilities carry the AU rates of the faces it was trained on. Posed faces show 1.8 BP4D AUs each where
BP4D's rows show 3.9, and a model that learnt AU10 beside AU12 keeps firing it on faces that rarely have it: the
ranking holds (AUC) while F1 at a fixed threshold falls. With the probabilities calibrated on the training domain's
validation rows (`fit_calibration`: per AU, `logit p_cal = scale · logit p + shift`, Platt 1999), the rates of a set
of unlabelled faces follow by EM (Saerens, Latinne & Decaestecker 2002, `estimate_rate`): re-weight each face's
posterior by the ratio of new to old rate until the rate is the mean posterior. Under that change of rate alone the
calibrated log-odds move by `logit q − logit π`, so a threshold `t` chosen on the validation rows becomes
`σ(logit t − (logit q − logit π) / scale)` on the model's own probabilities (`shifted_threshold`).

It assumes the faces look to the model as the training faces did for a given set of AUs (label shift). A change of
look moves the probabilities too, and EM reads part of that as a change of rate: measure it on a labelled sample of
the domain before relying on it (README, "Adapting a run to your faces").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

EPS = 1e-6  # probabilities are clipped to [EPS, 1 - EPS] before their logit
RATE_RANGE = (1e-3, 1 - 1e-3)  # an estimated rate stays inside this range


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def fit_platt(p: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[float, float] | None:
    """`(scale, shift)` of the logistic regression of the labels `y` (bool) on `logit p` (Newton's method with Platt's
    smoothed targets, so that separable rows give a finite fit); None when the rows have no positive or no negative
    label, or the fit does not rank as the model does (scale ≤ 0)."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    target = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    x = np.stack([logit(p), np.ones_like(p)], axis=1)
    w = np.array([1.0, 0.0])
    for _ in range(iterations):
        q = sigmoid(x @ w)
        grad = x.T @ (q - target)
        hess = (x * (q * (1 - q))[:, None]).T @ x + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    scale, shift = float(w[0]), float(w[1])
    return (scale, shift) if scale > 0 and math.isfinite(scale) and math.isfinite(shift) else None


def fit_calibration(probs: np.ndarray, labels: np.ndarray, mask: np.ndarray | None, aus: Sequence[int]) -> dict:
    """Per AU of these (validation) rows: `{"AU1": {"scale", "shift", "rate"}, ...}` — the Platt fit of the labels
    on the model's logit and the AU's rate among the known labels. An AU the rows cannot calibrate (no positive or no
    negative label) is left out."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    known = ~np.isnan(labels) if mask is None else (~np.isnan(labels) & np.asarray(mask, dtype=bool))
    out = {}
    for j, code in enumerate(aus):
        p, y = probs[known[:, j], j], labels[known[:, j], j] > 0.5
        fit = fit_platt(p, y)
        if fit is not None:
            out[f"AU{code}"] = {"scale": fit[0], "shift": fit[1], "rate": float(y.mean())}
    return out


def estimate_rate(calibrated: np.ndarray, rate: float, iterations: int = 1000, tol: float = 1e-7) -> float:
    """EM estimate of an AU's rate on a set of faces from their calibrated probabilities `calibrated` (under the
    training rate `rate`), kept inside RATE_RANGE."""
    p = np.clip(np.asarray(calibrated, dtype=np.float64), EPS, 1 - EPS)
    rate = float(np.clip(rate, *RATE_RANGE))
    q = rate
    for _ in range(iterations):
        up, down = q / rate, (1 - q) / (1 - rate)
        new = float(np.clip(np.mean(up * p / (up * p + down * (1 - p))), *RATE_RANGE))
        if abs(new - q) < tol:
            return new
        q = new
    return q


def shifted_threshold(threshold: float, scale: float, rate: float, new_rate: float) -> float:
    """The threshold on the model's own probability that makes the same decision on calibrated probabilities after
    the AU's rate moved from `rate` to `new_rate`."""
    delta = float(logit(new_rate) - logit(rate))
    return float(sigmoid(logit(threshold) - delta / scale))


def adapt_thresholds(
    probs: np.ndarray, aus: Sequence[int], calibration: Mapping[str, Mapping], thresholds: Mapping[int, float]
) -> dict:
    """Per AU of `aus` (columns of `probs`, the model's probabilities on unlabelled faces): the estimated rate and the
    threshold that follows from it. `thresholds` are the run's ({code: t}; 0.5 where missing). An AU without a
    calibration keeps its threshold (`"estimated": None`). Returns `{"AU1": {"rate", "estimated", "threshold",
    "adapted"}, ...}`."""
    probs = np.asarray(probs, dtype=np.float64)
    out = {}
    for j, code in enumerate(aus):
        name, t = f"AU{code}", float(thresholds.get(code, 0.5))
        cal = calibration.get(name)
        if cal is None:
            out[name] = {"rate": None, "estimated": None, "threshold": t, "adapted": t}
            continue
        calibrated = sigmoid(cal["scale"] * logit(probs[:, j]) + cal["shift"])
        q = estimate_rate(calibrated, cal["rate"])
        out[name] = {
            "rate": cal["rate"],
            "estimated": q,
            "threshold": t,
            "adapted": shifted_threshold(t, cal["scale"], cal["rate"], q),
        }
    return out
