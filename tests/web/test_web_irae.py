"""Checkpoint-inhibitor irAE grades on the ward (issue 17): their names come from the scales' data
in the reader's language (no gettext entry per organ)."""

from __future__ import annotations

from immunotox.web import labels, queries
from immunotox.web.i18n import use


def test_irae_scale_names_follow_the_language() -> None:
    with use("fr"):
        assert queries.scale_short("asco2021:hepatitis") == "Hépatite"
        assert labels.scale_short("asco2021:adrenal-insufficiency") == "Insuffisance surrénale"
        assert queries.badge_of("asco2021:colitis", 2, (2, 4), "incomplete", None).short == "Colite"
    with use("en"):
        assert queries.scale_short("asco2021:hyperthyroidism") == "Thyrotoxicosis"
        assert labels.scale_short("astct2019:crs") == "CRS"
    assert labels.scale_short("no:such-scale") == "no:such-scale"
    assert {"asco2021:hepatitis", "astct2019:crs"} <= set(labels.named_scales())
