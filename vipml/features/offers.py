"""Offers family: offers received, how the customer responded by offer type, the last accepted type.

An offer counts as received when ``sent_at < as_of`` and it was not held out (group control);
it counts as opened, clicked or accepted only when that happened before ``as_of`` too, so a
response after the cutoff is never seen. A response stamped at its offer's send instant (a 0/1
flag turned into a time, as Hillstrom's visit and conversion: the response came at some moment
of the acceptance window, not when the offer went out) counts only from the end of that window,
``sent_at + labels.acceptance_days``, when it is known to have happened. The upsell and uplift
tasks build each offer's features as of the start of its send day or week, so a row never sees
a response at or after its own offer was sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vipml.features.base import Context, Family, days_between, ratio, us
from vipml.features.engine import Timeline
from vipml.features.registry import Feature
from vipml.io import OFFER_TYPES
from vipml.windows import to_us

F = "offers"
EVENTS = ("opened", "clicked", "accepted")
_KO_EVENT = {"opened": "열람", "clicked": "클릭", "accepted": "수락"}
_KO_TYPE = {"upsell": "업셀", "cross_sell": "크로스셀", "bundle": "번들"}


def _f(name: str, en: str, ko: str, unit: str = "count", fill: float | None = 0.0, **kw) -> Feature:
    return Feature(name=name, family=F, table="offers", en=en, ko=ko, unit=unit, fill=fill, **kw)


@dataclass
class _State:
    sent: Timeline
    responses: dict[str, Timeline]
    types: np.ndarray


class OffersFamily(Family):
    """Offers received and the response rates per offer type."""

    name = F
    tables = ("offers",)

    def _events(self, ctx: Context) -> list[str]:
        return [e for e in EVENTS if f"{e}_at" in ctx.tables.offers]

    def features(self, ctx: Context) -> list[Feature]:
        out = [
            _f("offers_received_all", "Offers received", "받은 오퍼 수"),
            _f(
                "offers_received_90d",
                "Offers received in the last 90 days",
                "최근 90일 받은 오퍼 수",
            ),
            _f(
                "days_since_last_offer",
                "Days since the last offer",
                "마지막 오퍼 후 경과 일수",
                "days",
                None,
            ),
        ]
        for e in self._events(ctx):
            out.append(
                _f(
                    f"{e}_rate_all",
                    f"Share of offers {e}",
                    f"오퍼 {_KO_EVENT[e]} 비율",
                    "ratio",
                    None,
                )
            )
            for kind in OFFER_TYPES:
                out.append(
                    _f(
                        f"{e}_rate_{kind}",
                        f"Share of {kind.replace('_', '-')} offers {e}",
                        f"{_KO_TYPE[kind]} 오퍼 {_KO_EVENT[e]} 비율",
                        "ratio",
                        None,
                    )
                )
        if "accepted" in self._events(ctx):
            out += [
                _f(
                    "days_since_last_accept",
                    "Days since the last accepted offer",
                    "마지막 오퍼 수락 후 경과 일수",
                    "days",
                    None,
                ),
                _f(
                    "last_accepted_offer_type",
                    "Type of the last accepted offer",
                    "마지막으로 수락한 오퍼 유형",
                    "category",
                    None,
                    kind="categorical",
                ),
            ]
        return out

    def prepare(self, ctx: Context) -> _State:
        offers = ctx.tables.offers
        codes = ctx.table_codes("offers")
        if "group" in offers:
            delivered = (offers["group"] != "control").to_numpy()
            offers, codes = offers[delivered].reset_index(drop=True), codes[delivered]
        types = offers["offer_type"].astype("str").to_numpy()
        cols = {"one": np.ones(len(offers))}
        for kind in OFFER_TYPES:
            cols[kind] = (types == kind).astype(np.float64)
        n = len(ctx.customers)
        sent = Timeline(codes, us(offers["sent_at"]), n, cols, stable=True)
        responses = {}
        known_after = pd.Timedelta(days=ctx.config.labels.acceptance_days)
        for e in self._events(ctx):
            at = offers[f"{e}_at"]
            # a flag stamped at the send instant is known only when the window closes
            at = at.where(at != offers["sent_at"], offers["sent_at"] + known_after)
            ok = at.notna().to_numpy()
            rcols = {k: v[ok] for k, v in cols.items()}
            rcols["type_code"] = pd.Index(OFFER_TYPES).get_indexer(types[ok]).astype(np.float64)
            responses[e] = Timeline(codes[ok], us(at[ok]), n, rcols, stable=True)
        return _State(sent, responses, types)

    def compute(self, state: _State, ctx: Context, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        sent = state.sent
        lo, hi = sent.window(as_of, None)
        received = sent.sum("one", lo, hi)
        out["offers_received_all"] = received
        out["offers_received_90d"] = sent.sum("one", *sent.window(as_of, 90))
        out["days_since_last_offer"] = days_between(to_us(as_of), sent.last(sent.times, hi))
        for e, tl in state.responses.items():
            rlo, rhi = tl.window(as_of, None)
            out[f"{e}_rate_all"] = ratio(tl.sum("one", rlo, rhi), received)
            for kind in OFFER_TYPES:
                out[f"{e}_rate_{kind}"] = ratio(tl.sum(kind, rlo, rhi), sent.sum(kind, lo, hi))
            if e == "accepted":
                out["days_since_last_accept"] = days_between(to_us(as_of), tl.last(tl.times, rhi))
                code = tl.last(tl.column("type_code"), rhi)
                names = np.array(OFFER_TYPES, dtype=object)
                out["last_accepted_offer_type"] = np.where(
                    np.isnan(code), None, names[np.nan_to_num(code).astype(int)]
                )
        return out
