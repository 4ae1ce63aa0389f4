"""Configuration: one YAML file, validated on load.

Every section is a pydantic model that forbids unknown keys. A mistyped key is an error that
names the file, the dotted key and the closest valid key::

    vipml: configs/vip.yaml: unknown key 'tables.orders.colums' (did you mean 'tables.orders.columns'?)

Strings may refer to environment variables as ``${NAME}`` or ``${NAME:-default}``. A database
``connection`` is the exception: it keeps its ``${NAME}`` reference until the moment of connecting
(:func:`expand_env`), so a password in the environment never lands in a config a bundle keeps.
Relative paths
(``data_dir`` and each table's ``path``) are resolved against the folder of the config file, so a
config runs the same from any working folder.
"""

from __future__ import annotations

import datetime
import os
import re
import zoneinfo
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from vipml.errors import ConfigError, closest

DEFAULT_DATA_DIR = "../shared/data"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TableSource(StrictModel):
    """How one input file maps onto a table of the data contract.

    Every key is optional: a file named ``<table>.parquet`` or ``<table>.csv`` in the data folder
    that already uses the contract's column names needs no entry at all.
    """

    path: str | None = Field(
        None,
        description="File of this table, or folder of a Parquet dataset, relative to data_dir.",
    )
    format: Literal["auto", "csv", "tsv", "parquet", "whitespace", "dataset", "excel", "json"] = (
        Field(
            "auto",
            description="File format; 'auto' decides by the file extension (a folder is a Parquet "
            "dataset, hive-partitioned or not; .xlsx/.xls: excel, .json: json).",
        )
    )
    table: str | None = Field(
        None, description="Database table or view to read, as schema.name (or name)."
    )
    sql: str | None = Field(
        None, description="A SELECT whose rows are this table (instead of table:)."
    )
    connection: str | None = Field(
        None,
        description="Database URL for this table; default the top-level connection, e.g. "
        "${VIPML_DB_URL}.",
    )
    header: bool = Field(
        True, description="Whether the first line of a text file names the columns."
    )
    names: list[str] | None = Field(None, description="Column names of a file without header.")
    sep: str | None = Field(None, description="Field separator of a text file (default by format).")
    encoding: str = Field(
        "utf-8",
        description="Text encoding of a text file: utf-8 (a byte-order mark is skipped), cp949 "
        "or euc-kr for Korean exports, or 'auto' (utf-8, else cp949).",
    )
    header_row: int = Field(
        1, ge=1, description="Excel: the 1-based row holding the column names (SmartStore: 2)."
    )
    sheet: str | int = Field(0, description="Excel: the sheet, by name or 0-based position.")
    password_env: str | None = Field(
        None,
        description="Excel: name of the environment variable holding the file's password "
        "(the password itself never goes in the config).",
    )
    json_records: str | None = Field(
        None,
        description="JSON: the list inside each record that holds the rows, e.g. 'items' "
        "(one row per item, the record's own fields repeated, nested fields dotted: "
        "'buyer.member_group_no').",
    )
    hash_ids: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Contract id column -> source columns whose values together identify it "
        "(hashed, e.g. customer_id: [구매자, 구매자전화번호] for exports without a buyer id).",
    )
    per_customer: bool = Field(
        False,
        description="Keep one row per customer (the last row of each): a customers table read "
        "from an order export.",
    )
    columns: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Contract column -> source column, e.g. customer_id: CustomerID; or a list "
        "of source columns, the first non-empty one per row (after the column's value map; a "
        "value mapped to '' falls through), e.g. status: [클레임상태, 주문상태].",
    )
    date_formats: dict[str, str] = Field(
        default_factory=dict,
        description="Contract column -> strftime format, e.g. ordered_at: '%Y%m%d'.",
    )
    values: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Contract column -> {source value: contract value}; unlisted values stay as they are.",
    )
    constants: dict[str, Any] = Field(
        default_factory=dict, description="Contract column -> one value for every row."
    )
    row_ids: list[str] = Field(
        default_factory=list,
        description="Contract id columns filled with the 1-based row number (for files without ids).",
    )
    amount_from: list[str] | None = Field(
        None, description="[quantity, unit price] source columns: amount is their product."
    )
    flag_times: dict[str, str] = Field(
        default_factory=dict,
        description="Timestamp column -> 0/1 source column: the row's own time where the flag is 1.",
    )
    keep: list[str] | None = Field(
        None, description="Extra source columns to keep; default: every column not mapped."
    )
    cancel_prefix: str | None = Field(
        None,
        description="Order ids starting with this prefix are credit notes or voided orders "
        "(e.g. 'C'); prefix_means says which.",
    )
    prefix_means: Literal["void", "return"] = Field(
        "void",
        description="What an order id with cancel_prefix is: 'return' (a credit note: a return "
        "that nets against spend, flagged is_return) or 'void' (a cancelled order that counts "
        "nowhere, flagged is_cancelled).",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(
                    f"unknown text encoding {value!r}; e.g. utf-8, cp949, euc-kr or auto"
                ) from None
        return value

    @field_validator("amount_from")
    @classmethod
    def _two_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(value) != 2:
            raise ValueError(f"needs exactly two columns [quantity, unit_price], got {value}")
        return value

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        if value is not None and not _TABLE_NAME.match(value):
            raise ValueError(
                "give a table or view as schema.name or name (letters, digits, _); for anything "
                "else write the query under sql:"
            )
        return value

    @field_validator("sql")
    @classmethod
    def _one_select(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip().rstrip(";").strip()
        if not re.match(r"(?is)^(select|with)\b", text) or ";" in text:
            raise ValueError("give one SELECT (or WITH ... SELECT) statement")
        return text

    @model_validator(mode="after")
    def _one_source(self) -> TableSource:
        given = [k for k in ("path", "table", "sql") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of path, table and sql, not {' and '.join(given)}")
        return self

    @property
    def in_database(self) -> bool:
        """Whether this table is read from a database (``table`` or ``sql``)."""
        return self.table is not None or self.sql is not None


class TablesConfig(StrictModel):
    """Sources of the five contract tables; ``order_lines`` is a line-level export that is split
    into ``orders`` and ``order_items``."""

    customers: TableSource | None = None
    orders: TableSource | None = None
    order_items: TableSource | None = None
    events: TableSource | None = None
    offers: TableSource | None = None
    order_lines: TableSource | None = None


class VipConfig(StrictModel):
    """Who is a VIP at a given time: one rule, used by features and labels alike."""

    rule: Literal["top_share", "threshold", "tier"] = Field(
        "top_share", description="top_share of window spend, a spend threshold, or a tier column."
    )
    share: float = Field(
        0.1, gt=0, lt=1, description="top_share: the share of customers who are VIPs."
    )
    window_days: int = Field(365, gt=0, description="Spend is summed over [T - window_days, T).")
    threshold: float | None = Field(
        None, gt=0, description="threshold: net window spend that makes a VIP."
    )
    tier_column: str | None = Field(
        None, description="tier: the customers column holding the tier."
    )
    tier_values: list[str] = Field(
        default_factory=lambda: ["vip"], description="tier: values meaning VIP."
    )


FAMILIES = ("purchase", "vip", "btyd", "product", "behaviour", "offers", "static")


class FeaturesConfig(StrictModel):
    """Which features are built and over which windows."""

    windows: list[int] = Field(
        default_factory=lambda: [30, 90, 180, 365], description="Look-back windows in days."
    )
    families: (
        list[Literal["purchase", "vip", "btyd", "product", "behaviour", "offers", "static"]] | None
    ) = Field(
        None, description="Families to build; default: every family whose tables are present."
    )
    evening_hours: list[int] = Field(
        default_factory=lambda: [18, 24],
        description="[from, to) local hours that count as evening.",
    )
    view_events: list[str] = Field(
        default_factory=lambda: ["product_view", "view", "page_view"],
        description="event_type values that are product views.",
    )
    session_events: list[str] = Field(
        default_factory=lambda: ["session_start", "visit"],
        description="event_type values that start a session (when events have no session_id).",
    )
    static_exclude: list[str] = Field(
        default_factory=list, description="customers columns not to pass through as features."
    )

    @field_validator("windows")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or any(v <= 0 for v in value):
            raise ValueError("give one or more positive numbers of days")
        return sorted(set(value))


class LabelsConfig(StrictModel):
    """What is predicted and over which horizon."""

    horizon_days: int = Field(90, gt=0, description="Labels read [T, T + horizon_days).")
    acceptance_days: int = Field(
        14, gt=0, description="Upsell: an offer accepted within this many days."
    )
    offer_event: Literal["accepted", "clicked", "opened"] = Field(
        "accepted",
        description="Upsell: the response that counts (accepted_at, clicked_at, opened_at).",
    )
    observed_until: str | None = Field(
        None,
        description="Outcomes are known up to this date (default: the last dated row), e.g. the "
        "end of a campaign's measurement window.",
    )
    offer_cutoff: Literal["day", "week"] = Field(
        "week", description="Upsell: features as of the start of the send day or week."
    )
    population: Literal["not_vip", "all"] = Field(
        "not_vip",
        description="VIP task: who is a row. not_vip: customers known before T who are not VIP "
        "at T (conversion); all: every customer known before T (the label is VIP status at the "
        "end of the horizon).",
    )
    vip_spend: Literal["rule", "horizon"] = Field(
        "rule",
        description="VIP task: rule applies the vip rule at T + horizon; horizon makes VIP the "
        "top vip.share of the population by net spend inside [T, T + horizon).",
    )


class TrainConfig(StrictModel):
    """Time-ordered training: cutoffs, folds, LightGBM and calibration."""

    task: Literal["vip", "churn", "upsell", "uplift"] = Field(
        "vip",
        description="What the model predicts; uplift: the offer's incremental effect on "
        "acceptance, from offers with a treatment and a control group.",
    )
    uplift_learner: Literal[
        "s_learner",
        "two_model",
        "x_learner",
        "transformed_outcome",
        "shrunk_s_learner",
        "bagged_s_learner",
    ] = Field(
        "bagged_s_learner",
        description="Uplift: bagged_s_learner (train.uplift_bags seeded S-learners averaged "
        "with a penalised logistic model of arm x feature terms, blended with a constant "
        "log-odds effect where five-fold out-of-fold Qini shows it ranks clearly better; the "
        "best measured on Hillstrom, benchmarks/RESULTS.md), s_learner (one "
        "model, the arm as a feature), two_model (one model per arm and control), x_learner "
        "(imputed effects per group), transformed_outcome (class transformation, weighted by "
        "each arm's share), shrunk_s_learner (one S-learner per fold blended with the constant "
        "effect, the weight chosen on out-of-fold Qini of three folds).",
    )
    uplift_early_stopping: bool = Field(
        True,
        description="Uplift: stop early on a validation split (bagged_s_learner: on its folds, "
        "the final models running the folds' mean best round); false runs n_estimators rounds. "
        "The round that predicts the outcome best comes before the one that ranks its uplift "
        "best, which averaged seeded models can afford to run to (benchmarks/RESULTS.md).",
    )
    uplift_bags: int = Field(
        10,
        ge=1,
        le=100,
        description="Uplift, bagged_s_learner: seeded S-learners to average (they differ "
        "through bagging_fraction and feature_fraction below 1).",
    )
    uplift_linear_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Uplift, bagged_s_learner: the weight of a penalised logistic (or linear) "
        "model with arm x feature terms averaged with the seeded S-learners; it carries an "
        "effect that grows smoothly with a feature, which trees fit as a noisy difference. 0 "
        "leaves the trees alone (benchmarks/RESULTS.md).",
    )
    control_arm: str = Field(
        "control",
        description="Uplift: the label of the control group; offers with group: control count "
        "as control too.",
    )
    arm_column: str | None = Field(
        None,
        description="Uplift: the offers column whose values are the arms (offer_type, "
        "campaign_id, category or a kept column); unset: every offer sent is one arm, treatment.",
    )
    uplift_outcome: Literal["event", "revenue"] = Field(
        "event",
        description="Uplift: event (labels.offer_event within labels.acceptance_days, 0/1) or "
        "revenue (the customer's spend in that window).",
    )
    revenue_column: str | None = Field(
        None,
        description="Uplift with revenue: an offers column holding each offer's revenue in the "
        "window (e.g. Hillstrom's spend); unset: the orders' amounts in the window.",
    )
    cutoffs: list[str] | None = Field(None, description="Explicit cutoff dates, oldest first.")
    n_cutoffs: int = Field(6, ge=3, description="Cutoffs to plan when none are listed (>= 3).")
    step_days: int | None = Field(
        None,
        gt=0,
        description="Days between training cutoffs; default a third of the horizon (their label "
        "windows may overlap each other; validation and test stay a horizon apart).",
    )
    refit: bool = Field(
        True,
        description="After the test fold is measured, ship a model refit on every cutoff up to "
        "the newest one whose label window ends at the data's end.",
    )
    strict_horizon: bool = Field(
        False, description="A horizon the history cannot hold is an error, not shortened."
    )
    last_cutoff: str | None = Field(None, description="Latest cutoff; default: data end - horizon.")
    fold_horizon_days: int | None = Field(
        None,
        gt=0,
        description="With test_cutoff: the horizon of the training and validation folds.",
    )
    test_cutoff: str | None = Field(
        None,
        description="A fixed test cutoff with the full horizon; earlier folds use the longest "
        "horizon whose label windows end before it.",
    )
    min_history_days: int = Field(30, ge=0, description="History before the first cutoff.")
    min_positives: int = Field(20, ge=1, description="Positives needed in each fold.")
    calibration: Literal["auto", "isotonic", "platt", "none"] = Field(
        "auto",
        description="auto picks isotonic or Platt by cross-validated Brier on the validation fold.",
    )
    num_leaves: int = Field(
        7, ge=2, description="LightGBM: leaves per tree (small trees generalise)."
    )
    learning_rate: float = Field(0.06, gt=0, le=1)
    n_estimators: int = Field(
        2000, ge=1, description="Upper bound; early stopping picks the number."
    )
    early_stopping_rounds: int = Field(100, ge=1)
    min_child_samples: int = Field(200, ge=1, description="LightGBM: rows per leaf at least.")
    feature_fraction: float = Field(0.7, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    lambda_l2: float = Field(10.0, ge=0)


class GeneratedConfig(StrictModel):
    """A generated retailer to use when no data folder is given (demos, tests, examples)."""

    customers: int = Field(20_000, ge=10, description="Number of customers to generate.")
    seed: int = Field(0, description="Seed of the generator.")
    start: str = Field("2023-01-01", description="First day of activity.")
    end: str = Field("2025-01-01", description="Day after the last activity.")


class TrackingConfig(StrictModel):
    """MLflow tracking: an embedded SQLite store by default, any URI, or off."""

    enabled: bool = Field(True, description="Log runs to MLflow.")
    uri: str | None = Field(
        None, description="Tracking URI; default MLFLOW_TRACKING_URI, else ./mlflow.db."
    )
    experiment: str | None = Field(None, description="Experiment name; default vipml-<task>.")
    registered_model: str | None = Field(
        None, description="Registered model name; default the task."
    )


PlayTheme = Literal[
    "welcome", "win_back", "replenishment", "loyalty", "premium", "category", "app", "content"
]
# a play of this theme never goes to a customer of this segment (score.playbook is checked)
CONTRADICTIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"win_back"}),
    "at_risk": frozenset({"welcome"}),
    "high_value": frozenset({"welcome"}),
}


class Play(StrictModel):
    """A recommended play and the offer type it uses.

    ``en`` and ``ko`` may name the customer's own category as ``{category}`` (filled from the
    features: the browsed category for browsing plays and category-interest customers, else the
    most bought one). ``theme`` says what kind of play it is (a new customer never gets a
    ``win_back`` play, an at-risk or high-value one never a ``welcome`` play); ``replenishment``
    plays are sent when the customer's own purchase cycle says the next order is due."""

    en: str
    ko: str
    offer_type: Literal["upsell", "cross_sell", "bundle"] = "upsell"
    theme: PlayTheme | None = None
    replenishment: bool = False


def _play(en: str, ko: str, offer_type: str, theme: str, replenishment: bool = False) -> Play:
    return Play(en=en, ko=ko, offer_type=offer_type, theme=theme, replenishment=replenishment)


def _default_playbook() -> dict[str, Play]:
    """The domain's plays by segment (``<segment>``) and by segment and the actionable driver the
    customer lags the VIPs most on (``<segment>.<driver>``); a pair without its own play falls
    back to the segment's."""
    p = _play
    return {
        "new": p(
            "Welcome-coupon upsell with a starter accessory bundle",
            "웰컴 쿠폰 업셀 + 기본 액세서리 번들",
            "bundle",
            "welcome",
        ),
        "new.browsing": p(
            "Welcome coupon with new arrivals in {category}",
            "{category} 신상품 소개 + 웰컴 쿠폰",
            "upsell",
            "welcome",
        ),
        "new.recency": p(
            "Follow-up message seven days after sign-up with the sign-up coupon",
            "가입 7일 후 가입 쿠폰 후속 메시지",
            "bundle",
            "welcome",
        ),
        "new.repeat_purchase": p(
            "Second-order welcome coupon on a {category} accessory and consumable bundle",
            "두 번째 구매 웰컴 쿠폰: {category} 액세서리·소모품 번들",
            "bundle",
            "welcome",
        ),
        "new.app_time": p(
            "App-only welcome benefit with how-to content",
            "앱 전용 웰컴 혜택 + 사용법 콘텐츠",
            "upsell",
            "welcome",
        ),
        "new.category_breadth": p(
            "Recommended combinations that go with {category}",
            "{category}와(과) 어울리는 추천 조합",
            "cross_sell",
            "welcome",
        ),
        "repeat": p(
            "Member-only benefit on the premium line of past purchases",
            "구매 이력 기반 회원 전용 혜택 + 프리미엄 라인 제안",
            "upsell",
            "loyalty",
        ),
        "repeat.repeat_purchase": p(
            "Replenishment reminder for {category}, timed to the customer's own purchase cycle",
            "고객의 구매 주기에 맞춘 {category} 재구매 알림",
            "bundle",
            "replenishment",
            True,
        ),
        "repeat.recency": p(
            "Replenishment reminder with a repeat-buyer-only benefit",
            "재구매 고객 전용 혜택과 함께 구매 주기 맞춤 재구매 알림",
            "bundle",
            "replenishment",
            True,
        ),
        "repeat.browsing": p(
            "Push new arrivals in {category}, the category the customer browses",
            "탐색한 카테고리({category})의 신상품 푸시",
            "upsell",
            "category",
        ),
        "repeat.app_time": p(
            "In-app-only content and benefits", "앱 전용 콘텐츠 및 혜택", "upsell", "app"
        ),
        "repeat.category_breadth": p(
            "Offer based on past purchases: complements that go with {category}",
            "구매 이력 기반 제안: {category}와(과) 어울리는 연관 상품",
            "cross_sell",
            "loyalty",
        ),
        "at_risk": p(
            "Win-back coupon with a limited-time promotion",
            "한정 기간 프로모션 + 재방문 쿠폰",
            "cross_sell",
            "win_back",
        ),
        "at_risk.recency": p(
            "Win-back coupon with news of new or improved products in {category}",
            "{category} 신상품·개선 제품 소식과 재방문 쿠폰",
            "cross_sell",
            "win_back",
        ),
        "at_risk.browsing": p(
            "News of new or improved products in {category}",
            "{category} 신상품·개선 제품 소식",
            "upsell",
            "win_back",
        ),
        "at_risk.repeat_purchase": p(
            "Limited-time promotion on {category}, the customer's usual category",
            "평소 구매하던 {category} 한정 기간 프로모션",
            "bundle",
            "win_back",
        ),
        "at_risk.app_time": p(
            "Limited-time app-only promotion",
            "앱 전용 한정 기간 프로모션",
            "cross_sell",
            "win_back",
        ),
        "high_value": p(
            "VIP concierge: limited editions and customisation",
            "VIP 컨시어지: 한정판 및 맞춤 제안",
            "upsell",
            "premium",
        ),
        "high_value.browsing": p(
            "Early access to limited editions in {category}",
            "{category} 한정판 우선 구매 기회",
            "upsell",
            "premium",
        ),
        "high_value.category_breadth": p(
            "Brand-value content with a concierge pick beyond {category}",
            "브랜드 가치 콘텐츠 + {category} 외 컨시어지 추천",
            "cross_sell",
            "premium",
        ),
        "high_value.app_time": p(
            "VIP in-app concierge benefits", "앱 전용 VIP 컨시어지 혜택", "upsell", "premium"
        ),
        "category_interest": p(
            "New-arrival alert with a higher-spec product in {category}",
            "{category} 신상품 알림 + 상위 사양 제안",
            "upsell",
            "category",
        ),
        "category_interest.repeat_purchase": p(
            "Higher-spec new product in {category} with a member benefit",
            "회원 혜택과 함께 {category} 상위 사양 신제품 제안",
            "upsell",
            "category",
        ),
        "category_interest.recency": p(
            "Review-based content on the best of {category}",
            "{category} 인기 상품 리뷰 콘텐츠",
            "upsell",
            "content",
        ),
        "category_interest.category_breadth": p(
            "Complements that go with {category}",
            "{category}와(과) 어울리는 연관 상품",
            "cross_sell",
            "category",
        ),
        "other": p(
            "Recommended combinations from {category}",
            "{category} 추천 조합 콘텐츠",
            "bundle",
            "content",
        ),
    }


def _default_drivers() -> dict[str, list[str]]:
    """The signals CRM can move (domain step 2), each by the feature-name prefixes it covers."""
    return {
        "browsing": ["views_", "sessions_", "top_view_category_share", "view_category_count"],
        "recency": ["recency_days", "days_since_last_visit", "overdue_ratio"],
        "repeat_purchase": ["orders_", "interval_", "purchase_days", "days_first_to_second"],
        "app_time": ["app_minutes"],
        "category_breadth": ["category_count", "category_entropy", "multi_item_order_share"],
    }


def _default_driver_plays() -> dict[str, Play]:
    """Domain step 2: a CRM scenario per driver, by feature-name prefix (the last match wins)."""
    return {
        "spend": Play(
            en="Premium line or higher model with member-only benefits",
            ko="회원 전용 혜택과 함께 프리미엄 라인·상위 모델 제안",
            offer_type="upsell",
        ),
        "net_spend": Play(
            en="Premium line or higher model with member-only benefits",
            ko="회원 전용 혜택과 함께 프리미엄 라인·상위 모델 제안",
            offer_type="upsell",
        ),
        "aov": Play(
            en="Bundle that lifts the basket: the usual order plus a premium add-on",
            ko="평소 주문에 프리미엄 추가 상품을 더한 번들",
            offer_type="bundle",
        ),
        "max_order_value": Play(
            en="Limited editions and customisation for big-ticket buyers",
            ko="고액 구매 고객을 위한 한정판 및 맞춤 제안",
            offer_type="upsell",
        ),
        "recency": Play(
            en="Win-back coupon with news of new or improved products",
            ko="신상품·개선 제품 소식과 재방문 쿠폰",
            offer_type="cross_sell",
        ),
        "days_since_last_visit": Play(
            en="Win-back coupon with news of new or improved products",
            ko="신상품·개선 제품 소식과 재방문 쿠폰",
            offer_type="cross_sell",
        ),
        "interval": Play(
            en="Replenishment reminder timed to the customer's own purchase cycle",
            ko="고객의 구매 주기에 맞춘 재구매 알림",
            offer_type="bundle",
        ),
        "overdue": Play(
            en="Replenishment reminder timed to the customer's own purchase cycle",
            ko="고객의 구매 주기에 맞춘 재구매 알림",
            offer_type="bundle",
        ),
        "top_category": Play(
            en="Higher-spec new products in the favourite category",
            ko="선호 카테고리의 상위 사양 신제품 제안",
            offer_type="upsell",
        ),
        "category": Play(
            en="Complements from the categories the customer has not tried yet",
            ko="아직 구매하지 않은 카테고리의 연관 상품 제안",
            offer_type="cross_sell",
        ),
        "opened_rate": Play(
            en='E-mail built on purchase history ("goes well with what you bought")',
            ko='구매 이력 기반 이메일("구매하신 상품과 잘 어울려요")',
            offer_type="cross_sell",
        ),
        "clicked_rate": Play(
            en='E-mail built on purchase history ("goes well with what you bought")',
            ko='구매 이력 기반 이메일("구매하신 상품과 잘 어울려요")',
            offer_type="cross_sell",
        ),
        "accepted_rate": Play(
            en="Next offer of the kind the customer accepted before",
            ko="이전에 수락한 유형의 다음 제안",
            offer_type="upsell",
        ),
        "top_channel": Play(
            en="Reach the customer on the channel they buy through",
            ko="고객이 주로 구매하는 채널로 연락",
            offer_type="cross_sell",
        ),
        "tp_": Play(
            en="Find look-alike prospects with this attribute (third-party data)",
            ko="이 속성을 가진 유사 잠재 고객 찾기(제3자 데이터)",
            offer_type="upsell",
        ),
        "views": Play(
            en="Push new arrivals in the categories the customer browses",
            ko="탐색한 카테고리의 신상품 푸시",
            offer_type="upsell",
        ),
        "sessions": Play(
            en="Push new arrivals in the categories the customer browses",
            ko="탐색한 카테고리의 신상품 푸시",
            offer_type="upsell",
        ),
        "tenure": Play(
            en="Follow-up message seven days after sign-up with a sign-up coupon",
            ko="가입 7일 후 가입 쿠폰 후속 메시지",
            offer_type="bundle",
        ),
        "orders": Play(
            en="Repeat-buyer-only benefits and promotions",
            ko="재구매 고객 전용 혜택 및 프로모션",
            offer_type="upsell",
        ),
        "app_minutes": Play(
            en="In-app-only content and benefits", ko="앱 전용 콘텐츠 및 혜택", offer_type="upsell"
        ),
    }


class SegmentRules(StrictModel):
    """Primary segment by rules, first match in ``order`` wins (thresholds are the retailer's)."""

    order: list[Literal["high_value", "at_risk", "category_interest", "new", "repeat"]] = Field(
        default_factory=lambda: ["high_value", "at_risk", "category_interest", "new", "repeat"]
    )
    high_value_share: float = Field(
        0.1, gt=0, lt=1, description="Top share by 365-day spend (or VIP)."
    )
    at_risk_days: float = Field(
        120, gt=0, description="Days since the last order that make a customer at risk."
    )
    at_risk_overdue: float = Field(
        2.0, gt=0, description="Or: days since the last order / own mean interval."
    )
    at_risk_churn: float = Field(
        0.5, gt=0, lt=1, description="Or: churn score, when a churn bundle is given."
    )
    new_days: float = Field(90, gt=0, description="First order (or sign-up) within this many days.")
    interest_share: float = Field(
        0.6, gt=0, le=1, description="Share of recent views in one category."
    )
    interest_views: float = Field(5, ge=0, description="And at least this many views in 90 days.")


class OfferCandidate(StrictModel):
    """An offer the upsell scorer ranks for every customer."""

    offer_type: Literal["upsell", "cross_sell", "bundle"]
    channel: str = "email"
    discount_pct: float = 10.0
    cost: float | None = None


class MessagingRules(StrictModel):
    """Rules for advertising messages. ``rules: auto`` applies the Korean rules when the config's
    ``locale`` is ``ko``: advertising only between ``ad_hours`` Korea time unless the customer gave
    night consent, texts that start with ``ad_prefix`` and end with the ``opt_out`` line, and
    KakaoTalk offers only as FriendTalk / brand messages (AlimTalk carries information only)."""

    rules: Literal["auto", "ko", "none"] = Field("auto", description="auto: ko when locale is ko.")
    timezone: str = Field("Asia/Seoul", description="Time zone of send times and ad hours.")
    ad_hours: tuple[int, int] = Field(
        (8, 21), description="Advertising allowed from the first hour to the second (exclusive)."
    )
    ad_prefix: str = Field("(광고)", description="First words of an advertising text.")
    opt_out: str = Field(
        "무료수신거부 080-000-0000", description="Opt-out line closing an advertising text."
    )
    kakao_type: Literal["friendtalk", "brand_message"] = Field(
        "friendtalk", description="KakaoTalk message type for offers (never AlimTalk)."
    )

    @field_validator("ad_hours")
    @classmethod
    def _hours(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not (0 <= value[0] < value[1] <= 24):
            raise ValueError(f"ad_hours must be two hours 0 <= start < end <= 24, got {value}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value.upper() != "UTC" and value not in _zones():
            raise ValueError(f"unknown time zone '{value}'")
        return value


class ScoreConfig(StrictModel):
    """Target lists: selection, control group, value and cost, segments and plays."""

    select_by: Literal["auto", "score", "expected_value", "uplift"] = Field(
        "auto",
        description="How to rank for selection. auto: customers whose expected incremental value "
        "is positive, ranked by it (from the uplift bundle when one is given), or the top tier "
        "when neither score.value nor a value feature is known; uplift needs an uplift bundle and "
        "selects the customers with the highest positive uplift (those the offer persuades).",
    )
    capacity: int | None = Field(None, ge=0, description="At most this many contacts.")
    budget: float | None = Field(None, ge=0, description="At most this much contact cost.")
    segment_caps: dict[str, int] = Field(
        default_factory=dict, description="At most this many per segment."
    )
    min_score: float = Field(0.0, ge=0, le=1, description="Select only scores at least this high.")
    control_share: float = Field(
        0.1, ge=0, lt=1, description="Share of the selected held out, by tier."
    )
    value: float = Field(
        50.0, ge=0, description="Value of a conversion when no value feature exists."
    )
    value_feature: str | None = Field("aov_all", description="Per-customer value of a conversion.")
    cost: float = Field(1.0, ge=0, description="Cost of one contact.")
    tiers: list[float] = Field(
        default_factory=lambda: [0.1, 0.3], description="Tier A, B edges by percentile."
    )
    drift_threshold: float = Field(
        0.25, gt=0, description="Warn when a feature's PSI is above this."
    )
    offers: list[OfferCandidate] = Field(
        default_factory=lambda: [
            OfferCandidate(offer_type=t) for t in ("upsell", "cross_sell", "bundle")
        ]
    )
    segments: SegmentRules = Field(default_factory=SegmentRules)
    playbook: dict[str, Play] = Field(
        default_factory=_default_playbook,
        description="Plays keyed by segment (the segment's play) and by '<segment>.<driver>' "
        "(the play when that actionable driver is where the customer lags the VIPs most).",
    )
    driver_plays: dict[str, Play] = Field(
        default_factory=_default_driver_plays,
        description="The report's play per driver feature (by name prefix, domain step 2).",
    )
    drivers: dict[str, list[str]] = Field(
        default_factory=_default_drivers,
        description="Actionable drivers (signals CRM can move), each by feature-name prefixes.",
    )
    channels: list[Literal["email", "sms", "push", "kakao"]] = Field(
        default_factory=lambda: ["email", "push", "kakao", "sms"],
        min_length=1,
        description="Channels to choose from, in order of preference on a tie.",
    )
    channel_prior: float = Field(
        20.0,
        ge=0,
        description="Offers' worth of the population's response rate a customer's own channel "
        "history is shrunk towards (more: trust thin histories less).",
    )
    campaign_start: str | None = Field(
        None, description="First day of the campaign window (YYYY-MM-DD); default the cutoff."
    )
    campaign_days: int = Field(14, ge=1, description="Length of the campaign window in days.")
    replenishment_lead_days: int = Field(
        3,
        ge=0,
        description="Replenishment plays: send this many days before the next order is due.",
    )
    send_hour: int = Field(
        10, ge=0, le=23, description="Hour of the send time, local time (score.messaging.timezone)."
    )
    messaging: MessagingRules = Field(default_factory=lambda: MessagingRules())

    @field_validator("campaign_start")
    @classmethod
    def _campaign_day(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                day = datetime.date.fromisoformat(str(value))
            except ValueError:
                raise ValueError(
                    f"campaign_start must be a date YYYY-MM-DD, got '{value}'"
                ) from None
            return day.isoformat()
        return value

    @model_validator(mode="after")
    def _check_playbook(self) -> ScoreConfig:
        known = {*SegmentRules.model_fields["order"].annotation.__args__[0].__args__, "other"}
        for key, play in self.playbook.items():
            segment, _, driver = key.partition(".")
            if segment not in known:
                near = closest(segment, sorted(known))
                hint = f" (did you mean '{near}'?)" if near else ""
                raise ValueError(
                    f"score.playbook.{key}: unknown segment '{segment}'{hint}; allowed: "
                    f"{', '.join(sorted(known))}"
                )
            if driver and driver not in self.drivers:
                raise ValueError(
                    f"score.playbook.{key}: unknown driver '{driver}'; allowed: "
                    f"{', '.join(sorted(self.drivers))} (score.drivers)"
                )
            if play.theme in CONTRADICTIONS.get(segment, ()):
                raise ValueError(
                    f"score.playbook.{key}: a '{play.theme}' play contradicts the segment "
                    f"'{segment}'. Fix: give it another play or theme"
                )
        if "other" not in self.playbook:
            raise ValueError("score.playbook has no 'other' play. Fix: add score.playbook.other")
        return self


class ReportConfig(StrictModel):
    """The driver report for marketers."""

    min_group: int = Field(
        30,
        ge=1,
        description="Groups (segments, VIPs, converters) with fewer customers are suppressed in tables.",
    )
    top_drivers: int = Field(8, ge=1, le=30, description="Drivers shown in the report.")
    curves: int = Field(
        4, ge=0, le=12, description="Top drivers that get a score-along-value plot."
    )
    sample: int = Field(
        50_000,
        ge=1_000,
        description="Customers (seeded sample) used for model contributions; comparisons use all.",
    )


class ValueConfig(StrictModel):
    """Expected value per customer: spend over the horizon with an interval, and 12-month CLV."""

    margin: float = Field(
        0.3, ge=0, le=1, description="Gross margin on spend; clv_12m = margin x 12-month spend."
    )
    interval: float = Field(
        0.8,
        gt=0.5,
        lt=1,
        description="Coverage of the expected_spend interval (spend_low, spend_high).",
    )
    spend_model: Literal["auto", "hurdle", "tweedie"] = Field(
        "auto",
        description="auto picks by validation Poisson deviance; hurdle is P(buy) x spend when "
        "buying; tweedie one LightGBM with a Tweedie objective.",
    )
    blend: bool = Field(
        True,
        description="Let BG/NBD + Gamma-Gamma at the value horizon enter expected_spend and "
        "expected_orders (see with_btyd); false: LightGBM alone.",
    )
    with_btyd: Literal["auto", "lightgbm", "blend", "boost"] = Field(
        "auto",
        description="How BG/NBD + Gamma-Gamma enters: auto picks by validation Poisson deviance "
        "(blend or boost, kept when it cuts LightGBM's alone by 1%); blend a weighted mean with "
        "LightGBM; boost LightGBM started at log BTYD; lightgbm none.",
    )
    enabled: bool = Field(True, description="Train the expected-value models with the bundle.")


class Config(StrictModel):
    """The whole configuration of a vipml run."""

    name: str | None = Field(None, description="A name for runs made with this config.")
    description: str | None = None
    timezone: str = Field("UTC", description="Time zone of timestamps given without an offset.")
    currency: str = Field("USD", description="Currency of every amount, shown in reports.")
    locale: Literal["en", "ko"] = Field(
        "en", description="Market of the campaigns: ko applies the Korean messaging rules."
    )
    seed: int = Field(0, description="Seed of every random choice: sampling, splits, models.")
    data_dir: str | None = Field(
        None, description="Folder of the input files, relative to this file; default: --data."
    )
    connection: str | None = Field(
        None,
        description="Database URL of the tables read by table: or sql:, e.g. ${VIPML_DB_URL}; "
        "kept as written until connecting, so the password stays in the environment.",
    )
    tables: TablesConfig = Field(default_factory=TablesConfig)
    generated: GeneratedConfig | None = Field(
        None, description="Use a generated retailer when neither --data nor data_dir is given."
    )
    vip: VipConfig = Field(default_factory=VipConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    value: ValueConfig = Field(default_factory=ValueConfig)
    undated_customers_known: bool = Field(
        False,
        description="Customers rows without signup_at are known at every cutoff (a list of existing "
        "customers); by default a customer is known from its first dated row.",
    )
    required_tables: list[Literal["customers", "orders", "order_items", "events", "offers"]] = (
        Field(
            default_factory=lambda: ["orders"],
            description="Tables without which the data is not usable.",
        )
    )

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str | None = PrivateAttr(default=None)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value.upper() == "UTC":
            return "UTC"
        if value not in _zones():
            near = closest(value, _zones())
            hint = f" (did you mean '{near}'?)" if near else ""
            raise ValueError(f"unknown time zone '{value}'{hint}")
        return value

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in this config are resolved against."""
        return self._base_dir

    @property
    def source(self) -> str | None:
        """The file this config was read from, if any."""
        return self._source

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """Resolve a path of this config against its folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self._base_dir / p).resolve()


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def expand_env(value: str) -> str:
    """``${NAME}`` and ``${NAME:-default}`` replaced by the environment's values."""
    return _ENV.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):
        return expand_env(value)
    if isinstance(value, dict):
        # a connection keeps its ${NAME}: expanded when connecting, never stored expanded
        return {k: v if k == "connection" else _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid keys at ``loc`` inside ``model`` (walks nested models, skips dict keys)."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def format_validation_error(
    error: ValidationError, model: type[BaseModel], source: str | None
) -> str:
    """Turn a pydantic error into lines that name the file, the dotted key and the fix."""
    where = f"{source}: " if source else ""
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(p) for p in loc)
        if item["type"] == "extra_forbidden":
            near = closest(str(loc[-1]), _fields_at(model, loc[:-1]))
            hint = f" (did you mean '{'.'.join([*map(str, loc[:-1]), near])}'?)" if near else ""
            valid = _fields_at(model, loc[:-1])
            lines.append(f"{where}unknown key '{key}'{hint}; valid keys here: {', '.join(valid)}")
        else:
            msg = item["msg"].removeprefix("Value error, ")
            lines.append(f"{where}'{key}' = {item.get('input')!r}: {msg}")
    return "\n".join(lines)


MAX_CONFIG_BYTES = 1_000_000
"""Largest config file read (a config is a few kilobytes)."""
MAX_CONFIG_NODES = 100_000
"""Most values a config may hold once its YAML aliases are expanded."""


def _read_yaml(path: Path, source: str) -> Any:
    """Parse a YAML file as untrusted input: size capped, UTF-8 only, and the document's size
    after alias expansion counted on the node graph (cheap: shared nodes are counted once per
    use without being copied) before any Python object is built."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{source}: the config file is {size:,} bytes, more than the limit of "
                f"{MAX_CONFIG_BYTES:,}\nFix: give the YAML config file (a few kilobytes)"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the config file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source}: the config file is not UTF-8 text (byte {exc.start}: "
            f"{raw[exc.start : exc.start + 1]!r})\nFix: save the file as UTF-8"
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _count_nodes(node, source)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: the YAML document is nested too deeply") from None


def _count_nodes(root: yaml.Node, source: str) -> int:
    """Values in the document once aliases are expanded; refuse past :data:`MAX_CONFIG_NODES`
    and refuse an alias that refers to itself."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def count(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"{source}: a YAML alias refers to itself; write the values out")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(count(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(count(k) + count(v) for k, v in node.value)
        active.discard(key)
        sizes[key] = total
        if total > MAX_CONFIG_NODES:
            raise ConfigError(
                f"{source}: the YAML document expands to more than {MAX_CONFIG_NODES:,} values "
                "(through its aliases), the limit for a config\nFix: write a config without "
                "repeated aliases"
            )
        return total

    return count(root)


def load_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Config:
    """Read and validate a YAML config.

    Parameters
    ----------
    path
        The YAML file; None gives the defaults.
    **overrides
        Top-level keys that replace the file's values.

    Returns
    -------
    Config
        The validated config; relative paths in it resolve against the file's folder.

    Raises
    ------
    ConfigError
        When the file is missing, is not YAML, or holds an unknown key or a bad value.
    """
    raw: dict[str, Any] = {}
    source = None
    base = Path.cwd()
    if path is not None:
        p = Path(path)
        source = str(path)
        if not p.is_file():
            raise ConfigError(f"{source}: config file not found (working folder: {Path.cwd()})")
        loaded = _read_yaml(p, source)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{source}: expected a mapping of keys at the top, got {type(loaded).__name__}"
            )
        raw = loaded
        base = p.resolve().parent
    raw = _expand_env({**raw, **overrides})
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, Config, source)) from None
    config._base_dir = base
    config._source = source
    return config


def as_config(config: Config | str | os.PathLike[str] | None) -> Config:
    """Accept a Config, a path to one, or None (defaults)."""
    if isinstance(config, Config):
        return config
    return load_config(config)


def redact_url(url: str) -> str:
    """A database URL without its password (``user:secret@`` -> ``user@``, ``password=...``
    dropped); ``${NAME}`` references are kept as they are."""
    out = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*):[^@/?#]*@", r"\1@", url.strip())
    if "://" in out:
        out = re.sub(
            r"(?i)([?&])password=[^&#]*(&)?", lambda m: m.group(1) if m.group(2) else "", out
        )
    else:  # key=value form
        out = re.sub(r"(?i)\bpassword\s*=\s*('[^']*'|\S*)\s*", "", out)
    return out.strip()


def config_record(config: Config, *, data: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The config as a bundle keeps it: where the data was read from, without passwords.

    ``data_dir`` becomes absolute (``data``, the folder given on the command line, wins), and a
    table's relative ``path`` that was resolved against the config's folder becomes absolute,
    so the data mapping works from any working folder. Database connections keep their
    ``${NAME}`` references and lose any password written in them.
    """
    raw = config.model_dump(mode="json")
    folder = None
    if data is not None:
        folder = Path(data).expanduser().resolve()
    elif config.data_dir:
        folder = config.resolve(config.data_dir)
    if folder is not None:
        raw["data_dir"] = str(folder)
    if raw.get("connection"):
        raw["connection"] = redact_url(raw["connection"])
    for src in (raw.get("tables") or {}).values():
        if not src:
            continue
        if src.get("path") and folder is None:
            src["path"] = str(config.resolve(src["path"]))
        if src.get("connection"):
            src["connection"] = redact_url(src["connection"])
    return raw


def default_data_dir() -> Path:
    """The shared public data: ``VIPML_DATA_DIR``, else ``../shared/data``."""
    return Path(os.environ.get("VIPML_DATA_DIR") or DEFAULT_DATA_DIR).expanduser().resolve()
