"""A generated retailer: seeded, realistic contract tables with a known latent truth.

:func:`make_retailer` simulates an e-commerce shop and returns the five contract tables
(``customers``, ``orders``, ``order_items``, ``events``, ``offers``) plus ``latent``, the hidden
per-customer truth that drove them, so that models and reports can be checked against it.

The story, per customer:

* a latent propensity ``z ~ N(0, 1)``, partly explained by what the shop can observe (app
  acquisition, a third-party affluence band, age) and partly not;
* a sign-up date (up to a year before ``start``, until about 60 days before ``end``) and a dropout
  time (exponential, a lower hazard for high ``z``) after which nothing more happens;
* orders from a Poisson process whose rate grows or fades with tenure (``vip_affinity``, higher
  for high ``z``), so some customers turn into VIPs during the period while others drift away;
  a welcome order soon after sign-up for many new customers; heavy-tailed baskets of 1-4 items,
  mostly from a favourite category, a premium tier more often for high ``z``;
* browsing sessions from a Poisson process of their own (app or web), each a ``session_start``
  followed by ``product_view`` events and some ``add_to_cart``; app rows carry ``duration_s``;
* CRM offers at random times, about 10 % held out as a control group that is not contacted;
  treated customers open, click and accept with probabilities rising with ``z`` and with their
  ``offer_affinity``; the true treatment effect per customer is ``latent.uplift``. Accepted offers
  produce an order at the time of acceptance.

Activity tables (orders, events, offers) cover ``[start, end)``; a customer who signed up before
``start`` has no rows from before it, as in an export. Everything is vectorised with NumPy; one
seed gives identical frames. Each part draws from its own random stream, so switching a table
off or adding messiness leaves the other tables unchanged.

Optional :class:`Messiness` dirties the ``orders`` table the way real exports are dirty (exact
duplicate rows, missing customer ids, float ids, return lines, mixed time-zone offsets) and
:attr:`Retailer.injected` counts exactly what was injected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vipml.errors import ConfigError

__all__ = ["EXPORTS", "Messiness", "Retailer", "make_retailer", "write_export"]

TABLE_NAMES = ("customers", "orders", "order_items", "events", "offers")

CATEGORIES = ("electronics", "fashion", "beauty", "home", "sports", "food")
TIERS = ("basic", "premium")
REGIONS = ("seoul", "gyeonggi", "busan", "incheon", "daegu", "other")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
ACQUISITION_CHANNELS = ("organic", "paid_search", "social", "referral", "app")
AFFLUENCE = ("low", "mid", "high")
ORDER_CHANNELS = ("web", "app", "store")
STATUSES = ("completed", "returned", "cancelled")
EVENT_TYPES = ("session_start", "product_view", "add_to_cart")
SESSION_CHANNELS = ("web", "app")
OFFER_TYPES = ("upsell", "cross_sell", "bundle")
OFFER_CHANNELS = ("email", "push", "sms", "kakao")
GROUPS = ("treatment", "control")

_DAY = 86_400
_YEAR = 31_557_600  # 365.25 days, in seconds
_PRODUCTS_PER_TIER = 40
_MAX_GROWTH = 2.0  # a customer's order and session rates grow at most e**2 (7.4)-fold

# Population shares of the observable attributes and their effect on the latent propensity.
_REGION_P = (0.30, 0.25, 0.12, 0.10, 0.08, 0.15)
_AGE_P = (0.15, 0.30, 0.25, 0.18, 0.12)
_AGE_EFFECT = (-0.3, 0.0, 0.2, 0.2, -0.1)
_ACQ_P = (0.35, 0.20, 0.15, 0.10, 0.20)
_ACQ_EFFECT = (0.1, -0.3, -0.2, 0.2, 0.5)
_AFFLUENCE_P = (0.30, 0.50, 0.20)
_AFFLUENCE_EFFECT = (-0.5, 0.0, 0.8)
_OBSERVED_R2 = 0.35  # share of the propensity's variance the attributes explain

_FAVOURITE_P = (0.15, 0.25, 0.15, 0.15, 0.12, 0.18)
_BASIC_PRICE = (120.0, 45.0, 25.0, 60.0, 50.0, 12.0)  # median basic price per category
_PREMIUM_FACTOR = 3.5

_OFFER_TYPE_P = (0.45, 0.35, 0.20)
_OFFER_CHANNEL_P = (0.35, 0.30, 0.10, 0.25)
_OFFER_CHANNEL_COST = (0.5, 0.7, 2.0, 1.2)  # plus U(0, 1)
_OFFER_CHANNEL_OPEN = (-0.3, 0.0, 0.3, 0.5)
_OFFER_CHANNEL_ORDER = (0, 1, 0, 1)  # accepted via email/sms -> web order, push/kakao -> app
_DISCOUNTS = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
_DISCOUNT_P = (0.15, 0.30, 0.20, 0.20, 0.10, 0.05)
_TYPE_BASE = (0.0, -0.3, -0.2)  # buys anyway (both groups)
_TYPE_CLICK = (0.0, -0.2, 0.1)
_TYPE_ACCEPT = (0.2, -0.3, 0.0)
_CONTROL_SHARE = 0.10
_ACCEPT_WINDOW = 14 * _DAY

_TZ_OFFSETS = (9 * 3600, 0, -5 * 3600, 5 * 3600 + 1800)
_TZ_SUFFIXES = ("+09:00", "Z", "-05:00", "+05:30")
_TZ_P = (0.50, 0.25, 0.15, 0.10)


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class Messiness:
    """Switches that dirty the generated ``orders`` table like a real export.

    Fractions are of the clean order rows. The injected rows are disjoint: a return line never
    loses its customer id or gets duplicated, a row with a missing id is never duplicated.

    Parameters
    ----------
    duplicates : float
        Fraction of order rows appended a second time, as exact copies.
    missing_ids : float
        Fraction of order rows whose ``customer_id`` is set missing.
    float_ids : bool
        Store ``orders.customer_id`` as float64 (``100123.0``), as spreadsheets do.
    returns : float
        Fraction of orders that get a return line: a new row with a new ``order_id``, the same
        customer, 1-30 days later (still before ``end``), ``status="returned"`` and a negative
        amount of minus part or all of the original.
    mixed_timezones : bool
        ``orders.ordered_at`` as ISO-8601 strings with varied UTC offsets (``+09:00``, ``Z``,
        ``-05:00``, ``+05:30``) that denote the same instants.
    """

    duplicates: float = 0.0
    missing_ids: float = 0.0
    float_ids: bool = False
    returns: float = 0.0
    mixed_timezones: bool = False

    def __post_init__(self) -> None:
        for name in ("duplicates", "missing_ids", "returns"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
                raise ConfigError(f"Messiness.{name} must be a fraction in [0, 1), got {value!r}")

    @classmethod
    def all(cls) -> Messiness:
        """A moderately messy preset with every switch on.

        Returns
        -------
        Messiness
            1 % duplicate rows, 0.5 % missing ids, float ids, 3 % return lines, mixed offsets.
        """
        return cls(
            duplicates=0.01, missing_ids=0.005, float_ids=True, returns=0.03, mixed_timezones=True
        )


@dataclass(frozen=True, eq=False)
class Retailer:
    """A generated retailer: the contract tables, the latent truth and the period.

    Attributes
    ----------
    customers, orders : pandas.DataFrame
        Always present.
    order_items, events, offers : pandas.DataFrame or None
        ``None`` when switched off in :func:`make_retailer`.
    latent : pandas.DataFrame
        The hidden truth, one row per customer, in ``customers`` order: ``customer_id``;
        ``propensity`` (the latent ``z``, standard normal); ``offer_affinity`` (responsiveness
        to offers, standard normal, correlated with ``z``); ``vip_affinity`` (yearly log-growth of
        the order and session rates with tenure; the rise is capped at 7.4-fold); ``uplift`` (how
        much delivering an offer raises an active customer's chance to accept, averaged over the
        offer mix); ``churn_at`` (dropout time, often after ``end``); ``order_rate`` and
        ``session_rate`` (per year, at sign-up); ``premium_share``; ``app_preference``;
        ``favourite_category``.
    start, end : pandas.Timestamp
        The period ``[start, end)`` the activity tables cover, tz-aware UTC.
    injected : dict of str to int
        Rows injected by :class:`Messiness`: ``duplicates``, ``missing_ids``, ``returns``.
    messiness : Messiness or None
        The switches used.
    """

    customers: pd.DataFrame
    orders: pd.DataFrame
    order_items: pd.DataFrame | None
    events: pd.DataFrame | None
    offers: pd.DataFrame | None
    latent: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    injected: dict[str, int] = field(
        default_factory=lambda: {"duplicates": 0, "missing_ids": 0, "returns": 0}
    )
    messiness: Messiness | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """The contract tables that were generated.

        Returns
        -------
        dict of str to pandas.DataFrame
            Keyed by table name, in contract order, without the switched-off tables.
        """
        out = {name: getattr(self, name) for name in TABLE_NAMES}
        return {name: frame for name, frame in out.items() if frame is not None}

    def to_dir(self, path: str | Path, format: Literal["parquet", "csv"] = "parquet") -> Path:
        """Write one file per table, and ``latent.parquet``, into a folder.

        Parameters
        ----------
        path : str or pathlib.Path
            The folder; created when missing. Existing files of the same names are replaced.
        format : {"parquet", "csv"}
            File format of the contract tables; the latent truth is always Parquet.

        Returns
        -------
        pathlib.Path
            The folder.
        """
        if format not in ("parquet", "csv"):
            raise ConfigError(f"format must be 'parquet' or 'csv', got {format!r}")
        folder = Path(path).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in self.tables().items():
            if format == "parquet":
                frame.to_parquet(folder / f"{name}.parquet", index=False)
            else:
                frame.to_csv(folder / f"{name}.csv", index=False)
        self.latent.to_parquet(folder / "latent.parquet", index=False)
        return folder


# --------------------------------------------------------------------------- generator


def make_retailer(
    n_customers: int = 5_000,
    *,
    seed: int = 0,
    start: str | pd.Timestamp = "2023-01-01",
    end: str | pd.Timestamp = "2025-01-01",
    events: bool = True,
    offers: bool = True,
    items: bool = True,
    messy: Messiness | None = None,
    orders_per_customer_year: float = 2.0,
    sessions_per_customer_year: float = 6.0,
    offers_per_customer_year: float = 3.0,
    churn_per_year: float = 0.35,
    consents: bool = True,
) -> Retailer:
    """Generate a seeded retailer whose tables follow the data contract.

    Parameters
    ----------
    n_customers : int
        Number of customers (ids ``"100001"`` onwards).
    seed : int
        Seed of :func:`numpy.random.default_rng`; the same arguments give identical frames.
    start, end : str or pandas.Timestamp
        The period of activity ``[start, end)``; naive values are read as UTC.
    events, offers, items : bool
        Whether to return the ``events``, ``offers`` and ``order_items`` tables. Offers and items
        are simulated either way (they shape the orders), so the other tables do not change.
    messy : Messiness, optional
        Dirt to inject into ``orders``; see :class:`Messiness`. ``None`` gives clean data.
    orders_per_customer_year : float
        Order rate of a typical active customer at sign-up; scales the order volume.
    sessions_per_customer_year : float
        Browsing-session rate of a typical active customer; scales the event volume (each session
        has about four events).
    offers_per_customer_year : float
        Offers sent per customer and year.
    churn_per_year : float
        Dropout hazard of a typical customer, per year.
    consents : bool
        Whether ``customers`` carries marketing consents (``consent_email``, ``consent_sms``,
        ``consent_push``, ``consent_kakao``, ``consent_night``), drawn from their own seeded
        stream (push more often for app users), so the other tables do not change.

    Returns
    -------
    Retailer
        The tables, the latent truth and what was injected.

    Raises
    ------
    ConfigError
        On a negative size or rate, or ``end`` not after ``start``.

    Examples
    --------
    >>> shop = make_retailer(1_000, seed=1, messy=Messiness.all())
    >>> sorted(shop.tables())
    ['customers', 'events', 'offers', 'order_items', 'orders']
    """
    n = int(n_customers)
    if n < 0:
        raise ConfigError(f"n_customers must be >= 0, got {n_customers!r}")
    rates = {
        "orders_per_customer_year": orders_per_customer_year,
        "sessions_per_customer_year": sessions_per_customer_year,
        "offers_per_customer_year": offers_per_customer_year,
        "churn_per_year": churn_per_year,
    }
    for name, value in rates.items():
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    t0, t1 = _utc(start), _utc(end)
    if t1 <= t0:
        raise ConfigError(f"end ({t1}) must be after start ({t0})")
    start_s, end_s = _seconds(t0), _seconds(t1)

    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)]
    rng_cust, rng_offer, rng_order, rng_item, rng_money, rng_event, rng_mess = streams

    cust = _simulate_customers(rng_cust, n, start_s, end_s, orders_per_customer_year,
                               sessions_per_customer_year, churn_per_year)  # fmt: skip
    off = _simulate_offers(rng_offer, cust, end_s, offers_per_customer_year)
    orders_raw = _simulate_orders(rng_order, cust, off)
    items_raw = _simulate_items(rng_item, cust, orders_raw)
    discount, amount = _order_money(rng_money, cust, orders_raw, items_raw)
    orders_raw["discount"], orders_raw["amount"] = discount, amount

    customer_ids = _ids(np.arange(1, n + 1, dtype=np.int64) + 100_000, "", 0)
    mess = _mess_orders(rng_mess, orders_raw, messy, end_s)
    order_width = max(7, len(str(orders_raw["who"].size)))  # the same with or without returns
    order_ids = _ids(np.arange(1, mess["n_numbers"] + 1, dtype=np.int64), "O", order_width)
    del orders_raw, discount, amount  # large intermediates go as soon as their frame exists

    orders = _orders_frame(mess, customer_ids, order_ids, messy)
    injected = mess.pop("injected")
    del mess
    order_items = _items_frame(items_raw, order_ids) if items else None
    del items_raw, order_ids
    offers_frame = _offers_frame(off, customer_ids) if offers else None
    del off
    events_frame = None
    if events:
        events_frame = _events_frame(_simulate_events(rng_event, cust), customer_ids)

    return Retailer(
        customers=_with_consents(_customers_frame(cust, customer_ids), cust, seed)
        if consents
        else _customers_frame(cust, customer_ids),
        orders=orders,
        order_items=order_items,
        events=events_frame,
        offers=offers_frame,
        latent=_latent_frame(cust, customer_ids),
        start=t0,
        end=t1,
        injected=injected,
        messiness=messy,
    )


# --------------------------------------------------------------------------- large, to Parquet

_PREFIXED_IDS = {"orders": ["order_id"], "order_items": ["order_id"], "events": ["session_id"],
                 "offers": ["offer_id"]}  # fmt: skip


def write_retailer(
    out: str | Path,
    n_customers: int,
    *,
    seed: int = 0,
    chunk_customers: int = 100_000,
    progress: bool = False,
    **rates: object,
) -> dict[str, int]:
    """Generate a large retailer straight to Parquet datasets, one chunk of customers at a time,
    so memory holds one chunk whatever ``n_customers`` is (100M order rows need no more than
    the default 100,000-customer chunk does).

    Each chunk is :func:`make_retailer` with its own seed (from ``seed`` and the chunk's number)
    and the other keyword arguments (``orders_per_customer_year``, ``sessions_per_customer_year``,
    ``events``, ``items``, ``offers``, ``start``, ``end``...; no ``messy``): customer ids run on
    from ``"100001"`` across chunks, order, session and offer ids get the chunk's number as a
    prefix (``"c0003-O0000001"``). ``out/<table>/part-<chunk>.parquet`` for each table, written
    into a temporary folder beside ``out`` and moved into place when complete.

    Denser histories than the default: ``orders_per_customer_year=12`` gives about 20 order rows
    per customer over the default two years (5M customers, about 100M order rows).

    Returns
    -------
    dict
        Rows written per table.
    """
    import shutil
    import tempfile

    import pyarrow.parquet as pq

    from vipml.io.write import replace_dir
    from vipml.progress import progress as bar

    if "messy" in rates:
        raise ConfigError("write_retailer writes clean tables: leave out messy")
    n = int(n_customers)
    size = int(chunk_customers)
    if n < 0 or size < 1:
        raise ConfigError(f"n_customers must be >= 0 and chunk_customers >= 1, got {n}, {size}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        chunks = range(-(-n // size))
        for c in bar(chunks, label="generating", enabled=progress):
            first = c * size
            m = min(size, n - first)
            chunk_seed = int(np.random.SeedSequence([int(seed), c]).generate_state(1)[0])
            shop = make_retailer(m, seed=chunk_seed, **rates)  # type: ignore[arg-type]
            for name, frame in shop.tables().items():
                table = pa.Table.from_pandas(frame, preserve_index=False)
                table = _shift_ids(table, name, first, c)
                (tmp / name).mkdir(exist_ok=True)
                pq.write_table(table, tmp / name / f"part-{c:05d}.parquet")
                counts[name] = counts.get(name, 0) + table.num_rows
            del shop
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return counts


def _shift_ids(table: pa.Table, name: str, first: int, chunk: int) -> pa.Table:
    """A chunk's ids made unique over the whole data set (see :func:`write_retailer`)."""
    if "customer_id" in table.column_names:
        i = table.schema.get_field_index("customer_id")
        ids = pc.add(pc.cast(table["customer_id"], pa.int64()), first)
        table = table.set_column(i, "customer_id", pc.cast(ids, table.schema.field(i).type))
    prefix = pa.scalar(f"c{chunk:04d}-", pa.large_string())
    for col in _PREFIXED_IDS.get(name, []):
        if col in table.column_names:
            i = table.schema.get_field_index(col)
            kind = table.schema.field(i).type
            joined = pc.binary_join_element_wise(
                prefix, pc.cast(table[col], pa.large_string()), pa.scalar("", pa.large_string())
            )
            table = table.set_column(i, col, pc.cast(joined, kind))
    return table


# --------------------------------------------------------------------------- customers


def _simulate_customers(
    rng: np.random.Generator,
    n: int,
    start_s: int,
    end_s: int,
    order_rate: float,
    session_rate: float,
    churn: float,
) -> dict[str, np.ndarray | int]:
    lo = start_s - 365 * _DAY
    hi = max(end_s - 60 * _DAY, lo + _DAY)
    signup = rng.integers(lo, min(hi, end_s), n, dtype=np.int64)
    region = rng.choice(len(REGIONS), n, p=_REGION_P)
    age = rng.choice(len(AGE_BANDS), n, p=_AGE_P)
    acq = rng.choice(len(ACQUISITION_CHANNELS), n, p=_ACQ_P)
    affluence = rng.choice(len(AFFLUENCE), n, p=_AFFLUENCE_P)

    observed = (
        np.asarray(_AGE_EFFECT)[age]
        + np.asarray(_ACQ_EFFECT)[acq]
        + np.asarray(_AFFLUENCE_EFFECT)[affluence]
    )
    mean, var = 0.0, 0.0
    for p, e in ((_AGE_P, _AGE_EFFECT), (_ACQ_P, _ACQ_EFFECT), (_AFFLUENCE_P, _AFFLUENCE_EFFECT)):
        m = float(np.dot(p, e))
        mean += m
        var += float(np.dot(p, (np.asarray(e) - m) ** 2))
    z = math.sqrt(_OBSERVED_R2) * (observed - mean) / math.sqrt(var) + math.sqrt(
        1 - _OBSERVED_R2
    ) * rng.standard_normal(n)
    offer_affinity = 0.5 * z + math.sqrt(0.75) * rng.standard_normal(n)
    growth = np.clip(0.35 * z - 0.15 + 0.4 * rng.standard_normal(n), -1.5, 1.5)
    life = rng.exponential(1.0, n) / np.maximum(churn * np.exp(-0.7 * z), 1e-12)
    churn_s = signup + np.minimum(life * _YEAR, 200 * _YEAR).astype(np.int64)
    favourite = rng.choice(len(CATEGORIES), n, p=_FAVOURITE_P)
    app_pref = _sigmoid(-0.6 + 0.5 * z + 1.3 * (acq == ACQUISITION_CHANNELS.index("app")))

    win_start = np.maximum(signup, start_s)
    win_end = np.minimum(churn_s, end_s)
    return {
        "n": n,
        "start_s": start_s,
        "end_s": end_s,
        "signup": signup,
        "region": region,
        "age": age,
        "acq": acq,
        "affluence": affluence,
        "z": z,
        "offer_affinity": offer_affinity,
        "growth": growth,
        "churn": churn_s,
        "favourite": favourite,
        "premium_share": _sigmoid(-1.9 + 1.0 * z),
        "app_pref": app_pref,
        "order_rate": order_rate * np.exp(0.6 * z - 0.18),
        "session_rate": session_rate * np.exp(0.5 * z - 0.125),
        "win_start": win_start,
        "win_end": win_end,
    }


def _customers_frame(cust: dict, ids: pa.Array) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": _str(ids),
            "signup_at": _ts(cust["signup"]),
            "region": _text(cust["region"], REGIONS),
            "age_band": _text(cust["age"], AGE_BANDS),
            "acquisition_channel": _text(cust["acq"], ACQUISITION_CHANNELS),
            "tp_affluence": _text(cust["affluence"], AFFLUENCE),
        }
    )


_CONSENT_P = {"email": 0.85, "sms": 0.45, "kakao": 0.7, "night": 0.15}


def _with_consents(frame: pd.DataFrame, cust: dict, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 17])
    n = len(frame)
    draw = rng.random((n, 5))
    frame["consent_email"] = draw[:, 0] < _CONSENT_P["email"]
    frame["consent_sms"] = draw[:, 1] < _CONSENT_P["sms"]
    frame["consent_push"] = draw[:, 2] < 0.25 + 0.6 * np.asarray(cust["app_pref"])
    frame["consent_kakao"] = draw[:, 3] < _CONSENT_P["kakao"]
    frame["consent_night"] = draw[:, 4] < _CONSENT_P["night"]
    return frame


def _latent_frame(cust: dict, ids: pa.Array) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": _str(ids),
            "propensity": cust["z"],
            "offer_affinity": cust["offer_affinity"],
            "vip_affinity": cust["growth"],
            "uplift": _expected_uplift(cust["z"], cust["offer_affinity"]),
            "churn_at": _ts(cust["churn"]),
            "order_rate": cust["order_rate"],
            "session_rate": cust["session_rate"],
            "premium_share": cust["premium_share"],
            "app_preference": cust["app_pref"],
            "favourite_category": _text(cust["favourite"], CATEGORIES),
        }
    )


# --------------------------------------------------------------------------- processes


def _poisson_times(
    rng: np.random.Generator,
    rate: np.ndarray,
    growth: np.ndarray,
    tenure0: np.ndarray,
    span: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Event times of independent Poisson processes whose rate grows or fades with tenure.

    Process ``i`` has rate ``rate[i] * exp(min(growth[i] * tenure, _MAX_GROWTH))`` over a window
    that starts at tenure ``tenure0[i]`` and lasts ``span[i]`` (years): growth stops once the
    rate has risen ``exp(_MAX_GROWTH)``-fold. Returns the process index of each event and its
    offset (years) from the window's start, by inverting the cumulative intensity.
    """
    # Tenure at which growth saturates (never, for fading processes).
    with np.errstate(divide="ignore"):
        saturation = np.where(growth > 0, _MAX_GROWTH / np.maximum(growth, 1e-300), np.inf)
    grow_span = np.clip(saturation - tenure0, 0.0, span)
    idx1, off1 = _poisson_segment(rng, rate * np.exp(growth * tenure0), growth, grow_span)
    flat_rate = rate * np.exp(np.minimum(growth * (tenure0 + grow_span), _MAX_GROWTH))
    idx2, off2 = _poisson_segment(rng, flat_rate, np.zeros_like(growth), span - grow_span)
    return np.concatenate([idx1, idx2]), np.concatenate([off1, off2 + grow_span[idx2]])


def _poisson_segment(
    rng: np.random.Generator, rate0: np.ndarray, growth: np.ndarray, span: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson processes with rate ``rate0 * exp(growth * t)`` on ``[0, span)`` (years)."""
    small = np.abs(growth) < 1e-9
    g = np.where(small, 1.0, growth)
    scale = np.where(small, span, np.expm1(growth * span) / g)
    counts = rng.poisson(np.maximum(rate0 * scale, 0.0))
    idx = np.repeat(np.arange(rate0.size), counts)
    u = rng.random(idx.size)
    gi, si = growth[idx], span[idx]
    offset = np.where(small[idx], u * si, np.log1p(u * np.expm1(gi * si)) / g[idx])
    return idx, np.clip(offset, 0.0, si)


def _window(cust: dict) -> tuple[np.ndarray, np.ndarray]:
    span = np.maximum(cust["win_end"] - cust["win_start"], 0) / _YEAR
    tenure0 = (cust["win_start"] - cust["signup"]) / _YEAR
    return tenure0, span


def _at(cust: dict, idx: np.ndarray, offset_years: np.ndarray) -> np.ndarray:
    """Whole seconds inside each customer's active window."""
    t = cust["win_start"][idx] + (offset_years * _YEAR).astype(np.int64)
    return np.minimum(t, cust["win_end"][idx] - 1)


def _simulate_offers(
    rng: np.random.Generator, cust: dict, end_s: int, per_year: float
) -> dict[str, np.ndarray]:
    n = cust["n"]
    z, oa = cust["z"], cust["offer_affinity"]
    span = (end_s - cust["win_start"]) / _YEAR  # sent whether or not the customer is still active
    counts = rng.poisson(per_year * span)
    who = np.repeat(np.arange(n), counts)
    m = who.size
    sent = cust["win_start"][who] + (rng.random(m) * (end_s - cust["win_start"][who])).astype(
        np.int64
    )
    kind = rng.choice(3, m, p=_OFFER_TYPE_P)
    channel = rng.choice(4, m, p=_OFFER_CHANNEL_P)
    discount = np.asarray(_DISCOUNTS)[rng.choice(len(_DISCOUNTS), m, p=_DISCOUNT_P)]
    control = rng.random(m) < _CONTROL_SHARE
    other = (cust["favourite"][who] + 1 + rng.integers(0, len(CATEGORIES) - 1, m)) % len(CATEGORIES)
    category = np.where(kind == OFFER_TYPES.index("cross_sell"), other, cust["favourite"][who])
    cost = np.round(np.asarray(_OFFER_CHANNEL_COST)[channel] + rng.random(m), 2)

    zi, oai = z[who], oa[who]
    p_open, p_click, p_accept, p_base = _offer_probabilities(zi, oai, kind, channel, discount)
    active = sent < cust["churn"][who]
    bound = np.minimum(cust["churn"][who], end_s)
    opened = ~control & active & (rng.random(m) < p_open)
    clicked = opened & (rng.random(m) < p_click)
    via_click = clicked & (rng.random(m) < p_accept)
    anyway = active & (rng.random(m) < p_base)

    opened_at = sent + 60 + np.minimum(rng.exponential(5 * 3600, m), 3 * _DAY).astype(np.int64)
    clicked_at = opened_at + 5 + np.minimum(rng.exponential(900, m), _DAY).astype(np.int64)
    room = sent + _ACCEPT_WINDOW - 1 - clicked_at
    accepted_click = clicked_at + np.minimum(rng.exponential(_DAY, m), room).astype(np.int64)
    accepted_base = sent + (rng.random(m) * _ACCEPT_WINDOW).astype(np.int64)
    # Whoever clicked accepts (if at all) after the click, whichever way they were persuaded.
    accepted_at = np.where(clicked, accepted_click, accepted_base)

    opened &= opened_at < end_s
    clicked &= opened & (clicked_at < end_s)
    via_click &= clicked
    accepted = (via_click | anyway) & (accepted_at < bound)

    order = np.argsort(sent, kind="stable")
    out = {
        "who": who,
        "sent": sent,
        "kind": kind,
        "channel": channel,
        "discount": discount,
        "control": control,
        "category": category,
        "cost": cost,
        "opened_at": np.where(opened, opened_at, _NAT),
        "clicked_at": np.where(clicked, clicked_at, _NAT),
        "accepted_at": np.where(accepted, accepted_at, _NAT),
        "accepted": accepted,
    }
    return {k: v[order] for k, v in out.items()}


def _offer_probabilities(
    z: np.ndarray,
    oa: np.ndarray,
    kind: np.ndarray | int,
    channel: np.ndarray | int,
    discount: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Open, click-given-open, accept-given-click and buy-anyway probabilities."""
    p_open = _sigmoid(-0.5 + 0.45 * z + 0.3 * oa + np.asarray(_OFFER_CHANNEL_OPEN)[channel])
    p_click = _sigmoid(-1.0 + 0.4 * z + 0.6 * oa + np.asarray(_TYPE_CLICK)[kind])
    p_accept = _sigmoid(
        -0.5 + 0.5 * z + 0.5 * oa + 0.05 * (discount - 15.0) + np.asarray(_TYPE_ACCEPT)[kind]
    )
    p_base = _sigmoid(-3.4 + 0.8 * z + np.asarray(_TYPE_BASE)[kind])
    return p_open, p_click, p_accept, p_base


def _expected_uplift(z: np.ndarray, oa: np.ndarray) -> np.ndarray:
    """Increase of an active customer's acceptance probability when an offer is delivered,
    averaged over the mix of offer types, channels and discounts."""
    open_mean = np.zeros_like(z)
    for ch, w in enumerate(_OFFER_CHANNEL_P):
        open_mean += w * _offer_probabilities(z, oa, 0, ch, 15.0)[0]
    total = np.zeros_like(z)
    for kind, wk in enumerate(_OFFER_TYPE_P):
        for disc, wd in zip(_DISCOUNTS, _DISCOUNT_P, strict=True):
            _, p_click, p_accept, p_base = _offer_probabilities(z, oa, kind, 0, disc)
            total += wk * wd * (1.0 - p_base) * p_click * p_accept
    return open_mean * total


def _simulate_orders(rng: np.random.Generator, cust: dict, off: dict) -> dict[str, np.ndarray]:
    """Orders (customer, time, channel, status, offer terms), sorted by time."""
    z = cust["z"]
    tenure0, span = _window(cust)
    who_r, off_r = _poisson_times(rng, cust["order_rate"], cust["growth"], tenure0, span)
    t_r = _at(cust, who_r, off_r)

    new = (cust["signup"] >= cust["start_s"]) & (rng.random(cust["n"]) < _sigmoid(0.6 * z))
    delay = 600 + rng.exponential(1.5 * _DAY, cust["n"]).astype(np.int64)
    welcome = new & (cust["signup"] + delay < cust["win_end"])
    who_w = np.flatnonzero(welcome)
    t_w = (cust["signup"] + delay)[who_w]

    acc = np.flatnonzero(off["accepted"])
    who_o, t_o = off["who"][acc], off["accepted_at"][acc]

    who = np.concatenate([who_r, who_w, who_o])
    t = np.concatenate([t_r, t_w, t_o])
    offer = np.concatenate([np.full(who_r.size + who_w.size, -1), acc])
    order = np.lexsort((who, t))
    who, t, offer = who[order], t[order], offer[order]

    n = who.size
    linked = offer >= 0
    kind = np.where(linked, off["kind"][offer], -1)
    category = np.where(linked, off["category"][offer], -1)
    offer_discount = np.where(linked, off["discount"][offer], 0.0)
    u = rng.random(n)
    channel = np.where(u < 0.12, 2, np.where(u < 0.12 + 0.88 * cust["app_pref"][who], 1, 0))
    channel = np.where(linked, np.asarray(_OFFER_CHANNEL_ORDER)[off["channel"][offer]], channel)
    u = rng.random(n)
    status = np.where(u < 0.03, 1, np.where(u < 0.05, 2, 0))
    return {
        "who": who,
        "t": t,
        "linked": linked,
        "kind": kind,
        "offer_category": category,
        "offer_discount": offer_discount,
        "channel": channel,
        "status": status,
    }


def _simulate_items(rng: np.random.Generator, cust: dict, orders: dict) -> dict[str, np.ndarray]:
    """Order lines, grouped by order: 1-4 items, mostly from the favourite category."""
    who, kind, offer_cat = orders["who"], orders["kind"], orders["offer_category"]
    n_orders = who.size
    n_items = 1 + rng.binomial(3, _sigmoid(-1.3 + 0.5 * cust["z"][who]))
    bundle = kind == OFFER_TYPES.index("bundle")
    n_items[bundle] = 2 + rng.binomial(2, 0.5, int(bundle.sum()))

    line_order = np.repeat(np.arange(n_orders), n_items)
    m = line_order.size
    first = np.zeros(m, dtype=bool)
    first[np.cumsum(n_items) - n_items] = True
    c = who[line_order]
    fav = cust["favourite"][c]
    other = (fav + 1 + rng.integers(0, len(CATEGORIES) - 1, m)) % len(CATEGORIES)
    category = np.where(rng.random(m) < 0.65, fav, other)
    lead = first & orders["linked"][line_order]
    category[lead] = offer_cat[line_order][lead]
    premium = rng.random(m) < cust["premium_share"][c]
    premium |= lead & (kind[line_order] == OFFER_TYPES.index("upsell"))
    zc = cust["z"][c]
    rank = (_sigmoid(0.6 * zc + 1.2 * rng.standard_normal(m)) * _PRODUCTS_PER_TIER).astype(np.int64)
    rank = np.minimum(rank, _PRODUCTS_PER_TIER - 1)
    product = (category * 2 + premium) * _PRODUCTS_PER_TIER + rank
    # A product appears once per order: a repeat becomes the next product of its shelf.
    for _ in range(_PRODUCTS_PER_TIER):
        repeat = np.zeros(m, dtype=bool)
        for lag in range(1, 4):
            repeat[lag:] |= (line_order[lag:] == line_order[:-lag]) & (
                product[lag:] == product[:-lag]
            )
        if not repeat.any():
            break
        rank[repeat] = (rank[repeat] + 1) % _PRODUCTS_PER_TIER
        product[repeat] = (category[repeat] * 2 + premium[repeat]) * _PRODUCTS_PER_TIER + rank[
            repeat
        ]
    food = category == CATEGORIES.index("food")
    quantity = 1 + rng.poisson(np.where(food, 1.0, 0.2))
    return {
        "order": line_order,
        "product": product,
        "quantity": quantity.astype(np.int64),
        "category": category,
        "premium": premium,
    }


def _catalogue(rng: np.random.Generator) -> np.ndarray:
    """List prices of every product, ascending within each category and tier, ending in .99."""
    base = np.repeat(np.asarray(_BASIC_PRICE), 2 * _PRODUCTS_PER_TIER)
    tier = np.tile(np.repeat([1.0, _PREMIUM_FACTOR], _PRODUCTS_PER_TIER), len(CATEGORIES))
    price = base * tier * np.exp(0.45 * rng.standard_normal(base.size))
    price = np.sort(price.reshape(-1, _PRODUCTS_PER_TIER), axis=1).ravel()
    return np.maximum(np.round(price) - 0.01, 0.99)


def _order_money(
    rng: np.random.Generator, cust: dict, orders: dict, items: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Prices the lines; returns discount and amount per order (basket value less discount)."""
    prices = _catalogue(rng)
    items["unit_price"] = prices[items["product"]]
    n_orders = orders["who"].size
    gross = np.bincount(
        items["order"], weights=items["quantity"] * items["unit_price"], minlength=n_orders
    )
    gross = np.round(gross, 2)
    oa = cust["offer_affinity"][orders["who"]]
    discounted = rng.random(n_orders) < _sigmoid(-2.0 + 0.4 * oa)
    pct = np.where(discounted, rng.uniform(5.0, 25.0, n_orders), 0.0)
    pct = np.where(orders["linked"], orders["offer_discount"], pct)
    discount = np.round(gross * pct / 100.0, 2)
    return discount, np.round(gross - discount, 2)


# --------------------------------------------------------------------------- orders + mess


def _mess_orders(rng: np.random.Generator, raw: dict, messy: Messiness | None, end_s: int) -> dict:
    """Order rows as arrays, after returns and missing ids; duplicates are row positions."""
    n = raw["who"].size
    rows = {
        "number": np.arange(1, n + 1, dtype=np.int64),
        "who": raw["who"].astype(np.int64),
        "t": raw["t"],
        "amount": raw["amount"],
        "discount": raw["discount"],
        "channel": raw["channel"],
        "status": raw["status"],
    }
    injected = {"duplicates": 0, "missing_ids": 0, "returns": 0}
    r_ret, r_missing, r_dup, r_tz = rng.spawn(4)
    is_return = np.zeros(n, dtype=bool)
    if messy is not None and messy.returns > 0 and n:
        room = end_s - 1 - rows["t"]
        eligible = np.flatnonzero((rows["status"] == 0) & (room >= _DAY + 1))
        k = min(round(messy.returns * n), eligible.size)
        pick = np.sort(r_ret.choice(eligible, k, replace=False))
        span = np.minimum(30 * _DAY, room[pick]) - _DAY
        later = rows["t"][pick] + _DAY + (r_ret.random(k) * span).astype(np.int64)
        share = np.where(r_ret.random(k) < 0.6, 1.0, r_ret.uniform(0.3, 0.9, k))
        back = np.minimum(-np.round(rows["amount"][pick] * share, 2), -0.01)
        extra = {
            "number": np.arange(n + 1, n + k + 1, dtype=np.int64),
            "who": rows["who"][pick],
            "t": later,
            "amount": back,
            "discount": np.zeros(k),
            "channel": rows["channel"][pick],
            "status": np.full(k, STATUSES.index("returned")),
        }
        rows = {key: np.concatenate([rows[key], extra[key]]) for key in rows}
        is_return = np.concatenate([is_return, np.ones(k, dtype=bool)])
        order = np.lexsort((rows["number"], rows["t"]))
        rows = {key: v[order] for key, v in rows.items()}
        is_return = is_return[order]
        injected["returns"] = k
    total = rows["number"].size
    missing = np.zeros(total, dtype=bool)
    if messy is not None and messy.missing_ids > 0 and n:
        base = np.flatnonzero(~is_return)
        k = min(round(messy.missing_ids * n), base.size)
        missing[r_missing.choice(base, k, replace=False)] = True
        rows["who"][missing] = -1
        injected["missing_ids"] = k
    dup = np.empty(0, dtype=np.int64)
    if messy is not None and messy.duplicates > 0 and n:
        base = np.flatnonzero(~is_return & ~missing)
        k = min(round(messy.duplicates * n), base.size)
        dup = np.sort(r_dup.choice(base, k, replace=False))
        injected["duplicates"] = k
    rows_tz = np.zeros(total, dtype=np.int64)
    if messy is not None and messy.mixed_timezones:
        rows_tz = r_tz.choice(len(_TZ_OFFSETS), total, p=_TZ_P)
    return {
        "rows": rows,
        "dup": dup,
        "tz": rows_tz,
        "injected": injected,
        "n_numbers": total,
    }


def _orders_frame(
    mess: dict, customer_ids: pa.Array, order_ids: pa.Array, messy: Messiness | None
) -> pd.DataFrame:
    rows = mess["rows"]
    who = rows["who"]
    if messy is not None and messy.float_ids:
        cid: object = np.where(who >= 0, who + 100_001, np.nan).astype(np.float64)
    else:
        cid = _str(customer_ids.take(pa.array(who, mask=who < 0)))
    if messy is not None and messy.mixed_timezones:
        offset = np.asarray(_TZ_OFFSETS, dtype=np.int64)[mess["tz"]]
        local = np.datetime_as_string((rows["t"] + offset).astype("datetime64[s]"), unit="s")
        suffix = pa.array(_TZ_SUFFIXES, pa.large_string()).take(pa.array(mess["tz"]))
        ordered_at: object = _str(
            pc.binary_join_element_wise(
                pa.array(local, pa.large_string()), suffix, pa.scalar("", pa.large_string())
            )
        )
    else:
        ordered_at = _ts(rows["t"])
    frame = pd.DataFrame(
        {
            "order_id": _str(order_ids.take(pa.array(rows["number"] - 1))),
            "customer_id": cid,
            "ordered_at": ordered_at,
            "amount": rows["amount"].astype(np.float64),
            "discount": rows["discount"].astype(np.float64),
            "channel": _text(rows["channel"], ORDER_CHANNELS),
            "status": _text(rows["status"], STATUSES),
        }
    )
    if mess["dup"].size:
        frame = pd.concat([frame, frame.iloc[mess["dup"]]], ignore_index=True)
    return frame


def _items_frame(items: dict, order_ids: pa.Array) -> pd.DataFrame:
    product_ids = _ids(np.arange(len(CATEGORIES) * 2 * _PRODUCTS_PER_TIER), "P", 4)
    # Clean order number k is row k - 1 of ``orders`` before any injected return lines.
    return pd.DataFrame(
        {
            "order_id": _str(order_ids.take(pa.array(items["order"]))),
            "product_id": _str(product_ids.take(pa.array(items["product"]))),
            "quantity": items["quantity"],
            "unit_price": items["unit_price"].astype(np.float64),
            "category": _text(items["category"], CATEGORIES),
            "tier": _text(items["premium"].astype(np.int64), TIERS),
        }
    )


# --------------------------------------------------------------------------- events


def _simulate_events(rng: np.random.Generator, cust: dict) -> dict[str, np.ndarray]:
    """Browsing sessions as event rows, sorted by time (ties in session order).

    Per-row arrays use narrow dtypes and are built once: at a million customers there are tens of
    millions of rows, and fresh memory costs more than the arithmetic.
    """
    tenure0, span = _window(cust)
    who, offset = _poisson_times(rng, cust["session_rate"], 0.5 * cust["growth"], tenure0, span)
    s_start = _at(cust, who, offset)
    del offset
    order = np.argsort(s_start, kind="stable")
    who, s_start = who[order].astype(np.int32), s_start[order]
    del order
    n_s = who.size
    zs = cust["z"][who]
    app = rng.random(n_s) < cust["app_pref"][who]
    n_views = 1 + rng.poisson(1.3 * np.exp(0.35 * zs) * np.where(app, 1.2, 1.0))
    gap_scale = (40.0 * np.exp(0.15 * zs)).astype(np.float32)
    p_cart = _sigmoid(-2.0 + 0.5 * zs).astype(np.float32)
    fav = cust["favourite"][who].astype(np.int8)
    bound = cust["win_end"][who]
    del zs

    # Views: the first a few seconds after the session start, then gaps that grow with z.
    v_session = np.repeat(np.arange(n_s, dtype=np.int32), n_views)
    first = np.zeros(v_session.size, dtype=bool)
    first[np.cumsum(n_views) - n_views] = True
    gap = rng.standard_exponential(v_session.size, dtype=np.float32)
    gap *= np.where(first, np.float32(20.0), gap_scale[v_session])
    gap += np.where(first, np.float32(3.0), np.float32(5.0))
    gap_s = gap.astype(np.int32)
    del gap
    v_time = np.cumsum(gap_s, dtype=np.int64)
    v_time += (s_start - (v_time[first] - gap_s[first]))[v_session]
    del gap_s, first
    # Nothing after the customer drops out or after the end: kept views are a prefix per session.
    keep = v_time < bound[v_session]
    v_session, v_time = v_session[keep], v_time[keep]
    del keep
    m = v_session.size
    shift = rng.integers(1, len(CATEGORIES), m, dtype=np.int8)
    shift[rng.random(m, dtype=np.float32) < 0.7] = 0  # the favourite category
    v_cat = (fav[v_session] + shift) % np.int8(len(CATEGORIES))
    del shift

    # An add_to_cart falls between its view and the next one (or a tail after the last view).
    last = np.ones(m, dtype=bool)
    last[:-1] = v_session[1:] != v_session[:-1]
    cart = np.flatnonzero(rng.random(m, dtype=np.float32) < p_cart[v_session])
    c_next = np.empty(cart.size, dtype=np.int64)
    c_last = last[cart]
    c_next[~c_last] = v_time[cart[~c_last] + 1]
    c_next[c_last] = v_time[cart[c_last]] + 5 + _exp_seconds(rng, 30.0, int(c_last.sum()))
    c_time = (
        v_time[cart] + 1 + (rng.random(cart.size) * (c_next - v_time[cart] - 1)).astype(np.int64)
    )
    ok = c_time < bound[v_session[cart]]
    cart, c_time = cart[ok], c_time[ok]
    del c_next, c_last, ok

    # Interleave in session order: session_start, then each view followed by its cart, if any.
    is_cart = np.zeros(m, dtype=np.int64)
    is_cart[cart] = 1
    carts_before = np.cumsum(is_cart) - is_cart
    del is_cart
    v_pos = np.arange(m, dtype=np.int64) + carts_before + v_session + 1
    del carts_before
    c_pos = v_pos[cart] + 1
    views_per = np.bincount(v_session, minlength=n_s)
    carts_per = np.bincount(v_session[cart], minlength=n_s)
    per_session = 1 + views_per + carts_per
    s_pos = np.cumsum(per_session) - per_session
    total = int(per_session.sum())
    time = np.empty(total, dtype=np.int64)
    kind = np.empty(total, dtype=np.int8)
    cat = np.empty(total, dtype=np.int8)
    sess = np.empty(total, dtype=np.int32)
    time[s_pos], kind[s_pos], cat[s_pos], sess[s_pos] = s_start, 0, -1, np.arange(n_s)
    time[v_pos], kind[v_pos], cat[v_pos], sess[v_pos] = v_time, 1, v_cat, v_session
    time[c_pos], kind[c_pos], cat[c_pos] = c_time, 2, v_cat[cart]
    sess[c_pos] = v_session[cart]
    del v_pos, c_pos, v_time, v_cat, v_session, c_time, cart

    # App rows carry the seconds until the session's next row (a tail for the last row).
    dwell = np.empty(total, dtype=np.int32)
    if total:
        dwell[:-1] = np.diff(time)
        ends = s_pos + per_session - 1
        dwell[ends] = 5 + _exp_seconds(rng, 30.0, ends.size)
        dwell[~app[sess]] = -1

    order = np.argsort(time, kind="stable")
    sess = sess[order]
    return {
        "who": who[sess],
        "time": time[order],
        "kind": kind[order],
        "category": cat[order],
        "session": sess,
        "channel": app[sess],
        "duration": dwell[order],
        "n_sessions": n_s,
    }


def _exp_seconds(rng: np.random.Generator, mean: float, size: int) -> np.ndarray:
    """Whole seconds from an exponential distribution."""
    return (rng.standard_exponential(size, dtype=np.float32) * np.float32(mean)).astype(np.int64)


def _events_frame(ev: dict, customer_ids: pa.Array) -> pd.DataFrame:
    """The events table; consumes ``ev`` so each array is freed once its column exists."""
    n_s = ev.pop("n_sessions")
    session_ids = _ids(np.arange(1, n_s + 1, dtype=np.int64), "S", max(8, len(str(n_s))))
    columns: dict[str, object] = {}
    columns["customer_id"] = _str(customer_ids.take(pa.array(ev.pop("who"))))
    columns["occurred_at"] = _ts(ev.pop("time"))
    columns["event_type"] = _text(ev.pop("kind"), EVENT_TYPES)
    columns["category"] = _text(ev.pop("category"), CATEGORIES)
    columns["session_id"] = _str(session_ids.take(pa.array(ev.pop("session"))))
    del session_ids
    dwell = ev.pop("duration")
    duration = dwell.astype(np.float64)
    duration[dwell < 0] = np.nan
    del dwell
    columns["duration_s"] = duration
    columns["channel"] = _text(ev.pop("channel").view(np.int8), SESSION_CHANNELS)
    return pd.DataFrame(columns, copy=False)


# --------------------------------------------------------------------------- offers


def _offers_frame(off: dict, customer_ids: pa.Array) -> pd.DataFrame:
    m = off["who"].size
    month = off["sent"].astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    key = month * 3 + off["kind"]
    uniq, inverse = np.unique(key, return_inverse=True)
    names = [f"C{1970 + k // 36:04d}{(k // 3) % 12 + 1:02d}-{'UXB'[k % 3]}" for k in uniq.tolist()]
    return pd.DataFrame(
        {
            "offer_id": _str(_ids(np.arange(1, m + 1, dtype=np.int64), "F", max(7, len(str(m))))),
            "customer_id": _str(customer_ids.take(pa.array(off["who"]))),
            "sent_at": _ts(off["sent"]),
            "offer_type": _text(off["kind"], OFFER_TYPES),
            "campaign_id": _text(inverse.reshape(-1), names),
            "channel": _text(off["channel"], OFFER_CHANNELS),
            "category": _text(off["category"], CATEGORIES),
            "discount_pct": off["discount"].astype(np.float64),
            "cost": off["cost"].astype(np.float64),
            "group": _text(off["control"].astype(np.int64), GROUPS),
            "opened_at": _ts(off["opened_at"]),
            "clicked_at": _ts(off["clicked_at"]),
            "accepted_at": _ts(off["accepted_at"]),
        }
    )


# --------------------------------------------------------------------------- helpers

_NAT = np.iinfo(np.int64).min


def _utc(value: str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.as_unit("us")


def _seconds(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000_000)


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _ts(seconds: np.ndarray) -> pd.Series:
    """Whole seconds since the epoch (``_NAT`` for missing) as ``datetime64[us, UTC]``."""
    s = np.asarray(seconds, dtype=np.int64)
    missing = s == _NAT
    us = s * 1_000_000
    if missing.any():
        us[missing] = _NAT
    return pd.Series(us.view("datetime64[us]"), dtype="datetime64[us, UTC]", copy=False)


def _str(values: pa.Array | pa.ChunkedArray) -> pd.arrays.ArrowStringArray:
    return pd.array(values, dtype="str")


def _text(codes: np.ndarray, labels: Sequence[str]) -> pd.arrays.ArrowStringArray:
    """Labels by (integer) code; negative codes are missing."""
    codes = np.asarray(codes)
    mask = codes < 0
    idx = pa.array(codes, mask=mask) if mask.any() else pa.array(codes)
    dictionary = pa.array(list(labels), pa.large_string())
    return _str(pa.DictionaryArray.from_arrays(idx, dictionary).cast(pa.large_string()))


def _ids(numbers: np.ndarray, prefix: str, width: int) -> pa.Array:
    """``prefix`` + the number, zero-padded to ``width`` digits."""
    text = pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.large_string())
    if width:
        text = pc.utf8_lpad(text, width=width, padding="0")
    if prefix:
        text = pc.binary_join_element_wise(
            pa.scalar(prefix, pa.large_string()), text, pa.scalar("", pa.large_string())
        )
    return text


# --------------------------------------------------------------------------- public real data

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def shipped_config(name: str) -> Path:
    """Path of a config shipped in the project's ``configs/`` folder (e.g. ``"cdnow"``)."""
    path = CONFIGS / f"{name}.yaml"
    if not path.is_file():
        found = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.yaml"))) or "none"
        raise ConfigError(f"no shipped config '{name}' in {CONFIGS} (found: {found})")
    return path


def _shared(data_dir: str | Path | None, filename: str) -> Path:
    from vipml.config import default_data_dir
    from vipml.errors import DataError

    folder = Path(data_dir).expanduser().resolve() if data_dir is not None else default_data_dir()
    if not (folder / filename).is_file():
        raise DataError(
            f"{filename} not found in {folder}.\n"
            "Fix: set VIPML_DATA_DIR to the folder holding the public data sets, or pass data_dir"
        )
    return folder


def load_cdnow(data_dir: str | Path | None = None, *, out: str | Path | None = None):
    """The CDNOW 1/10 sample (2,357 customers, 6,919 purchases, 1997-01 to 1998-06) as tables.

    Parameters
    ----------
    data_dir
        Folder holding ``cdnow_sample.txt``; default ``VIPML_DATA_DIR``, else ``../shared/data``.
    out
        Where to write the validation report and quarantine, if anywhere.

    Returns
    -------
    (Tables, ValidationReport)
    """
    from vipml.io import load_tables

    folder = _shared(data_dir, "cdnow_sample.txt")
    return load_tables(folder, config=shipped_config("cdnow"), out=out)


def load_hillstrom(data_dir: str | Path | None = None, *, out: str | Path | None = None):
    """The Hillstrom e-mail campaign (64,000 customers, one offer or control each) as tables.

    Returns customers (the file's attributes) and offers (arm -> group and category, ``visit`` ->
    ``clicked_at``, ``conversion`` -> ``accepted_at``, ``spend`` kept), via ``configs/hillstrom.yaml``.
    """
    from vipml.io import load_tables

    folder = _shared(data_dir, "hillstrom.csv")
    return load_tables(folder, config=shipped_config("hillstrom"), out=out)


# --------------------------------------------------------------------------- commerce exports

EXPORTS = ("cafe24", "cafe24_csv", "smartstore", "coupang", "11st")
"""Export formats :func:`write_export` writes; each has a shipped config of the same name
(``configs/cafe24.yaml``, ``cafe24-csv.yaml``, ``smartstore.yaml``, ``coupang.yaml``,
``11st.yaml``)."""

EXPORT_FILES = {
    "cafe24": "cafe24_orders.json",
    "cafe24_csv": "cafe24_orders.csv",
    "smartstore": "smartstore_orders.xlsx",
    "coupang": "coupang_delivery_list.xlsx",
    "11st": "11st_orders.csv",
}

_KST = "Asia/Seoul"


def export_lines(shop: Retailer) -> pd.DataFrame:
    """One row per order line of a generated retailer, with what every export needs.

    ``line_amount`` is the line's total as paid: its quantity x unit price, less the order's
    discount on its first line, so the lines of an order add up to the order's ``amount``.
    """
    if shop.order_items is None:
        raise ConfigError("write_export needs order_items: make_retailer(..., items=True)")
    orders = shop.orders
    if shop.messiness is not None:
        raise ConfigError("write_export writes a clean retailer: make_retailer(..., messy=None)")
    lines = shop.order_items.merge(
        orders[["order_id", "customer_id", "ordered_at", "amount", "status"]],
        on="order_id",
        how="inner",
        validate="many_to_one",
    )
    gross = lines["quantity"] * lines["unit_price"]
    first = ~lines["order_id"].duplicated().to_numpy()
    rest = gross.where(~first, 0.0).groupby(lines["order_id"]).transform("sum")
    lines["line_amount"] = np.where(first, lines["amount"] - rest, gross)
    lines["line_no"] = lines.groupby("order_id").cumcount() + 1
    lines["local"] = lines["ordered_at"].dt.tz_convert(_KST).dt.tz_localize(None)
    return lines


def write_export(
    shop: Retailer,
    kind: str,
    folder: str | Path,
    *,
    seed: int = 0,
    password: str | None = None,
) -> Path:
    """Write a generated retailer's orders as a Korean commerce export.

    Parameters
    ----------
    shop : Retailer
        A clean generated retailer with ``order_items``.
    kind : {"cafe24", "cafe24_csv", "smartstore", "coupang", "11st"}
        Cafe24 admin API JSON as saved (``{"orders": [...]}`` with ``items`` and ``buyer``),
        Cafe24's CSV order export (cp949), the Naver SmartStore order workbook (a title row,
        the header on row 2), the Coupang Wing delivery list workbook (orders to ship: no
        cancelled or returned ones), or 11st orders (cp949 CSV, ``yyyyMMddHHmmss`` Korean time).
    folder : str or pathlib.Path
        Where to write :data:`EXPORT_FILES`\\[kind].
    seed : int
        Seed of the status codes drawn among equivalent ones (e.g. N40 or N50).
    password : str, optional
        SmartStore: encrypt the workbook with this password (needs msoffcrypto-tool).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    if kind not in EXPORTS:
        raise ConfigError(f"kind must be one of {', '.join(EXPORTS)}, got {kind!r}")
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / EXPORT_FILES[kind]
    lines = export_lines(shop)
    rng = np.random.default_rng(seed)
    writer = {
        "cafe24": _write_cafe24_json,
        "cafe24_csv": _write_cafe24_csv,
        "smartstore": _write_smartstore,
        "coupang": _write_coupang,
        "11st": _write_11st,
    }[kind]
    if kind == "cafe24":
        writer(lines, shop.customers, rng, path)
    elif kind == "smartstore":
        writer(lines, rng, path, password)
    else:
        writer(lines, rng, path)
    return path


def _pick(rng: np.random.Generator, status: pd.Series, choices: dict[str, Sequence[str]]):
    """One code per row, drawn among the codes that mean the row's status."""
    out = np.empty(len(status), dtype=object)
    values = status.to_numpy(dtype=object)
    for name, codes in choices.items():
        hit = values == name
        out[hit] = np.asarray(codes, dtype=object)[rng.integers(0, len(codes), int(hit.sum()))]
    return out


def member_group_no(customers: pd.DataFrame) -> pd.Series:
    """The Cafe24 member group the generator gives each customer (1 + the region's position)."""
    return (
        pd.Categorical(customers["region"], categories=REGIONS).codes.astype(np.int64) + 1
    ).clip(1)


def _money(x: np.ndarray | pd.Series) -> list[str]:
    return [f"{v:.2f}" for v in np.asarray(x, dtype=np.float64)]


def _write_cafe24_json(lines, customers, rng, path: Path) -> None:
    import json

    group = dict(zip(customers["customer_id"], member_group_no(customers), strict=True))
    codes = _pick(
        rng,
        lines["status"],
        {
            "completed": ("N10", "N20", "N30", "N40", "N50"),
            "cancelled": ("C40",),
            "returned": ("R40",),
        },
    )
    lines = lines.assign(code=codes, money=_money(lines["line_amount"]))
    lines["price"] = _money(lines["unit_price"])
    offsets = lines["ordered_at"].dt.tz_convert(_KST).dt.strftime("%Y-%m-%dT%H:%M:%S+09:00")
    lines["when"] = offsets
    orders = []
    for oid, part in lines.groupby("order_id", sort=False):
        head = part.iloc[0]
        status = head["status"]
        orders.append(
            {
                "shop_no": 1,
                "order_id": oid,
                "member_id": head["customer_id"],
                "order_date": head["when"],
                "canceled": "T" if status == "cancelled" else "F",
                "payment_amount": f"{head['amount']:.2f}",
                "currency": "KRW",
                "buyer": {
                    "member_id": head["customer_id"],
                    "member_group_no": int(group.get(head["customer_id"], 1)),
                    "name": f"고객{head['customer_id']}",
                },
                "items": [
                    {
                        "item_no": int(r.line_no),
                        "order_item_code": f"{oid}-{int(r.line_no):02d}",
                        "product_code": r.product_id,
                        "product_name": f"{r.category} {r.product_id}",
                        "quantity": int(r.quantity),
                        "product_price": r.price,
                        "payment_amount": r.money,
                        "order_status": r.code,
                    }
                    for r in part.itertuples(index=False)
                ],
            }
        )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"orders": orders}, ensure_ascii=False, indent=1), "utf-8")
    tmp.replace(path)


def _write_text(frame: pd.DataFrame, path: Path, encoding: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False, encoding=encoding)
    tmp.replace(path)


def _write_cafe24_csv(lines, rng, path: Path) -> None:
    status = _pick(
        rng,
        lines["status"],
        {
            "completed": ("상품준비중", "배송중", "배송완료", "구매확정"),
            "cancelled": ("취소완료",),
            "returned": ("반품완료",),
        },
    )
    frame = pd.DataFrame(
        {
            "주문번호": lines["order_id"],
            "품목별 주문번호": [
                f"{o}-{n:02d}" for o, n in zip(lines["order_id"], lines["line_no"], strict=True)
            ],
            "주문일시": lines["local"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "주문자ID": lines["customer_id"],
            "상품코드": lines["product_id"],
            "상품명": lines["category"].astype("str") + " " + lines["product_id"].astype("str"),
            "수량": lines["quantity"],
            "판매가": _money(lines["unit_price"]),
            "품목별 결제금액": _money(lines["line_amount"]),
            "주문상태": status,
        }
    )
    _write_text(frame, path, "cp949")


def _write_11st(lines, rng, path: Path) -> None:
    status = _pick(
        rng,
        lines["status"],
        {
            "completed": ("결제완료", "배송준비중", "배송중", "배송완료", "구매확정"),
            "cancelled": ("취소완료",),
            "returned": ("반품완료",),
        },
    )
    frame = pd.DataFrame(
        {
            "주문번호": lines["order_id"],
            "주문순번": lines["line_no"],
            "주문일시": lines["local"].dt.strftime("%Y%m%d%H%M%S"),
            "구매자ID": lines["customer_id"],
            "구매자명": "고객" + lines["customer_id"].astype("str"),
            "상품번호": lines["product_id"],
            "상품명": lines["category"].astype("str") + " " + lines["product_id"].astype("str"),
            "수량": lines["quantity"],
            "판매가": _money(lines["unit_price"]),
            "결제금액": _money(lines["line_amount"]),
            "주문상태": status,
        }
    )
    _write_text(frame, path, "cp949")


def _write_workbook(rows: list[list[object]], path: Path, password: str | None) -> None:
    import io

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    data = buf.getvalue()
    if password is not None:
        import msoffcrypto.format.ooxml

        out = io.BytesIO()
        msoffcrypto.format.ooxml.OOXMLFile(io.BytesIO(data)).encrypt(password, out)
        data = out.getvalue()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


SMARTSTORE_COLUMNS = (
    "상품주문번호", "주문번호", "구매자명", "구매자ID", "주문일시", "주문상태", "클레임상태",
    "상품번호", "상품명", "옵션정보", "수량", "상품가격", "최종 상품별 총 주문금액",
)  # fmt: skip


def _write_smartstore(lines, rng, path: Path, password: str | None) -> None:
    state = _pick(
        rng,
        lines["status"],
        {
            "completed": ("배송완료", "구매확정", "배송중"),
            "cancelled": ("취소",),
            "returned": ("반품",),
        },
    )
    claim = np.where(
        lines["status"] == "cancelled",
        "취소완료",
        np.where(lines["status"] == "returned", "반품완료", None),
    ).astype(object)
    # some delivered lines carry a claim still open or withdrawn: the order state decides
    open_claim = (lines["status"] == "completed").to_numpy() & (rng.random(len(lines)) < 0.05)
    claim[open_claim] = np.asarray(("반품요청", "교환철회"), dtype=object)[
        rng.integers(0, 2, int(open_claim.sum()))
    ]
    rows: list[list[object]] = [["상품주문 조회 결과 (스마트스토어)"], list(SMARTSTORE_COLUMNS)]
    local = lines["local"].dt.to_pydatetime()
    for i, r in enumerate(lines.itertuples(index=False)):
        rows.append(
            [
                f"{r.order_id}{int(r.line_no):02d}",
                r.order_id,
                f"고객{r.customer_id}",
                r.customer_id,
                local[i],
                state[i],
                claim[i],
                r.product_id,
                f"{r.category} {r.product_id}",
                "",
                int(r.quantity),
                round(float(r.unit_price), 2),
                round(float(r.line_amount), 2),
            ]
        )
    _write_workbook(rows, path, password)


COUPANG_COLUMNS = (
    "번호", "묶음배송번호", "주문번호", "택배사", "운송장번호", "주문일", "등록상품명",
    "등록옵션명", "노출상품ID", "옵션ID", "결제액", "구매수(수량)", "옵션판매가(판매단가)",
    "구매자", "구매자전화번호", "수취인이름",
)  # fmt: skip


def coupang_buyer(customer_id: str) -> tuple[str, str]:
    """The buyer name and phone the generator writes for a customer (Coupang has no buyer id)."""
    n = int(customer_id)
    return f"고객{customer_id}", f"010-{n // 10_000:04d}-{n % 10_000:04d}"


def _write_coupang(lines, rng, path: Path) -> None:
    del rng
    lines = lines[lines["status"] == "completed"]  # a delivery list holds orders to ship
    rows: list[list[object]] = [list(COUPANG_COLUMNS)]
    for i, r in enumerate(lines.itertuples(index=False), start=1):
        name, phone = coupang_buyer(r.customer_id)
        rows.append(
            [
                i,
                f"B{r.order_id}",
                r.order_id,
                "CJ 대한통운",
                "",
                r.local.strftime("%Y-%m-%d %H:%M:%S"),
                f"{r.category} {r.product_id}",
                "기본",
                r.product_id,
                r.product_id,
                round(float(r.line_amount), 2),
                int(r.quantity),
                round(float(r.unit_price), 2),
                name,
                phone,
                name,
            ]
        )
    _write_workbook(rows, path, None)
