"""A researcher trains a baseline from a version's page and reads the run in a real
browser (desktop), and the run page is usable on a phone; screenshots go to
artifacts/browser/."""

from pathlib import Path
from typing import Any

import pytest

from ml.models import TrainingRun
from ml.services import dataset_version_build_now
from tests.core.factories import PASSWORD
from tests.ml.conftest import grouped_project

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("artifacts/browser")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM}")
@pytest.mark.django_db(transaction=True)
def test_browser_researcher_trains_a_baseline_and_reads_its_groups(
    live_server: Any, chromium_browser: Any, settings: Any, tmp_path: Path
) -> None:
    settings.CHORUS_EMBEDDING_CACHE_DIR = tmp_path / "embeddings"
    project = grouped_project().project
    version = dataset_version_build_now(
        project=project,
        actor=project.owner,
        recipe={"split": {"ratios": [0.5, 0.25, 0.25], "seed": 1}},
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = chromium_browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=live_server.url
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(project.owner.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"/research/datasets/{version.pk}/")
        page.get_by_role("link", name="Train a baseline").click()

        page.get_by_label("Train on").select_option("soft")
        page.get_by_label("Report errors per group of items by metadata key").fill("gender")
        page.get_by_label("… and by a second key (adds their intersection)").fill("region")
        page.get_by_label("Your age group").check()
        page.get_by_text("Hyperparameters").click()
        page.get_by_label("At most this many epochs").fill("5")
        page.get_by_label("Batch size").fill("4")
        page.screenshot(path=str(SHOTS / "training-new.png"), full_page=True)
        # Leave the number field first, as a person tabbing on does: headless Chromium drops
        # a mouse click that lands while a number input still has the focus.
        page.keyboard.press("Tab")
        page.get_by_role("button", name="Start training").click()

        page.wait_for_url("**/research/training/*/")
        page.get_by_role("heading", name="On the test split").wait_for()
        run = TrainingRun.objects.get(project=project)
        assert run.status == "done", run.error
        groups = page.locator("#item-groups")
        assert "gender×region = " in groups.inner_text()
        for image in page.locator(".plots img").all():
            image.scroll_into_view_if_needed()
            assert image.evaluate("img => img.complete && img.naturalWidth > 0"), (
                image.get_attribute("src")
            )
        assert page.get_by_role("link", name="Download the artefacts (zip)").is_visible()
        page.screenshot(path=str(SHOTS / "training-run.png"), full_page=True)

        page.goto(f"/research/projects/{project.pk}/training/")
        page.get_by_role("link", name=run.label).wait_for()

        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"/research/training/{run.pk}/")
        page.screenshot(path=str(SHOTS / "training-run-phone.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, f"the run page scrolls sideways on a phone ({width}px)"
    finally:
        context.close()
