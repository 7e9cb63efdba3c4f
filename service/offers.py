"""The service's save offers: the library's offer book (`reason_classifier.offers`), under the names the
service has always imported."""

from __future__ import annotations

from reason_classifier.offers import (
    AlertOptions,
    Decision,
    Experiment,
    Offer,
    OfferBook,
    OfferKind,
    OffersConfig,
    OffersError,
    Rule,
    Variant,
)

__all__ = [
    "AlertOptions",
    "Decision",
    "Experiment",
    "Offer",
    "OfferBook",
    "OfferKind",
    "OffersConfig",
    "OffersError",
    "Rule",
    "Variant",
]
