"""Shipped assets: colour contrast of the grade and priority badges (WCAG 2.1 AA, 4.5:1 for text),
and the browser script holds no clinical threshold (grades come from the server)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

STATIC = Path(str(resources.files("immunotox.web").joinpath("static")))
CSS = (STATIC / "app.css").read_text("utf-8")


def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2.1 contrast ratio of two sRGB colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def rule(selector: str) -> dict[str, str]:
    m = re.search(re.escape(selector) + r"\s*\{([^}]*)\}", CSS)
    assert m is not None, selector
    return dict(
        (k.strip(), v.strip()) for k, v in (d.split(":", 1) for d in m.group(1).split(";") if ":" in d)
    )


def test_contrast_formula() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic near-miss


@pytest.mark.parametrize("selector", [".g0", ".g1", ".g2", ".g3", ".g4", ".g-na"])
def test_grade_badges_have_aa_contrast(selector: str) -> None:
    r = rule(selector)
    background = r["background"].split()[0]
    assert contrast(r["color"], background) >= 4.5, selector


@pytest.mark.parametrize("selector", [".prio-critical", ".prio-high", ".prio-normal", ".prio-low"])
def test_priority_labels_have_aa_contrast(selector: str) -> None:
    text = rule(".prio")["color"]
    assert contrast(text, rule(selector)["background"]) >= 4.5, selector


def test_body_text_and_links_have_aa_contrast() -> None:
    root = rule(":root")
    for fg in ("--fg", "--muted", "--accent", "--err-fg", "--ok-fg", "--warn-fg"):
        colour = root[fg]
        back = "#ffffff" if fg in ("--fg", "--muted", "--accent") else root[fg.replace("-fg", "-bg")]
        assert contrast(colour, back) >= 4.5, fg


def test_the_browser_script_holds_no_clinical_rule() -> None:
    js = (STATIC / "app.js").read_text("utf-8")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", js, flags=re.S)
    # the only numbers are timing and parsing constants, never a grade band or a threshold
    numbers = {int(n) for n in re.findall(r"\b\d+\b", code)}
    assert numbers <= {0, 1, 10, 120, 401, 5000}, numbers
    for word in ("ice_score", "grade >", "temperature", "fever"):
        assert word not in code


def test_priority_backgrounds_only_on_white_text_labels() -> None:
    """``prio-<priority>`` paints a dark background for white text: an element carrying it
    without ``prio`` (e.g. a whole list line) would show black text on dark blue."""
    templates = Path(str(resources.files("immunotox.web").joinpath("templates")))
    offenders = []
    for path in sorted(templates.glob("*.html")):
        for m in re.finditer(r'class="([^"]*)"', path.read_text("utf-8")):
            classes = m.group(1).split()
            painted = any(re.fullmatch(r"prio-(\{\{.*|critical|high|normal|low)", c) for c in classes)
            if painted and "prio" not in classes:
                offenders.append(f"{path.name}: {m.group(0)}")
    assert offenders == []
