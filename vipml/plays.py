"""From a score to an action: the play, the channel and the moment for each customer.

Used by :mod:`vipml.score` (and the bucketed scorer) after the model's contributions are known:

* :func:`choose_driver`: the actionable driver (``score.drivers``: browsing, recency, repeat
  purchase, app time, category breadth) where the customer lags the VIPs most, that is the most
  negative summed contribution among the features CRM can move; ``lags`` when one is negative,
  else the strongest positive one (``leads``), else none;
* :func:`assign_plays`: the play of ``score.playbook`` for the customer's segment and lagging
  driver (``<segment>.<driver>``, else the segment's own play), with ``{category}`` filled from the
  customer's features, and why it was chosen in English and Korean;
* :func:`channel_history`, :func:`best_channel`: the channel with the best response in the
  customer's own offer history, shrunk towards the population's rate when the history is thin,
  among the channels the customer consented to;
* :func:`next_order_at`, :func:`send_window`: when to send (replenishment plays: the customer's
  next order date from their own purchase cycle; else the campaign window) and the send time under
  the messaging rules (:func:`korean_rules`).

Consent columns of the ``customers`` table (``consent_email``, ``consent_sms``, ``consent_push``,
``consent_kakao``, ``consent_night``): true or false per customer. An absent column, or an empty
value, means "not known": the channel stays usable (the retailer's own list is assumed to be
consented), while night sending is never assumed (no night consent unless it is given).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from vipml.config import CONTRADICTIONS, Config, ScoreConfig
from vipml.io import positions

CHANNELS = ("email", "sms", "push", "kakao")

DRIVER_TEXT = {
    "browsing": ("product browsing", "상품 탐색"),
    "recency": ("recent purchases and visits", "최근 구매·방문"),
    "repeat_purchase": ("repeat purchase", "재구매"),
    "app_time": ("app time", "앱 이용 시간"),
    "category_breadth": ("category breadth", "구매 카테고리 폭"),
}
SEGMENT_TEXT = {
    "new": ("New customer", "신규 고객"),
    "repeat": ("Repeat customer", "재구매 고객"),
    "at_risk": ("At-risk customer", "이탈 위험 고객"),
    "high_value": ("High-value customer", "고액 구매 고객"),
    "category_interest": ("Category-interest customer", "관심 상품군 고객"),
    "other": ("Customer", "고객"),
}
GENERIC_CATEGORY = ("the best-selling category", "인기 카테고리")


def _text(table: dict[str, tuple[str, str]], key: str, lang: int) -> str:
    return table[key][lang] if key in table else key.replace("_", " ")


# --------------------------------------------------------------------------- driver and play


def driver_groups(names: list[str], sc: ScoreConfig) -> tuple[list[str], np.ndarray]:
    """The actionable drivers present among the model's features and a 0/1 matrix (features x
    drivers); a feature belongs to the first driver whose prefix it starts with."""
    drivers = list(sc.drivers)
    G = np.zeros((len(names), len(drivers)))
    for i, name in enumerate(names):
        for j, d in enumerate(drivers):
            if any(name.startswith(p) for p in sc.drivers[d]):
                G[i, j] = 1.0
                break
    keep = G.any(axis=0)
    return [d for d, k in zip(drivers, keep, strict=True) if k], G[:, keep]


def choose_driver(
    contrib: np.ndarray, names: list[str], sc: ScoreConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the actionable driver, its direction (``lags``: the most negative summed
    contribution, where the customer is furthest behind the VIPs; ``leads``: none is negative, the
    strongest positive one; ``""``: no actionable feature moves the score) and its contribution."""
    n = len(contrib)
    drivers, G = driver_groups(names, sc)
    driver = np.full(n, "", dtype=object)
    direction = np.full(n, "", dtype=object)
    strength = np.zeros(n)
    if not drivers:
        return driver, direction, strength
    S = np.asarray(contrib, dtype=np.float64) @ G  # rows x drivers
    low, high = S.argmin(axis=1), S.argmax(axis=1)
    rows = np.arange(n)
    lags = S[rows, low] < 0
    leads = ~lags & (S[rows, high] > 0)
    names_arr = np.asarray(drivers, dtype=object)
    driver[lags], direction[lags], strength[lags] = names_arr[low[lags]], "lags", S[rows, low][lags]
    driver[leads], direction[leads] = names_arr[high[leads]], "leads"
    strength[leads] = S[rows, high][leads]
    return driver, direction, strength


def categories(X: pd.DataFrame, driver: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """The category a play names: the most browsed category for browsing plays and
    category-interest customers, else the most bought one (either when the other is unknown);
    ``""`` when neither is known."""
    n = len(X)

    def col(name: str) -> pd.Series:
        if name not in X:
            return pd.Series([None] * n, dtype=object)
        return pd.Series(X[name].astype("object").to_numpy(), dtype=object)

    bought, viewed = col("top_category"), col("top_view_category")
    prefer_view = (np.asarray(driver) == "browsing") | (np.asarray(segment) == "category_interest")
    first = viewed.where(prefer_view, bought)
    second = bought.where(prefer_view, viewed)
    out = first.where(first.notna(), second)
    return out.where(out.notna(), "").astype(str).to_numpy(dtype=object)


def play_keys(segment: np.ndarray, driver: np.ndarray, direction: np.ndarray, sc: ScoreConfig):
    """The playbook key of each row: ``<segment>.<driver>`` when the driver lags and the pair
    has a play, else the segment's play, else ``other``."""
    seg = pd.Series(segment, dtype=object).fillna("other").astype(str)
    pair = seg + "." + pd.Series(driver, dtype=object).astype(str)
    lags = np.asarray(direction) == "lags"
    has_pair = pair.isin(list(sc.playbook)).to_numpy() & lags
    has_seg = seg.isin(list(sc.playbook)).to_numpy()
    return np.where(has_pair, pair, np.where(has_seg, seg, "other")).astype(object)


def _fill(template: str, category: np.ndarray, generic: str) -> np.ndarray:
    if "{category}" not in template:
        return np.full(len(category), template, dtype=object)
    cat = np.where(category == "", generic, category).astype(object)
    head, _, tail = template.partition("{category}")
    return (head + pd.Series(cat, dtype=object) + tail.replace("{category}", "")).to_numpy(
        dtype=object
    )


def assign_plays(
    segment: np.ndarray,
    driver: np.ndarray,
    direction: np.ndarray,
    category: np.ndarray,
    sc: ScoreConfig,
) -> dict[str, np.ndarray]:
    """The play of each row from the playbook, its texts with ``{category}`` filled, and why it
    was chosen (``play_reason_en``, ``play_reason_ko``). Loops over playbook keys, not rows."""
    n = len(segment)
    keys = play_keys(segment, driver, direction, sc)
    out: dict[str, np.ndarray] = {
        "play_en": np.empty(n, dtype=object),
        "play_ko": np.empty(n, dtype=object),
        "offer_type": np.empty(n, dtype=object),
        "play_theme": np.empty(n, dtype=object),
        "_replenishment": np.zeros(n, dtype=bool),
        "play_key": keys,
    }
    category = np.asarray(category, dtype=object)
    for key in pd.unique(keys):
        hit = keys == key
        play = sc.playbook[key]
        out["play_en"][hit] = _fill(play.en, category[hit], GENERIC_CATEGORY[0])
        out["play_ko"][hit] = _fill(play.ko, category[hit], GENERIC_CATEGORY[1])
        out["offer_type"][hit] = play.offer_type
        out["play_theme"][hit] = play.theme or ""
        out["_replenishment"][hit] = play.replenishment
    out["play_theme"] = out["play_theme"].astype(object)
    seg = pd.Series(segment, dtype=object).fillna("other").astype(str).to_numpy()
    en, ko = np.empty(n, dtype=object), np.empty(n, dtype=object)
    frame = pd.DataFrame({"s": seg, "d": driver, "r": direction, "k": keys})
    for (s, d, r, k), idx in frame.groupby(["s", "d", "r", "k"], sort=True).indices.items():
        se, sk = _text(SEGMENT_TEXT, s, 0), _text(SEGMENT_TEXT, s, 1)
        de, dk = _text(DRIVER_TEXT, d, 0), _text(DRIVER_TEXT, d, 1)
        own = "." in k
        if r == "lags" and own:
            en[idx] = f"{se} whose {de} lags the VIPs most: the play for that driver"
            ko[idx] = f"{sk} · VIP 대비 가장 부족한 지표: {dk} → 해당 지표 맞춤 플레이"
        elif r == "lags":
            en[idx] = f"{se} whose {de} lags the VIPs most: the segment's play"
            ko[idx] = f"{sk} · VIP 대비 가장 부족한 지표: {dk} → 세그먼트 기본 플레이"
        elif r == "leads":
            en[idx] = f"{se} at or above the VIPs on {de} (nothing lags): the segment's play"
            ko[idx] = (
                f"{sk} · VIP 대비 부족한 지표 없음(가장 강한 지표: {dk}) → 세그먼트 기본 플레이"
            )
        else:
            en[idx] = f"{se}: the segment's play"
            ko[idx] = f"{sk} → 세그먼트 기본 플레이"
    out["play_reason_en"], out["play_reason_ko"] = en, ko
    return out


def contradicts(segment: np.ndarray, theme: np.ndarray) -> np.ndarray:
    """Rows whose play contradicts their segment (a win-back play for a new customer, a welcome
    play for an at-risk or high-value one)."""
    seg = pd.Series(segment, dtype=object).astype(str)
    th = pd.Series(theme, dtype=object).astype(str)
    bad = np.zeros(len(seg), dtype=bool)
    for s, themes in CONTRADICTIONS.items():
        bad |= (seg == s).to_numpy() & th.isin(list(themes)).to_numpy()
    return bad


def driver_actions(
    X: pd.DataFrame, contrib: np.ndarray, names: list[str], segment: np.ndarray, sc: ScoreConfig
) -> dict[str, np.ndarray]:
    """Driver, direction, category and play of every row (one pass over the contributions)."""
    driver, direction, strength = choose_driver(contrib, names, sc)
    category = categories(X, driver, segment)
    out = assign_plays(segment, driver, direction, category, sc)
    out.update(driver=driver, driver_direction=direction, category=category)
    out["_driver_strength"] = strength
    return out


# --------------------------------------------------------------------------- channel


def consents(
    customers: pd.DataFrame | None, ids: pd.Index, channels: tuple[str, ...] | list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per customer and channel: 1 consented, 0 refused, NaN not known (no column or no value);
    and night consent (True only where given)."""
    n = len(ids)
    out = np.full((n, len(channels)), np.nan)
    night = np.zeros(n, dtype=bool)
    if customers is None or "customer_id" not in customers:
        return out, night
    cols = [f"consent_{c}" for c in channels if f"consent_{c}" in customers]
    if not cols and "consent_night" not in customers:
        return out, night
    wanted = [*cols, *(["consent_night"] if "consent_night" in customers else [])]
    cust = customers[["customer_id", *wanted]].drop_duplicates("customer_id", keep="last")
    cust = cust.set_index(cust["customer_id"].astype(str))[wanted]
    rows = cust.reindex(pd.Index(ids).astype(str))
    for j, c in enumerate(channels):
        if f"consent_{c}" in rows:
            out[:, j] = _flag(rows[f"consent_{c}"])
    if "consent_night" in rows:
        night = _flag(rows["consent_night"]) == 1
    return out, night


_TRUE = {"1", "true", "t", "yes", "y", "1.0"}
_FALSE = {"0", "false", "f", "no", "n", "0.0"}


def _flag(values: pd.Series) -> np.ndarray:
    """1 / 0 / NaN per value, read as text (``True``, ``yes``, ``1``, ``1.0``...), vectorised."""
    text = values.astype("string").str.strip().str.lower()
    return np.where(text.isin(_TRUE), 1.0, np.where(text.isin(_FALSE), 0.0, np.nan))


def channel_history(
    offers: pd.DataFrame | None,
    cutoff: pd.Timestamp,
    ids: pd.Index,
    channels: tuple[str, ...] | list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Offers sent and responded to per customer and channel, strictly before ``cutoff``
    (a response counts only when it also happened before the cutoff; control offers are not
    sends). The response is acceptance, else a click, else an open, whichever the table has."""
    n, k = len(ids), len(channels)
    sent, resp = np.zeros((n, k)), np.zeros((n, k))
    if offers is None or "channel" not in offers or "sent_at" not in offers:
        return sent, resp
    event = next(
        (f"{e}_at" for e in ("accepted", "clicked", "opened") if f"{e}_at" in offers), None
    )
    mask = np.array(offers["sent_at"] < cutoff, dtype=bool)
    if "group" in offers:
        mask &= (offers["group"].astype("object") != "control").to_numpy(dtype=bool)
    rows = offers.loc[mask]
    who = positions(pd.Index(ids).astype(str), rows["customer_id"].astype(str))
    ch = positions(pd.Index(list(channels)), rows["channel"].astype(str))
    ok = (who >= 0) & (ch >= 0)
    cell = who.astype(np.int64) * k + ch  # counts by (customer, channel) cell, in one pass
    sent = np.bincount(cell[ok], minlength=n * k).astype(np.float64).reshape(n, k)
    if event is not None:
        when = rows[event]
        hit = (when.notna() & (when < cutoff)).to_numpy(dtype=bool) & ok
        resp = np.bincount(cell[hit], minlength=n * k).astype(np.float64).reshape(n, k)
    return sent, resp


def population_rates(sent: np.ndarray, resp: np.ndarray) -> np.ndarray:
    """The population's response rate per channel (the overall rate for a channel never used;
    0 when nothing was ever sent): sums over every customer, never over one bucket."""
    total_sent, total_resp = sent.sum(axis=0), resp.sum(axis=0)
    overall = total_resp.sum() / total_sent.sum() if total_sent.sum() > 0 else 0.0
    return np.where(total_sent > 0, total_resp / np.maximum(total_sent, 1), overall)


def best_channel(
    sent: np.ndarray,
    resp: np.ndarray,
    population: np.ndarray,
    consent: np.ndarray,
    sc: ScoreConfig,
    channels: tuple[str, ...] | list[str] = CHANNELS,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the consented channel (not refused) with the best shrunk response rate,
    ``(responses + prior x population rate) / (sends + prior)``, ties to the earlier channel of
    ``score.channels``; ``""`` when every channel was refused. Also the rate."""
    order = [list(channels).index(c) for c in sc.channels]
    s, r, p, c = sent[:, order], resp[:, order], population[order], consent[:, order]
    k = sc.channel_prior
    rate = np.where(s + k > 0, (r + k * p[None, :]) / np.maximum(s + k, 1e-12), p[None, :])
    rate = np.where(c == 0, -np.inf, rate)
    best = np.argmax(rate, axis=1)  # first maximum: the earlier channel on a tie
    rows = np.arange(len(rate))
    top = rate[rows, best]
    name = np.where(np.isfinite(top), np.asarray(sc.channels, dtype=object)[best], "")
    return name.astype(object), np.where(np.isfinite(top), top, np.nan)


def contact_frame(
    customers: pd.DataFrame | None,
    offers: pd.DataFrame | None,
    ids: pd.Index,
    cutoff: pd.Timestamp,
) -> pd.DataFrame:
    """Per customer of ``ids``: offers sent (``sent_<channel>``) and responded to
    (``resp_<channel>``) before ``cutoff``, consent per channel (``consent_<channel>``: 1, 0 or
    NaN, not known) and ``consent_night``. What :func:`contact_arrays` reads back; a bucket of
    customers writes its own, the population's rates come from their sums."""
    ids = pd.Index(ids).astype(str)
    consent, night = consents(customers, ids, CHANNELS)
    sent, resp = channel_history(offers, cutoff, ids, CHANNELS)
    out = pd.DataFrame(index=ids.rename("customer_id"))
    for j, c in enumerate(CHANNELS):
        out[f"sent_{c}"] = sent[:, j]
        out[f"resp_{c}"] = resp[:, j]
        out[f"consent_{c}"] = consent[:, j]
    out["consent_night"] = night
    return out


def contact_arrays(contact: pd.DataFrame | None, ids: pd.Index):
    """Sends, responses, consents (customers x ``CHANNELS``) and night consent of ``ids`` from a
    :func:`contact_frame` (none: no history, consents not known)."""
    n, k = len(ids), len(CHANNELS)
    if contact is None:
        return np.zeros((n, k)), np.zeros((n, k)), np.full((n, k), np.nan), np.zeros(n, bool)
    rows = contact.reindex(pd.Index(ids).astype(str))
    sent = rows[[f"sent_{c}" for c in CHANNELS]].fillna(0).to_numpy(dtype=np.float64)
    resp = rows[[f"resp_{c}" for c in CHANNELS]].fillna(0).to_numpy(dtype=np.float64)
    consent = rows[[f"consent_{c}" for c in CHANNELS]].to_numpy(dtype=np.float64)
    night = rows["consent_night"].fillna(False).to_numpy(dtype=bool)
    return sent, resp, consent, night


# --------------------------------------------------------------------------- moment


def next_order_at(X: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    """Each customer's expected next order date from their own purchase cycle: the last order
    (``cutoff - recency_days``) plus the mean gap between their orders (``interval_mean_days``);
    NaT without two orders."""
    n = len(X)
    if "recency_days" not in X or "interval_mean_days" not in X:
        return pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
    days = X["recency_days"].to_numpy(dtype=np.float64)
    gap = X["interval_mean_days"].to_numpy(dtype=np.float64)
    ahead = np.where(np.isnan(days) | np.isnan(gap), np.nan, gap - days)
    delta = pd.to_timedelta(np.round(ahead * 86_400), unit="s")
    return pd.Series(cutoff + delta, dtype="datetime64[ns, UTC]").reset_index(drop=True)


def rules_apply(cfg: Config) -> bool:
    """Whether the Korean messaging rules apply (``score.messaging.rules``; auto: locale ko)."""
    rules = cfg.score.messaging.rules
    return rules == "ko" or (rules == "auto" and cfg.locale == "ko")


def send_window(
    replenishment: np.ndarray,
    next_order: pd.Series,
    night: np.ndarray,
    cutoff: pd.Timestamp,
    cfg: Config,
) -> dict[str, Any]:
    """``send_from`` / ``send_until`` (UTC days) and ``send_at`` (UTC instant) of each row.

    Replenishment plays with a known next order date: from ``score.replenishment_lead_days``
    before it until it (from the campaign start at the earliest); every other row: the campaign
    window (``score.campaign_start``, default the cutoff, for ``score.campaign_days``). The send
    time is ``score.send_hour`` on the first day, in ``score.messaging.timezone``; under the
    Korean rules (:func:`korean_rules`) moved into the advertising hours unless night consent."""
    sc = cfg.score
    start = pd.Timestamp(sc.campaign_start, tz="UTC") if sc.campaign_start else cutoff
    start = start.tz_convert("UTC").normalize()
    n = len(replenishment)
    lead = pd.Timedelta(days=sc.replenishment_lead_days)
    due = pd.Series(next_order.array)
    if isinstance(due.dtype, pd.DatetimeTZDtype):  # as it is, without Timestamp objects
        due = due.astype("datetime64[ns, UTC]")
    else:  # naive dates are UTC
        due = pd.Series(due.to_numpy(), dtype="datetime64[ns, UTC]")
    due = due.dt.normalize()
    timed = np.asarray(replenishment, dtype=bool) & due.notna().to_numpy()
    frm = pd.Series(start, index=range(n), dtype="datetime64[ns, UTC]")
    until = pd.Series(start + pd.Timedelta(days=sc.campaign_days), index=range(n))
    rep_from = (due - lead).where((due - lead) > start, start)
    rep_until = due.where(
        due > rep_from, rep_from + pd.Timedelta(days=max(sc.replenishment_lead_days, 1))
    )
    frm = frm.where(~timed, rep_from)
    until = until.where(~timed, rep_until).astype("datetime64[ns, UTC]")
    send_at = send_time(frm, night, cfg)
    return {"send_from": frm.array, "send_until": until.array, "send_at": send_at}


def send_time(day: pd.Series, night: np.ndarray, cfg: Config) -> np.ndarray:
    """``score.send_hour`` local time on each day, under the messaging rules, as UTC."""
    msg = cfg.score.messaging
    local_day = pd.Series(day).dt.tz_convert(msg.timezone).dt.normalize()
    hour = np.full(len(local_day), cfg.score.send_hour, dtype=np.int64)
    if rules_apply(cfg):
        hour = korean_rules(hour, np.asarray(night, dtype=bool), msg.ad_hours)
    shift = pd.to_timedelta(hour, unit="h")
    return (local_day + shift).dt.tz_convert("UTC").array


def korean_rules(hour: np.ndarray, night: np.ndarray, ad_hours: tuple[int, int]) -> np.ndarray:
    """Advertising hours: a send hour outside ``[start, end)`` moves to ``start`` (the next day's
    when it is past ``end``), unless the customer gave night consent. Returned as hours from the
    day's midnight (24 + start: the next morning)."""
    lo, hi = ad_hours
    out = np.asarray(hour, dtype=np.int64).copy()
    early = (out < lo) & ~night
    late = (out >= hi) & ~night
    out[early] = lo
    out[late] = 24 + lo
    return out


# --------------------------------------------------------------------------- report


def play_table(targets: pd.DataFrame, min_group: int = 30) -> pd.DataFrame:
    """The list's plays by segment, driver and direction: customers, selected, the commonest
    play and why it was chosen (en and ko), the commonest channel of the selected; a group of
    fewer than ``min_group`` customers is marked ``suppressed`` (no counts shown).

    Returns
    -------
    pandas.DataFrame
        ``segment``, ``driver``, ``driver_direction``, ``customers``, ``selected``, ``play_en``,
        ``play_ko``, ``play_reason_en``, ``play_reason_ko``, ``channel``, ``suppressed``;
        sorted by segment then customers (most first). Empty when the list has no drivers.
    """
    need = ("segment", "driver", "driver_direction", "play_en", "play_ko", "play_reason_en")
    if not all(c in targets for c in need) or not len(targets):
        return pd.DataFrame()
    t = targets.drop_duplicates("customer_id") if "offer_rank" in targets else targets
    if "in_population" in t:
        t = t[t["in_population"].astype(bool)]
    keys = ["segment", "driver", "driver_direction"]
    t = t.assign(**{k: t[k].astype("object").fillna("") for k in keys})

    def commonest(column: str) -> pd.Series:
        counts = t.groupby([*keys, column], sort=True).size().rename("n").reset_index()
        counts = counts.sort_values([*keys, "n", column], ascending=[True] * 3 + [False, True])
        return counts.drop_duplicates(keys).set_index(keys)[column]

    out = t.groupby(keys, sort=True).agg(
        customers=("customer_id", "size"), selected=("selected", "sum")
    )
    for column in ("play_en", "play_ko", "play_reason_en", "play_reason_ko"):
        out[column] = commonest(column)
    sel = t[t["selected"].astype(bool) & (t.get("channel", "") != "")]
    if len(sel) and "channel" in sel:
        counts = sel.groupby([*keys, "channel"], sort=True).size().rename("n").reset_index()
        counts = counts.sort_values([*keys, "n", "channel"], ascending=[True] * 3 + [False, True])
        out["channel"] = counts.drop_duplicates(keys).set_index(keys)["channel"]
    else:
        out["channel"] = ""
    out["channel"] = out["channel"].fillna("")
    out["suppressed"] = out["customers"] < min_group
    out = out.reset_index().sort_values(
        ["segment", "customers", "driver"], ascending=[True, False, True], kind="stable"
    )
    return out.reset_index(drop=True)


def left_out_counts(targets: pd.DataFrame) -> dict[str, int]:
    """Rows left out of the selection, by reason (``left_out``), most first."""
    if "left_out" not in targets:
        return {}
    why = targets["left_out"].astype("object").fillna("")
    counts = why[why != ""].value_counts()
    return {str(k): int(v) for k, v in counts.items()}
