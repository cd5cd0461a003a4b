"""The web page in a real browser: headless Chromium (Playwright) against ``wordconv serve``'s app on 127.0.0.1.

For a textcat, an ner and a qa model it types a text, submits it and checks what the page draws: the
label with its probability bars and the words that drove it (colored by their /explain scores), the
entities highlighted by type at their character offsets, the answer highlighted in its context; and that
text is shown as text (markup in the input never runs).  A screenshot of each lands in
$WORDCONV_TEST_ARTIFACTS (else pytest's tmp dir); its path is printed.

Skipped when Chromium (/usr/bin/chromium, or $WORDCONV_CHROMIUM) or Playwright is missing, except under
CI (env CI set), where that is a failure: CI must run it.  Playwright drives the system Chromium; it
never downloads a browser.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("WORDCONV_CHROMIUM", "/usr/bin/chromium")


def _missing() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set WORDCONV_CHROMIUM)"
    for module in ("playwright", "fastapi", "uvicorn", "httpx"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install playwright fastapi uvicorn httpx)"
    return None


if (_reason := _missing()) is not None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {_reason}", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

import httpx  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

import wordconv  # noqa: E402
from test_server import NER_TEXT, QA_CONTEXT, QA_QUESTIONS, fake_explain_module, model_dir  # noqa: E402
from wordconv.server import create_app, serving  # noqa: E402


def pct(p: float) -> str:
    """The page's percentage format (JavaScript's (100 * p).toFixed(1)): half-way cases aside."""
    return f"{100 * p:.1f}%"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.problems = problems  # type: ignore[attr-defined]
    yield pg
    context.close()


@pytest.fixture
def artifacts(tmp_path, capsys):
    root = Path(os.environ.get("WORDCONV_TEST_ARTIFACTS") or tmp_path)
    root.mkdir(parents=True, exist_ok=True)

    def shot(pg: Page, name: str) -> Path:
        path = root / f"browser-{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        with capsys.disabled():
            print(f"\nscreenshot: {path}")
        return path

    return shot


def open_page(pg: Page, url: str, task: str) -> None:
    pg.goto(url + "/")
    expect(pg.locator("#submit")).to_be_enabled()
    assert pg.locator("body").get_attribute("data-task") == task


def no_problems(pg: Page) -> None:
    # a 4xx the page asked for on purpose logs "Failed to load resource"; anything else is a bug (a CSP
    # violation, a script error)
    bad = [p for p in pg.problems if "Failed to load resource" not in p]  # type: ignore[attr-defined]
    assert not bad, bad


def test_textcat_page(page, artifacts, tmp_path_factory, monkeypatch):
    predictor = wordconv.load(model_dir(tmp_path_factory, "textcat"))
    if importlib.util.find_spec("wordconv.explain") is None:  # written separately: a stand-in until it lands
        monkeypatch.setitem(sys.modules, "wordconv.explain", fake_explain_module())
    text = "a superb and charming film , the plot is moving"
    with serving(create_app(predictor)) as url:
        explained = httpx.post(url + "/explain", json={"text": text}).json()["explanations"][0]
        open_page(page, url, "textcat")
        expect(page.locator("#model-info")).to_contain_text("textcnn")
        page.fill("#text", text)
        page.click("#submit")
        want = predictor.predict([text])[0]
        expect(page.locator("#label")).to_have_text(want.label)
        expect(page.locator("#score")).to_contain_text(pct(want.score)[:-3])

        # one bar per label, the predicted one on top, widths in proportion to the probabilities
        rows = page.locator("#bars .bar-row")
        expect(rows).to_have_count(len(predictor.labels))
        assert rows.first.get_attribute("data-label") == want.label and "top" in rows.first.get_attribute("class")
        for label, p in want.probabilities.items():
            row = page.locator(f'#bars .bar-row[data-label="{label}"]')
            fill, track = row.locator(".bar-fill").bounding_box(), row.locator(".bar-track").bounding_box()
            assert abs(fill["width"] / track["width"] - p) < 0.02, (label, p, fill, track)
            expect(row.locator(".bar-value")).to_contain_text(pct(p)[:-3])

        # the words, colored by their scores: the top-scoring word the most strongly, green for the label
        toks = page.locator("#highlighted .tok")
        expect(toks).to_have_count(len(explained["tokens"]))
        assert page.locator("#highlighted").inner_text() == text  # the text itself, every character
        best = max(explained["tokens"], key=lambda t: t["score"])
        colors = toks.evaluate_all(
            "els => els.map(e => [e.textContent, e.dataset.score, getComputedStyle(e).backgroundColor])")
        alphas = {}
        for word, score, color in colors:
            rgba = [float(x) for x in re.findall(r"[\d.]+", color)]
            alphas[word] = rgba[3] if len(rgba) == 4 else 1.0
            if float(score) > 0:
                assert rgba[1] > rgba[0], (word, color)  # green
            elif float(score) < 0:
                assert rgba[0] > rgba[1], (word, color)  # red
        assert alphas[best["text"]] == max(alphas.values())
        expect(page.locator("#ngrams li").first).to_be_visible()
        artifacts(page, "textcat")

        # a click on the other label's bar shows the words for that label
        other = next(lab for lab in predictor.labels if lab != want.label)
        page.locator(f'#bars .bar-row[data-label="{other}"]').click()
        expect(page.locator("#explanation h2").first).to_contain_text(other)

        # text is text: markup typed into the box is shown, never run
        evil = 'great <img src=x onerror="window.__pwned = 1"> <b>fun</b> & "quotes"'
        page.fill("#text", evil)
        page.click("#submit")
        expect(page.locator("#highlighted")).to_have_text(evil)
        assert page.locator("#result img, #result b").count() == 0
        assert page.evaluate("window.__pwned === undefined")

        # an empty text: the server's message, shown as an error
        page.fill("#text", "   ")
        page.click("#submit")
        expect(page.locator("#error")).to_be_visible()
        expect(page.locator("#error")).to_contain_text("empty text")
    no_problems(page)


def test_ner_page(page, artifacts, tmp_path_factory):
    predictor = wordconv.load(model_dir(tmp_path_factory, "ner"))
    with serving(create_app(predictor)) as url:
        open_page(page, url, "ner")
        for i, text in enumerate([NER_TEXT, "🎬 Mary visited Paris with John ."]):  # an emoji: offsets in code points
            page.fill("#text", text)
            page.click("#submit")
            want = predictor.predict([text])[0].entities
            assert want, "the tiny tagger found no entity"
            # the previous result may still be on the page with the same entity count: wait for this text first
            expect(page.locator("#entity-view")).to_have_text(text)
            marks = page.locator("#entity-view mark.ent")
            expect(marks).to_have_count(len(want))
            got = marks.evaluate_all(
                "els => els.map(e => [e.dataset.type, e.textContent, getComputedStyle(e).backgroundColor])")
            assert [(t, s) for t, s, _ in got] == [(e.type, e.text) for e in want]
            assert all(c not in ("rgba(0, 0, 0, 0)", "transparent") for _, _, c in got)
            colors = {t: c for t, _, c in got}
            assert len(set(colors.values())) == len(colors)  # one color per type
            expect(page.locator("#entity-view")).to_have_text(text)
            expect(page.locator("#entities tbody tr")).to_have_count(len(want))
            if i == 0:
                artifacts(page, "ner")
    no_problems(page)


def test_qa_page(page, artifacts, tmp_path_factory):
    predictor = wordconv.load(model_dir(tmp_path_factory, "qa"))
    with serving(create_app(predictor)) as url:
        open_page(page, url, "qa")
        expect(page.locator("#text-input")).to_be_hidden()
        for question in QA_QUESTIONS:
            page.fill("#question", question)
            page.fill("#context", QA_CONTEXT)
            page.click("#submit")
            want = predictor.answer([question], [QA_CONTEXT])[0]
            expect(page.locator("#answer")).to_have_text(want.answer)
            mark = page.locator("#answer-view mark.answer")
            expect(mark).to_have_text(QA_CONTEXT[want.start:want.end])
            assert mark.get_attribute("data-start") == str(want.start)
            expect(page.locator("#answer-view")).to_have_text(QA_CONTEXT)
        artifacts(page, "qa")
        page.fill("#question", "")
        page.click("#submit")
        expect(page.locator("#error")).to_contain_text("question")
    no_problems(page)
