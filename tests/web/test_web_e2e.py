"""End to end in a real browser: Debian's Chromium driven by Playwright, against the real server.

The server is ``python -m immunotox serve --demo`` in a subprocess (uvicorn, SQLite in this
test's temporary folder, the simulated ward whose observations keep arriving at 120x). Screenshots
of the main pages are saved under each test's ``tmp_path``. Skipped, with the reason, only when
``/usr/bin/chromium`` is absent (``.ci/run`` installs Debian's ``chromium``); the browser is never
downloaded (no ``playwright install``).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NURSE = ("infirmiere", "infirmiere-demo")  # unit hemato-a (service/demo.py ACCOUNTS)
PATIENT = ("patient", "patient-demo")  # record DEMO-01, unit hemato-a
UNIT_A_PHONE = "+33 1 00 00 00 01"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)"
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo service on a free port; its temporary database lives in this test's folder."""
    folder = tmp_path_factory.mktemp("demo-server")
    port = _free_port()
    log = (folder / "server.log").open("w")
    env = {**os.environ, "TMPDIR": str(folder), "IMMUNOTOX_WEB_TIMEZONE": "Europe/Paris"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "immunotox", "serve", "--demo", "--port", str(port), "--no-access-log"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the demo server exited: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the demo server did not answer /health within 180 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def _login(page: Any, base: str, user: tuple[str, str]) -> None:
    page.goto(base + "/login")
    page.fill("#username", user[0])
    page.fill("#password", user[1])
    page.click("main form button[type=submit]")
    page.wait_for_load_state()


def _shot(page: Any, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def test_nurse_watches_the_ward_enters_an_ice_and_acknowledges(
    server: str, browser: Any, tmp_path: Path
) -> None:
    page = _page(browser)
    _login(page, server, NURSE)
    assert page.url.endswith("/ward")
    assert page.inner_text("h1") == "Tableau de bord du service"
    assert page.locator("#ward-rows tr[data-patient]").count() >= 3
    # live refresh: the rows are replaced by the poller, without reloading the page
    first_row = page.query_selector("#ward-rows tr[data-patient]")
    page.wait_for_function("row => !row.isConnected", arg=first_row, timeout=30_000)
    # the simulated patient's CRS starts ~30 simulated minutes in: its grade rises on screen
    page.wait_for_function(
        """() => {
            const b = document.querySelector('tr[data-patient="DEMO-01"] [data-scale="astct2019:crs"]');
            return b !== null && b.dataset.grade !== "" && Number(b.dataset.grade) >= 1;
        }""",
        timeout=120_000,
    )
    _shot(page, tmp_path, "ward")

    page.click('tr[data-patient="DEMO-01"] th a')
    page.wait_for_url(re.compile(r"/patients/DEMO-01$"))
    assert page.locator("svg.timeline").count() == 1
    toci = page.inner_text("#toci")
    assert re.search(r"\d+(,\d)? mg", toci) and "mg/kg" in toci  # the dose for this patient's weight
    _shot(page, tmp_path, "patient")

    page.click("text=Saisie au lit du patient")
    page.wait_for_url(re.compile(r"/patients/DEMO-01/bedside$"))
    for item, points in (
        ("orientation", 4),
        ("naming", 3),
        ("commands", 1),
        ("writing", 1),
        ("attention", 1),
    ):
        page.check(f"input[name=ice_{item}][value='{points}']")
    page.select_option("#n-consciousness", "awake")
    page.select_option("#n-seizure", "none")
    page.select_option("#n-motor", "none")
    page.select_option("#n-cerebral_edema", "none")
    page.check("input[name=raised_icp_signs][value=false]")
    badge = page.locator("#preview-badge")
    page.wait_for_function("() => document.getElementById('preview-badge').textContent.trim() === 'ICANS 0'")
    assert "ICE 10/10" in page.inner_text("#preview-text")
    # ICE 10 -> 4 (3-6: grade 2, ASTCT 2019), computed by the server as the items are ticked
    page.check("input[name=ice_orientation][value='1']")
    page.check("input[name=ice_naming][value='1']")
    page.check("input[name=ice_writing][value='0']")
    page.wait_for_function("() => document.getElementById('preview-badge').textContent.trim() === 'ICANS 2'")
    assert badge.get_attribute("data-grade") == "2"
    assert "ICE 4/10" in page.inner_text("#preview-text")
    _shot(page, tmp_path, "bedside-ice")
    page.click("#ice-form button[type=submit]")
    saved = page.locator("#saved")
    saved.wait_for()
    assert "Score ICE 4/10" in saved.inner_text()
    assert saved.locator('[data-scale="astct2019:icans"]').get_attribute("data-grade") == "2"  # the server's

    page.goto(server + "/alerts")
    form = page.locator("form.ack-form").first
    card = page.locator("li.alert", has=form).first
    alert_id = card.get_attribute("data-alert")
    form.locator("input[name=comment]").fill("vu au lit, médecin prévenu")
    form.locator("button[type=submit]").click()
    page.locator("#ack-done").wait_for()
    acked = page.locator(f"#alert-{alert_id}")
    assert acked.get_attribute("data-status") == "acknowledged"
    assert "vu au lit, médecin prévenu" in acked.inner_text()
    _shot(page, tmp_path, "alerts")
    page.context.close()


def test_patient_reports_fever_and_confusion_and_the_nurse_sees_it(
    server: str, browser: Any, tmp_path: Path
) -> None:
    patient = _page(browser)
    _login(patient, server, PATIENT)
    assert patient.url.endswith("/portal")
    patient.fill("#temperature", "38,6")
    patient.check("input[name=symptoms][value=confusion]")
    patient.click("#report-form button[type=submit]")
    triage = patient.locator("#triage")
    triage.wait_for()
    assert triage.get_attribute("data-decision") == "call_now"
    assert "Appelez le service maintenant" in triage.inner_text()
    assert UNIT_A_PHONE in triage.inner_text()
    _shot(patient, tmp_path, "portal-call-now")
    assert patient.goto(server + "/ward").status == 403  # a patient never reaches the ward
    patient.context.close()

    nurse = _page(browser)
    _login(nurse, server, NURSE)
    nurse.goto(server + "/alerts?patient=DEMO-01")
    report = nurse.locator('li.alert[data-kind="patient_report"]').first
    report.wait_for()
    assert "Signalement du patient à traiter" in report.inner_text()
    assert "critique" in report.inner_text()
    _shot(nurse, tmp_path, "inbox-patient-report")
    nurse.context.close()


def test_language_switch(server: str, browser: Any, tmp_path: Path) -> None:
    page = _page(browser)
    page.goto(server + "/login")
    assert page.get_attribute("html", "lang") == "fr" and page.inner_text("h1") == "Connexion"
    page.click("form.lang button[value=en]")
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "en" and page.inner_text("h1") == "Log in"
    _login(page, server, NURSE)
    assert page.inner_text("h1") == "Ward dashboard"
    assert re.search(r"\bD\d+\b", page.locator("#ward-rows").inner_text())  # day labels: "D3", not "J3"
    _shot(page, tmp_path, "ward-en")
    page.click("form.lang button[value=fr]")
    page.wait_for_load_state()
    assert page.inner_text("h1") == "Tableau de bord du service"
    page.context.close()


UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                 && !(e.tagName === 'BUTTON' && e.textContent.trim()))
    .map(e => e.outerHTML.slice(0, 80))"""


def test_keyboard_only_use_and_labelled_controls(server: str, browser: Any) -> None:
    page = _page(browser)
    page.goto(server + "/login")
    assert page.evaluate("document.activeElement.id") == "username"  # the form has the focus
    page.keyboard.type(NURSE[0])
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(NURSE[1])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ward$"))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"  # first stop: skip to content
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for path in ("/ward", "/patients/DEMO-01", "/patients/DEMO-01/bedside", "/alerts"):
        page.goto(server + path)
        assert page.evaluate(UNLABELLED) == [], path
    page.context.close()
    patient = _page(browser)
    _login(patient, server, PATIENT)
    assert patient.evaluate(UNLABELLED) == []
    patient.context.close()
