"""Segment profiles, names a marketer can read, and per-customer reason codes.

Effects are measured in the robust-scaled space: 0 is everyone's median, 1 is one
interquartile range. A segment's name lists the features whose segment mean is furthest
from everyone's, in words (for example "High spend, frequent, recent").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# feature -> (word when the segment is above everyone, word when below)
WORDS = {
    "monetary": ("high spend", "low spend"),
    "frequency": ("frequent", "rare buyers"),
    "orders_90d": ("buying lately", "not buying lately"),
    "average_order_value": ("big baskets", "small baskets"),
    "recency_days": ("lapsed", "recent"),
    "tenure_days": ("long-standing", "new"),
    "days_since_last_visit": ("away", "visiting"),
    "discounted_order_share": ("deal seekers", "full price"),
    "sessions_90d": ("browsing", "rarely browsing"),
    "product_views_90d": ("product-curious", "few product views"),
    "cart_adds_30d": ("filling carts", "no cart adds"),
    "purchases_90d": ("purchasing", "not purchasing"),
    "conversion_rate_90d": ("converting", "not converting"),
    "engaged_seconds_30d": ("engaged", "disengaged"),
    "engagement_score": ("engaged", "disengaged"),
    "tickets_90d": ("needing support", "no support contact"),
    "negative_ticket_share_90d": ("unhappy", "content"),
    "top_category_share_90d": ("category loyal", "category explorers"),
}


def word(feature: str, positive: bool) -> str:
    if feature in WORDS:
        return WORDS[feature][0 if positive else 1]
    if "=" in feature:  # a one-hot column such as preferred_channel_group=email
        column, value = feature.split("=", 1)
        return f"{value} {column.replace('_', ' ')}" if positive else f"not {value}"
    return f"{'high' if positive else 'low'} {feature.replace('_', ' ')}"


def name_segments(
    effect: pd.DataFrame, min_effect: float, taken: set[str], max_words: int = 3
) -> dict[int, str]:
    """A unique readable name per row of ``effect`` (index: label)."""
    out: dict[int, str] = {}
    used = set(taken)
    for label, row in effect.iterrows():
        ranked = row.abs().sort_values(ascending=False)
        words: list[str] = []
        for feature, size in ranked.items():
            if size < min_effect:
                break
            w = word(str(feature), row[feature] > 0)
            if w not in words:
                words.append(w)
            if len(words) == max_words:
                break
        name = ", ".join(words) if words else "typical customers"
        name = name[0].upper() + name[1:]
        candidate, extra = name, max_words
        remaining = [f for f in ranked.index if word(str(f), row[f] > 0) not in words]
        while candidate in used and extra - max_words < len(remaining):
            f = remaining[extra - max_words]
            candidate = f"{name}, {word(str(f), row[f] > 0)}"
            extra += 1
        suffix = 2
        base = candidate
        while candidate in used:
            candidate = f"{base} ({suffix})"
            suffix += 1
        used.add(candidate)
        out[int(label)] = candidate
    return out


def describe(effect_row: pd.Series, raw_means: pd.Series, overall_means: pd.Series) -> str:
    """The three strongest differences in the features' own units."""
    parts = []
    numeric = [f for f in effect_row.index if f in raw_means.index]
    for feature in effect_row[numeric].abs().sort_values(ascending=False).index[:3]:
        parts.append(
            f"{feature} {raw_means[feature]:,.2f} vs {overall_means[feature]:,.2f} overall"
        )
    return "; ".join(parts)


def reason_codes(scaled_numeric: np.ndarray, names: list[str], count: int) -> np.ndarray:
    """Per customer, the ``count`` features furthest from everyone's median, in words."""
    count = min(count, scaled_numeric.shape[1])
    if count == 0:
        return np.full(len(scaled_numeric), "", dtype=object)
    top = np.argsort(-np.abs(scaled_numeric), axis=1, kind="stable")[:, :count]
    sign = np.take_along_axis(scaled_numeric, top, axis=1) > 0
    table = np.array([[f"low {n}", f"high {n}"] for n in names], dtype=object)
    tokens = table[top, sign.astype(int)]
    codes = pd.Series(tokens[:, 0])
    if count > 1:
        codes = codes.str.cat([pd.Series(tokens[:, i]) for i in range(1, count)], sep=", ")
    return codes.to_numpy(dtype=object)
