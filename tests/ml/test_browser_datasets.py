"""A researcher counts, builds and opens a dataset version in a real browser (desktop),
and the version page is usable on a phone; screenshots go to artifacts/browser/."""

from pathlib import Path

import pytest

from ml.models import DatasetVersion
from tests.annotation.analysis_data import make_labelled_project
from tests.core.factories import PASSWORD
from tests.ml.conftest import distinct_texts

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("artifacts/browser")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM}")
@pytest.mark.django_db(transaction=True)
def test_browser_researcher_counts_builds_and_reads_a_version(live_server, chromium_browser):
    labelled = distinct_texts(make_labelled_project(n_items=10, n_annotators=4))
    project = labelled.project
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = chromium_browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=live_server.url
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(project.owner.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"/research/projects/{project.pk}/")
        page.get_by_role("link", name="Datasets").click()
        page.get_by_role("link", name="Build a new version").click()

        live = page.locator("#live-counts")
        live.get_by_text("Would ship 10 items").wait_for()
        # Live: typing a stricter minimum recounts without a submit.
        page.get_by_label("Items need at least this many labels").fill("5")
        live.get_by_text("Would ship 0 items").wait_for()
        assert "too few labels: 10 items" in live.inner_text()
        page.get_by_label("Items need at least this many labels").fill("4")
        page.get_by_role("button", name="Count what would ship").click()
        page.get_by_role("heading", name="This recipe would ship").wait_for()
        page.screenshot(path=str(SHOTS / "dataset-builder.png"), full_page=True)

        page.get_by_label("Items need at least this many labels").fill("1")
        page.get_by_role("button", name="Build this version").click()
        page.wait_for_url("**/research/datasets/*/")
        page.get_by_role("heading", name="Splits").wait_for()
        version = DatasetVersion.objects.get(project=project)
        assert version.status == "done"
        assert page.get_by_role("link", name="Download the bundle (zip)").is_visible()
        page.screenshot(path=str(SHOTS / "dataset-version.png"), full_page=True)

        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        page.screenshot(path=str(SHOTS / "dataset-version-phone.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, f"the version page scrolls sideways on a phone ({width}px)"
    finally:
        context.close()
