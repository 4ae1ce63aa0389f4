"""Per-channel send files from a target list (``vipml export``).

One row per selected treatment customer whose chosen channel is the file's channel (control
customers are never in a send file), with the template variables a messaging tool fills in:
``name``, ``category``, ``offer``, ``coupon``, ``send_at`` (local time of
``score.messaging.timezone``), the play and a ready ``message``.

Under the Korean messaging rules (``locale: ko``, or ``score.messaging.rules: ko``): an
advertising message is sent only within ``score.messaging.ad_hours`` (08:00-21:00) Korea time
unless the customer gave night consent (a send time outside moves to the next allowed hour);
its text starts with ``(광고)`` and ends with the opt-out line; on KakaoTalk an offer goes as a
FriendTalk (or brand message), never as an AlimTalk, which carries informational templates only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vipml.config import Config
from vipml.errors import DataError
from vipml.plays import korean_rules, rules_apply

SEND_CHANNELS = ("email", "sms", "push", "kakao")
NEEDED = ("customer_id", "selected", "group", "channel", "offer", "category", "send_at")
SEND_COLUMNS = [
    "customer_id", "name", "category", "offer", "coupon", "send_at", "play", "message",
    "message_type", "channel",
]  # fmt: skip


def coupons(offer: pd.Series, cfg: Config) -> np.ndarray:
    """The coupon of each row's offer: the discount of ``score.offers``' candidate of that offer
    type (``"10%"``), ``""`` for an offer with no candidate (an uplift arm)."""
    discount = {o.offer_type: o.discount_pct for o in cfg.score.offers}
    return (
        offer.astype("object")
        .map(lambda o: f"{discount[o]:g}%" if o in discount else "")
        .to_numpy(dtype=object)
    )


def send_file(targets: pd.DataFrame, channel: str, cfg: Config) -> pd.DataFrame:
    """The send file of ``channel`` from a target list (see the module's docstring).

    Raises
    ------
    DataError
        When ``channel`` is unknown or the list lacks the columns of a list scored with plays,
        channels and send times (they are named, with the fix).
    """
    if channel not in SEND_CHANNELS:
        raise DataError(
            f"--channel '{channel}' is not a channel; allowed: {', '.join(SEND_CHANNELS)}"
        )
    missing = [c for c in NEEDED if c not in targets]
    if missing:
        raise DataError(
            f"target list: no column {', '.join(repr(c) for c in missing)} (a list scored before "
            "channels and send times were chosen, or not a target list).\n"
            "Fix: score again with vipml score and export the new list"
        )
    selected = targets["selected"].astype("object").map(_truthy).to_numpy(dtype=bool)
    treated = targets["group"].astype("object").to_numpy() == "treatment"
    mine = targets["channel"].astype("object").to_numpy() == channel
    rows = targets.loc[selected & treated & mine].reset_index(drop=True)
    ko = cfg.locale == "ko"
    rules = rules_apply(cfg)
    msg = cfg.score.messaging
    when = pd.to_datetime(rows["send_at"], utc=True)
    local = when.dt.tz_convert(msg.timezone)
    if rules and len(rows):  # a list edited by hand is held to the advertising hours too
        night = (
            rows["night_consent"].astype("object").map(_truthy).to_numpy(dtype=bool)
            if "night_consent" in rows
            else np.zeros(len(rows), dtype=bool)
        )
        hour = local.dt.hour.to_numpy()
        moved = korean_rules(hour, night, msg.ad_hours)
        day = local.dt.normalize()
        local = local.where(moved == hour, day + pd.to_timedelta(moved, unit="h"))
    play_col = "play_ko" if ko and "play_ko" in rows else "play_en"
    play = (
        rows[play_col].astype("object").fillna("").to_numpy(dtype=object)
        if play_col in rows
        else np.full(len(rows), "", dtype=object)
    )
    name = (
        rows["name"].astype("object").fillna("").to_numpy(dtype=object)
        if "name" in rows
        else np.full(len(rows), "", dtype=object)
    )
    coupon = coupons(rows["offer"], cfg)
    body = pd.Series(play, dtype=object) + pd.Series(
        np.where(coupon != "", (" - 쿠폰 " if ko else " - coupon ") + coupon, ""), dtype=object
    )
    if rules:
        body = msg.ad_prefix + " " + body + "\n" + msg.opt_out
    kind = msg.kakao_type if channel == "kakao" else "advertising"
    out = pd.DataFrame(
        {
            "customer_id": rows["customer_id"].astype(str).to_numpy(dtype=object),
            "name": name,
            "category": rows["category"].astype("object").fillna("").to_numpy(dtype=object),
            "offer": rows["offer"].astype("object").fillna("").to_numpy(dtype=object),
            "coupon": coupon,
            "send_at": local.dt.strftime("%Y-%m-%d %H:%M:%S%z").to_numpy(dtype=object)
            if len(rows)
            else np.array([], dtype=object),
            "play": play,
            "message": body.to_numpy(dtype=object),
            "message_type": np.full(len(rows), kind, dtype=object),
            "channel": np.full(len(rows), channel, dtype=object),
        }
    )
    return out[SEND_COLUMNS]


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "t", "yes", "y")
    return bool(value) if not pd.isna(value) else False
