"""BTYD family: "buy till you die" models fitted as of each cutoff from purchase days before it.

* **BG/NBD** (Fader, Hardie and Lee 2005): while alive a customer buys at a Poisson rate
  (gamma-distributed over customers, ``r``, ``alpha``) and after each purchase drops out with a
  probability (beta-distributed, ``a``, ``b``). From each customer's repeat purchase days ``x``,
  the time of the last one ``t_x`` and the time since the first ``T`` (weeks) it gives the
  probability of being alive and the expected purchase days over the next ``horizon`` days.
* **Gamma-Gamma** (Fader, Hardie and Lee 2005; Fader and Hardie 2013): the expected value of a
  purchase day from the mean value ``m`` of the customer's repeat days, shrunk to the population.

Both are fitted by maximum likelihood with a small ridge penalty on the log-parameters
(``PENALTY`` x their squares, added to the mean negative log-likelihood). Plain maximum likelihood
runs to a boundary on logs where many customers never seem to leave (wholesale buyers: ``b``
grows without end); the penalty keeps the fit finite, and on logs where the plain fit converges it
moves the parameters little (CDNOW 1/10 sample, 39 weeks: r 0.244, alpha 4.41, a 0.778, b 2.36
against the plain fit's 0.244, 4.42, 0.793, 2.42).

A purchase day is a calendar day (UTC) with at least one purchase before ``as_of``; its value is
the gross amount bought that day before ``as_of``. Everything is vectorised over customers; the
fit itself works on the distinct ``(x, t_x, T)`` triples, weighted by their counts.

The fit is a population figure: on more than ``MAX_FIT_CUSTOMERS`` buyers it runs on the buyers
whose ids hash lowest (:func:`fit_sample`), and its inputs are put in the order of their values,
so neither the order of the rows nor a split of the customers into buckets changes a bit of the
parameters. The bucketed engines (:mod:`vipml.buckets`, :mod:`vipml.spark`) build each bucket with
``population={"btyd": DEFER}``: the family then returns each customer's summary (the
``_btyd_*`` columns of :data:`SUMMARY`) instead of fitting, each bucket hands over its candidates
for the sample (:func:`fit_candidates`), the driver fits once (:func:`fit_population`) and
:func:`btyd_values` gives the features from the summary and the parameters.

The expected-value timing (:func:`vipml.value.timing`) fits BG/NBD on the same purchase days the
same way (:func:`fit_bgnbd_population`); :func:`fit_bgnbd` keeps its last few fits by the bytes
of their inputs, so scoring after building the features reads the features' fit back instead of
fitting the same buyers twice (the fit is deterministic: a second one would give the same bits).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from vipml.features.base import Context, Family
from vipml.features.engine import Timeline
from vipml.features.registry import Feature
from vipml.windows import DAY_US, to_us

F = "btyd"
PENALTY = 1e-4
WEEK_DAYS = 7.0
MIN_CUSTOMERS = 20  # fewer buyers than this: no fit, the features are missing
MAX_FIT_CUSTOMERS = 100_000  # larger logs fit on a fixed random sample of this many buyers
BTYD_BASELINE = "btyd_expected_spend"  # the BG/NBD + Gamma-Gamma baseline reads this column
DEFER = "defer"  # population={"btyd": DEFER}: return the summary, the fit comes from outside
SUMMARY = ("days", "x", "t_x", "T", "m", "value")  # per customer, as columns "_btyd_<name>"
HIDDEN = tuple(f"_btyd_{k}" for k in SUMMARY)
FIT_KEY = "vipml-btyd-fit01"  # 16 bytes: the hash key that picks the fit's sample
NAMES = ("btyd_p_alive", "btyd_expected_orders", "btyd_expected_order_value", BTYD_BASELINE)


# ---------------------------------------------------------------- BG/NBD
def bgnbd_loglik(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Log-likelihood of each customer (Fader, Hardie and Lee 2005, eq. 6)."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    a3 = np.where(
        x > 0,
        betaln(a + 1, np.maximum(b + x - 1, 1e-12)) - betaln(a, b) - (r + x) * np.log(alpha + tx),
        -np.inf,
    )
    return a1 + np.logaddexp(a2, a3)


def _fit(nll, start: np.ndarray) -> np.ndarray:
    """Minimise over log-parameters with L-BFGS-B; Nelder-Mead from there when it stalls."""
    bounds = [(-12.0, 12.0)] * len(start)
    with np.errstate(all="ignore"):
        best = minimize(nll, start, method="L-BFGS-B", bounds=bounds)
        if not best.success:
            again = minimize(
                nll, best.x, method="Nelder-Mead", options={"maxiter": 4000, "fatol": 1e-10}
            )
            best = again if again.fun < best.fun else best
    return np.exp(np.clip(best.x, -12.0, 12.0))


def _sample(n: int, limit: int, seed: int = 0) -> np.ndarray:
    """At most ``limit`` of ``n`` rows, the same ones for the same ``n`` (fits on huge logs)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def fit_keys(ids: np.ndarray | pd.Index) -> np.ndarray:
    """A number per customer id (63 bits of a keyed hash of the id text) that picks the fit's
    sample: the same id gets the same key on any machine, in any bucket."""
    values = pd.Series(np.asarray(ids, dtype=object)).astype("str").to_numpy(dtype=object)
    hashed = pd.util.hash_array(values, hash_key=FIT_KEY, categorize=False)
    return (hashed >> np.uint64(1)).astype(np.int64)


def fit_sample(ids: np.ndarray | pd.Index, limit: int | None = None) -> np.ndarray:
    """Positions of at most ``limit`` (default ``MAX_FIT_CUSTOMERS``) customers: all of them, or
    those with the smallest :func:`fit_keys` (ties by id). The set depends on the ids alone, not
    on their order, and the sample of a union of buckets is the sample of the union of each
    bucket's own sample."""
    limit = MAX_FIT_CUSTOMERS if limit is None else limit
    n = len(ids)
    if n <= limit:
        return np.arange(n)
    keys = fit_keys(ids)
    kth = np.partition(keys, limit - 1)[limit - 1]
    below = np.flatnonzero(keys < kth)
    tied = np.flatnonzero(keys == kth)
    need = limit - len(below)
    if len(tied) > need:
        text = pd.Series(np.asarray(ids, dtype=object)[tied]).astype("str").to_numpy(dtype=object)
        tied = tied[np.argsort(text, kind="stable")[:need]]
    return np.sort(np.concatenate([below, tied]))


def fit_bgnbd(
    x: np.ndarray, tx: np.ndarray, T: np.ndarray, *, penalty: float = PENALTY
) -> np.ndarray | None:
    """``(r, alpha, a, b)`` by penalised maximum likelihood; None when too few customers."""
    if len(x) < MIN_CUSTOMERS:
        return None
    memo = _fit_key(penalty, x, tx, T)
    found = _FITTED.get(memo)
    if found is not None:  # the same buyers fitted before (features, then scoring's timing)
        return found.copy()
    rows = _sample(len(x), MAX_FIT_CUSTOMERS)
    x, tx, T = x[rows], tx[rows], T[rows]
    key = np.stack([x, np.round(tx, 6), np.round(T, 6)], axis=1)
    uniq, counts = np.unique(key, axis=0, return_counts=True)
    ux, utx, uT = uniq[:, 0], uniq[:, 1], uniq[:, 2]
    w = counts / counts.sum()

    def nll(lp: np.ndarray) -> float:
        value = -(w * bgnbd_loglik(np.exp(lp), ux, utx, uT)).sum() + penalty * (lp**2).sum()
        return float(value) if np.isfinite(value) else 1e12

    scale = max(float(np.mean(T)), 1.0)
    params = _fit(nll, np.log([1.0, scale, 1.0, 1.0]))
    while len(_FITTED) >= FIT_MEMO:
        _FITTED.pop(next(iter(_FITTED)))
    _FITTED[memo] = params.copy()
    return params


FIT_MEMO = 4  # BG/NBD fits kept by the bytes of their inputs
_FITTED: dict[bytes, np.ndarray] = {}


def _fit_key(penalty: float, *arrays: np.ndarray) -> bytes:
    """A digest of a fit's inputs: equal digests, equal inputs, the same parameters bit for bit
    (the fit is deterministic), so a second fit of the same buyers is read back, not redone."""
    h = hashlib.blake2b(digest_size=20)
    h.update(np.array([penalty, MAX_FIT_CUSTOMERS], dtype=np.float64).tobytes())
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=np.float64)
        h.update(np.int64(len(a)).tobytes())
        h.update(a.tobytes())
    return h.digest()


def bgnbd_expected(
    params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, t: float
) -> np.ndarray:
    """Expected purchase days in ``(T, T + t]`` (FHL 2005, eq. 10); ``t`` in weeks."""
    r, alpha, a, b = params
    with np.errstate(all="ignore"):
        z = t / (alpha + T + t)
        num = (
            (a + b + x - 1)
            / (a - 1)
            * (
                1
                - ((alpha + T) / (alpha + T + t)) ** (r + x)
                * hyp2f1(r + x, b + x, a + b + x - 1, z)
            )
        )
        den = 1 + (x > 0) * a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + tx)) ** (
            r + x
        )
        out = num / den
    return np.where(np.isfinite(out), np.maximum(out, 0.0), np.nan)


def bgnbd_p_alive(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Probability the customer is still alive at ``T`` (1 for customers without a repeat)."""
    r, alpha, a, b = params
    with np.errstate(all="ignore"):
        odds = a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + tx)) ** (r + x)
        out = np.where(x > 0, 1.0 / (1.0 + odds), 1.0)
    return np.where(np.isfinite(out), out, np.nan)


# ---------------------------------------------------------------- Gamma-Gamma
def fit_gamma_gamma(x: np.ndarray, m: np.ndarray, *, penalty: float = PENALTY) -> np.ndarray | None:
    """``(p, q, gamma)`` from customers with repeat days (``x > 0``, ``m > 0``); None when too few."""
    ok = (x > 0) & (m > 0)
    if ok.sum() < MIN_CUSTOMERS:
        return None
    x, m = x[ok], m[ok]
    rows = _sample(len(x), MAX_FIT_CUSTOMERS)
    x, m = x[rows], m[rows]
    w = 1.0 / len(x)

    def nll(lp: np.ndarray) -> float:
        p, q, g = np.exp(lp)
        ll = (
            gammaln(p * x + q)
            - gammaln(p * x)
            - gammaln(q)
            + q * np.log(g)
            + (p * x - 1) * np.log(m)
            + p * x * np.log(x)
            - (p * x + q) * np.log(g + m * x)
        )
        value = -w * ll.sum() + penalty * (lp**2).sum()
        return float(value) if np.isfinite(value) else 1e12

    return _fit(nll, np.log([1.0, 2.0, max(float(np.mean(m)), 1e-3)]))


def gamma_gamma_expected(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[value of a purchase day | x, m]; the population mean for customers without repeats."""
    p, q, g = params
    pop = p * g / (q - 1) if q > 1 else np.nan
    with np.errstate(all="ignore"):
        cond = p * (g + x * m) / (p * x + q - 1)
    return np.where((x > 0) & (m > 0), cond, pop)


# ---------------------------------------------------------------- the family
def purchase_days(ctx: Context) -> Timeline:
    """One row per (customer, UTC day with a purchase), its value the day's gross amount;
    built once per data set and shared with the purchase family."""
    found = ctx.cache.get("purchase_days")
    if found is None:
        rows = ctx.orders_timeline()
        buy = rows.column("purchase", keep=False) > 0
        codes = rows.codes[buy]
        times = rows.times[buy]
        gross = rows.column("gross")[buy]
        day = times // DAY_US
        # rows are sorted by customer and time: a new purchase day starts where either changes
        new = np.ones(len(day), dtype=bool)
        new[1:] = (codes[1:] != codes[:-1]) | (day[1:] != day[:-1])
        found = Timeline(
            codes, times, len(ctx.customers), {"gross": gross, "new": new}, stable=True
        )
        ctx.cache["purchase_days"] = found
    return found


def _f(name: str, en: str, ko: str, unit: str) -> Feature:
    return Feature(name=name, family=F, table="orders", en=en, ko=ko, unit=unit, fill=None)


@dataclass
class _Days:
    days: Timeline  # one row per (customer, purchase day), with the day's value


class BtydFamily(Family):
    """BG/NBD probability alive and expected purchases, Gamma-Gamma expected day value."""

    name = F
    tables = ("orders",)

    def features(self, ctx: Context) -> list[Feature]:
        h = ctx.config.labels.horizon_days
        return [
            _f(
                "btyd_p_alive",
                "Probability the customer still buys (BG/NBD)",
                "아직 이탈하지 않고 구매를 이어갈 확률 (구매·이탈 확률 모형)",
                "ratio",
            ),
            _f(
                "btyd_expected_orders",
                f"Expected purchase days in the next {h} days (BG/NBD)",
                f"향후 {h}일 예상 구매 일수 (구매·이탈 확률 모형)",
                "count",
            ),
            _f(
                "btyd_expected_order_value",
                "Expected value of a purchase day (Gamma-Gamma)",
                "구매일당 예상 구매 금액 (감마-감마 모형)",
                "currency",
            ),
            _f(
                BTYD_BASELINE,
                f"Expected spend in the next {h} days (BG/NBD x Gamma-Gamma)",
                f"향후 {h}일 예상 구매 금액 (구매·이탈 확률 모형 x 감마-감마 모형)",
                "currency",
            ),
        ]

    def prepare(self, ctx: Context) -> _Days:
        return _Days(purchase_days(ctx))

    def compute(self, state: _Days, ctx: Context, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
        s = summary(state.days, as_of)
        given = ctx.population.get("btyd")
        if isinstance(given, str) and given == DEFER:  # a bucket: the driver fits
            out: dict[str, np.ndarray] = {name: np.full(len(s["days"]), np.nan) for name in NAMES}
            out.update({f"_btyd_{k}": s[k] for k in SUMMARY})
            return out
        if isinstance(given, Mapping):  # parameters fitted elsewhere, one set per cutoff
            fit = given[pd.Timestamp(as_of)]
        else:
            known = np.zeros(len(ctx.customers), dtype=bool)
            known[ctx.known(as_of)] = True
            rows = np.flatnonzero((s["days"] > 0) & known)
            ids = np.asarray(ctx.customers.ids, dtype=object)[rows]
            fit = fit_population({k: s[k][rows] for k in SUMMARY}, ids)
        return btyd_values(fit, s, ctx.config.labels.horizon_days)

    def _names(self, ctx: Context) -> list[str]:
        return [f.name for f in self.features(ctx)]


def summary(days: Timeline, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
    """The per-customer inputs of the BTYD family (:data:`SUMMARY`), as float64."""
    s = day_summary(days, as_of)
    return {k: np.asarray(s[k], dtype=np.float64) for k in SUMMARY}


def fit_population(
    s: Mapping[str, np.ndarray], ids: np.ndarray | pd.Index
) -> dict[str, np.ndarray | None]:
    """BG/NBD and Gamma-Gamma parameters from the buyers' summaries (``s``: :data:`SUMMARY`
    arrays, one entry per buyer known at the cutoff, ``ids`` theirs). Each model fits on
    :func:`fit_sample` of its buyers, put in the order of their values, so the parameters depend
    on the set of buyers alone (not on row order, nor on buckets)."""
    ids = np.asarray(ids, dtype=object)
    x, m = np.asarray(s["x"], dtype=np.float64), np.asarray(s["m"], dtype=np.float64)
    bg = fit_bgnbd_population(s, ids)
    repeat = np.flatnonzero((x > 0) & (m > 0))
    repeat = repeat[fit_sample(ids[repeat])]
    repeat = repeat[np.lexsort((m[repeat], x[repeat]))]
    gg = fit_gamma_gamma(x[repeat], m[repeat]) if bg is not None else None
    return {"bgnbd": bg, "gamma_gamma": gg}


def fit_bgnbd_population(
    s: Mapping[str, np.ndarray], ids: np.ndarray | pd.Index
) -> np.ndarray | None:
    """BG/NBD parameters of :func:`fit_population` alone (``s`` needs ``x``, ``t_x`` and
    ``T``): fitted on :func:`fit_sample` of the buyers, put in the order of their values. The
    expected-value timing (:func:`vipml.value.timing`) fits the same way, so both give the same
    parameters for the same buyers."""
    ids = np.asarray(ids, dtype=object)
    x, tx, T = (np.asarray(s[k], dtype=np.float64) for k in ("x", "t_x", "T"))
    rows = fit_sample(ids)
    rows = rows[np.lexsort((T[rows], tx[rows], x[rows]))]
    return fit_bgnbd(x[rows], tx[rows], T[rows])


def fit_candidates(s: Mapping[str, np.ndarray], ids: np.ndarray | pd.Index) -> pd.DataFrame:
    """The rows of one bucket's buyers (``s`` and ``ids`` as in :func:`fit_population`) that can
    be in the population's samples: the bucket's own sample of buyers and of repeat buyers.
    :func:`fit_population` on every bucket's candidates together gives the whole-data fit."""
    ids = np.asarray(ids, dtype=object)
    x, m = np.asarray(s["x"], dtype=np.float64), np.asarray(s["m"], dtype=np.float64)
    keep = np.zeros(len(ids), dtype=bool)
    keep[fit_sample(ids)] = True
    repeat = np.flatnonzero((x > 0) & (m > 0))
    keep[repeat[fit_sample(ids[repeat])]] = True
    frame = pd.DataFrame({k: np.asarray(s[k], dtype=np.float64)[keep] for k in SUMMARY})
    frame.insert(0, "customer_id", ids[keep])
    return frame


def merge_candidates(a: pd.DataFrame | None, b: pd.DataFrame) -> pd.DataFrame:
    """Two sets of candidates as one, cut back to what the population's samples may hold."""
    both = b if a is None else pd.concat([a, b], ignore_index=True)
    if len(both) <= MAX_FIT_CUSTOMERS:
        return both
    return fit_candidates(
        {k: both[k].to_numpy() for k in SUMMARY}, both["customer_id"].to_numpy(dtype=object)
    )


def fit_from_candidates(frame: pd.DataFrame | None) -> dict[str, np.ndarray | None]:
    """:func:`fit_population` on candidates gathered from every bucket."""
    if frame is None or not len(frame):
        return {"bgnbd": None, "gamma_gamma": None}
    return fit_population(
        {k: frame[k].to_numpy(dtype=np.float64) for k in SUMMARY},
        frame["customer_id"].to_numpy(dtype=object),
    )


def btyd_values(
    fit: Mapping[str, np.ndarray | None], s: Mapping[str, np.ndarray], horizon_days: int
) -> dict[str, np.ndarray]:
    """The family's features from each customer's summary and the population's parameters."""
    days = np.asarray(s["days"], dtype=np.float64)
    n = len(days)
    out = {name: np.full(n, np.nan) for name in NAMES}
    has = days > 0
    bg = fit.get("bgnbd")
    if bg is None or not has.any():
        return out
    bg = np.asarray(bg, dtype=np.float64)
    x, tx, T, m = (np.asarray(s[k], dtype=np.float64) for k in ("x", "t_x", "T", "m"))
    weeks = horizon_days / WEEK_DAYS
    expected = np.where(has, bgnbd_expected(bg, x, tx, T, weeks), np.nan)
    out["btyd_p_alive"] = np.where(has, bgnbd_p_alive(bg, x, tx, T), np.nan)
    out["btyd_expected_orders"] = expected
    gg = fit.get("gamma_gamma")
    if gg is not None:
        value = gamma_gamma_expected(np.asarray(gg, dtype=np.float64), x, m)
    else:
        value = np.full(n, np.nan)
    # no usable Gamma-Gamma fit: the customer's own mean day value, else the population's
    mean_day = np.asarray(s["value"], dtype=np.float64) / np.maximum(days, 1)
    fallback = np.where(has, mean_day, np.nan)
    value = np.where(np.isfinite(value) & has, value, fallback)
    out["btyd_expected_order_value"] = value
    out[BTYD_BASELINE] = expected * value
    return out


def day_summary(days: Timeline, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
    """Per customer, from purchase rows before ``as_of``: purchase ``days``, repeat days ``x``,
    weeks from the first to the last purchase day ``t_x`` and from the first to ``as_of`` ``T``,
    mean value ``m`` of the repeat days, total ``value`` and the value of the first day."""
    new = days.column("new")  # kept in sorted order (a prefix sum alone would drop it)
    hi = days.pos(as_of)
    start = days.start
    n_days = days.sum("new", start, hi)
    total = days.sum("gross", start, hi)
    # the first day ends at the second day's first row (or the block's end)
    idx = np.arange(len(new))
    nxt = np.where(new, idx, len(new))
    # next day-start strictly after each block's first row
    after = np.minimum.accumulate(nxt[::-1])[::-1] if len(nxt) else nxt
    probe = np.minimum(start + 1, len(new))
    second = np.where(start + 1 < days.end, np.append(after, len(new))[probe], days.end)
    second = np.minimum(second, days.end)
    first_end = np.minimum(second, hi)
    first_value = days.sum("gross", start, np.maximum(first_end, start))
    has = hi > start
    t = days.times
    first_day = np.where(has, t[np.minimum(start, len(t) - 1)] // DAY_US, 0) if len(t) else start
    last_day = np.where(has, t[np.maximum(hi - 1, 0)] // DAY_US, 0) if len(t) else start
    T_us = to_us(as_of)
    x = np.maximum(n_days - 1, 0)
    repeat_value = total - first_value
    return {
        "days": n_days,
        "x": x,
        "t_x": np.where(has, (last_day - first_day) / WEEK_DAYS, 0.0),
        "T": np.where(has, (T_us / DAY_US - first_day) / WEEK_DAYS, 0.0),
        "m": np.where(x > 0, repeat_value / np.maximum(x, 1), 0.0),
        "value": total,
        "first_value": np.where(has, first_value, np.nan),
        "second_start": np.where(second < hi, second, -1),
    }
