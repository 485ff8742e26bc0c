"""The app in a real browser: Debian's chromium (headless, driven by Playwright) with a fake microphone fed from a
synthetic-singing WAV. Live mode: the pitch trace and the notes-sung keyboard update while it records, and the songs
appear after Stop. File mode: it records, stops, submits and gets the results table; then the same by uploading a
file, with a silent upload in between that must show a message and leave the app working.

Full-page screenshots are saved to $VOICEREC_TEST_ARTIFACTS (or pytest's tmp dir); `app-live.png`, taken with the
shipped models (all VOICEREC_* set), is docs/screenshot.png. The live test prints what it observed: how often
updates arrived, how much of the sung audio reached the server, and the time from Stop to the songs.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from playwright.sync_api import Page, expect, sync_playwright

from tests.app_server import model_env, running_app
from voicerec.app.page import CHART_SONGS, TABLE_COLUMNS
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.embeddings import EMBEDDING_NAMES

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 60_000  # a busy CI machine analyses slowly

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(), reason=f"Debian chromium not found at {CHROMIUM} (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    singing = sing(scale_melody(55, n_notes=24, seconds=0.5, seed=3), VOICES["tenor"], sr=48000)
    paths = {"microphone": folder / "microphone.wav", "upload": folder / "upload.wav", "silence": folder / "quiet.wav"}
    sf.write(paths["microphone"], singing, 48000, subtype="PCM_16")  # what chromium's fake microphone plays
    sf.write(paths["upload"], singing[: 48000 * 8], 48000, subtype="PCM_16")
    sf.write(paths["silence"], np.zeros(48000 * 4, dtype=np.float32), 48000, subtype="PCM_16")
    return paths


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("VOICEREC_TEST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("app")
    with running_app(model_env(tmp), tmp / "app.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(clips):
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={clips['microphone']}",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url) -> Page:
    """A fresh page per test, so no result of an earlier test can satisfy a later test's wait."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["microphone"])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_url)
    yield page
    context.close()


def loads_input(page: Page):
    """Wait for an input to reach the server: the player fetches the file back once the upload has landed."""
    return page.expect_response(lambda r: "/gradio_api/file=" in r.url and r.request.method == "GET")


def submit_and_wait_for_results(page: Page) -> None:
    """Press the button and wait for a new voice summary and a filled results table."""
    page.locator("#find-songs").click()
    expect(page.locator("#summary")).to_contain_text("Your voice:", timeout=TIMEOUT_MS)
    results = page.locator("#results")
    expect(results.get_by_test_id(f"cell-0-{TABLE_COLUMNS.index('Key change')}")).to_contain_text(
        re.compile(r"as written|semitone"), timeout=TIMEOUT_MS
    )
    expect(results.get_by_test_id("cell-0-0")).to_have_text("1")  # rank of the first data row (cell-row-column)
    check_figures(page)


def check_figures(page: Page) -> None:
    """The browser drew both figures: the keyboard SVG with shaded keys, and the native plot's points (Vega-Lite
    draws them as SVG), one per song and embedding, for up to CHART_SONGS songs."""
    keyboard = page.locator("#keyboard svg.range-keyboard")
    expect(keyboard.locator('rect[data-part="tessitura"]').first).to_be_visible(timeout=TIMEOUT_MS)
    assert (
        keyboard.locator('rect[data-part="range"]').count() + keyboard.locator('rect[data-part="tessitura"]').count()
        >= 2
    )
    expect(keyboard).to_contain_text("tessitura")
    points = page.locator("#breakdown svg g.mark-symbol.role-mark path")  # not the legend's symbols
    expect(points.first).to_be_attached(timeout=TIMEOUT_MS)
    songs = min(CHART_SONGS, page.locator('#results [role="row"]').count() - 1)
    expect(points).to_have_count(songs * len(EMBEDDING_NAMES), timeout=TIMEOUT_MS)
    expect(page.locator("#breakdown")).to_contain_text("Timbre (key-free)")  # the legend names the embeddings


LIVE_OBSERVER = """() => {
  window.liveUpdates = [];
  const view = document.querySelector('#live-view');
  new MutationObserver(() => {
    const live = view.querySelector('.live-view'), trace = view.querySelector('svg.pitch-trace');
    if (!live || !trace) return;
    const keys = document.querySelectorAll('#keyboard rect[data-part="sung"]').length;
    const last = window.liveUpdates[window.liveUpdates.length - 1];
    const seconds = parseFloat(live.dataset.seconds);
    if (last && last.seconds === seconds) return;
    window.liveUpdates.push({t: performance.now() / 1000, seconds, wall: parseFloat(live.dataset.wall),
                             points: +trace.dataset.points, note: trace.dataset.note, keys});
  }).observe(view, {childList: true, subtree: true, characterData: true, attributes: true});
}"""


def test_live_mode_shows_the_voice_while_singing_and_the_songs_after_stop(page, artifacts):
    expect(page.get_by_role("tab", name="Sing live")).to_have_attribute("aria-selected", "true")  # the way in
    page.locator("#live-view").wait_for()
    # Record pressed before the page's start-up events finish streams nothing (Gradio 6.31): wait for them
    page.locator("html[data-voicerec-loaded='1']").wait_for(state="attached")
    mic = page.locator("#live-mic")
    clickable = "e => getComputedStyle(e).pointerEvents !== 'none'"
    assert mic.evaluate(clickable)
    page.evaluate("delete document.documentElement.dataset.voicerecLoaded")  # as before the start-up events
    assert not mic.evaluate(clickable)  # the microphone waits for them
    page.evaluate("document.documentElement.dataset.voicerecLoaded = '1'")
    page.evaluate(LIVE_OBSERVER)
    mic.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(7000)  # seven seconds of "singing" from the fake device
    during = page.evaluate("window.liveUpdates")
    assert len(during) >= 5, during
    assert [u["seconds"] for u in during] == sorted(u["seconds"] for u in during)
    assert during[-1]["seconds"] > during[0]["seconds"] + 2.0  # it kept updating while the singing went on
    assert during[-1]["points"] > 0 and during[-1]["note"]  # the trace is drawn and the current note named
    assert during[-1]["keys"] >= 2 and during[-1]["keys"] >= during[0]["keys"]
    stop_pressed = page.evaluate("performance.now() / 1000")
    mic.locator("button.stop-button").click()
    expect(page.locator("#summary")).to_contain_text("Your voice:", timeout=TIMEOUT_MS)
    expect(page.locator("#results").get_by_test_id("cell-0-0")).to_have_text("1")
    answer = page.evaluate("performance.now() / 1000") - stop_pressed
    check_figures(page)
    gaps = np.diff([u["t"] for u in during])
    last = during[-1]
    print(f"\nlive mode: {len(during)} updates in {during[-1]['t'] - during[0]['t']:.1f} s, interval median "
          f"{np.median(gaps):.2f} s (p90 {np.percentile(gaps, 90):.2f} s); audio received {last['seconds']:.2f} s "
          f"over {last['wall']:.2f} s of chunks arriving; Stop -> songs on the page {answer:.2f} s")
    page.wait_for_timeout(500)  # let the figures settle before the screenshot
    page.screenshot(path=artifacts / "app-live.png", full_page=True)


def open_file_tab(page: Page) -> None:
    page.get_by_role("tab", name="Upload a file").click()
    expect(page.locator("#recording")).to_be_visible()


def test_record_with_fake_microphone(page, artifacts):
    open_file_tab(page)
    recording = page.locator("#recording")
    recording.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(6000)  # six seconds of "singing" from the fake device
    with loads_input(page):
        recording.locator("button.stop-button").click()
    submit_and_wait_for_results(page)
    rows = page.locator('#results [role="row"]')
    assert rows.count() >= 2  # the header and at least one song
    expect(page.locator("#summary")).to_contain_text("of singing", timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)  # let the figures settle before the screenshot
    page.screenshot(path=artifacts / "app-recorded.png", full_page=True)


def test_upload_bad_then_good(page, clips, artifacts):
    open_file_tab(page)
    recording = page.locator("#recording")
    recording.get_by_role("button", name="Upload file").click()
    with loads_input(page):
        recording.locator("input[type=file]").set_input_files(clips["silence"])
    page.locator("#find-songs").click()
    expect(page.get_by_text("The recording is silent")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#summary")).not_to_contain_text("Your voice:", timeout=TIMEOUT_MS)
    recording.get_by_role("button", name="Clear").click()
    with loads_input(page):
        recording.locator("input[type=file]").set_input_files(clips["upload"])
    submit_and_wait_for_results(page)
    page.screenshot(path=artifacts / "app-uploaded.png", full_page=True)
