"""End to end in a real browser: an annotator signs in, consents, answers the survey and
labels three items with the keyboard; the labels are then read back from the database.

Runs headless Debian Chromium through Playwright against pytest-django's live server.
Skipped (by tests/conftest.py) when /usr/bin/chromium is missing. The ``chromium_browser``
fixture (tests/conftest.py) launches it and sets DJANGO_ALLOW_ASYNC_UNSAFE: Playwright's sync
API runs an asyncio loop in this thread, and the ORM calls made here are ordinary sync calls.
"""

from pathlib import Path

import pytest

from annotation.models import Annotation, Enrolment, Item
from annotation.services import project_update
from annotation.surveys import DEFAULT_SURVEY, PREFER_NOT_TO_SAY
from core.models import Role
from tests.annotation.factories import make_enrolled_annotator, make_open_project
from tests.core.factories import PASSWORD, make_user

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path("artifacts/browser/labeling-page.png")
PHONE_VIEWPORT = {"width": 390, "height": 844}
# Keys pressed for the three items, and the hate-speech preset values they stand for.
KEYS_AND_VALUES = [("1", "hateful"), ("2", "offensive"), ("3", "neither")]


def _sign_in(page, user) -> None:
    """Sign in on the page as a person would; annotators land on their projects."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/annotate/")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM}")
@pytest.mark.django_db(transaction=True)
def test_browser_annotator_labels_three_items_with_keyboard(live_server, chromium_browser):
    project = make_open_project(3, k=1, survey=DEFAULT_SURVEY, title="Browser campaign")
    annotator = make_user(Role.ANNOTATOR)
    context = chromium_browser.new_context(viewport=PHONE_VIEWPORT, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _sign_in(page, annotator)

        page.get_by_role("link", name="Read and join").click()
        page.wait_for_url(f"**/annotate/{project.pk}/consent/")
        page.get_by_label("I consent to take part").check()
        page.get_by_role("button", name="I consent").click()
        page.wait_for_url(f"**/annotate/{project.pk}/survey/")

        page.get_by_role("group", name="Your age group").get_by_label("25-34").check()
        page.get_by_role("group", name="Your gender").get_by_label("Prefer not to say").check()
        page.get_by_role("button", name="Save answers").click()
        page.wait_for_url(f"**/annotate/{project.pk}/label/")
        page.get_by_role("button", name="Start labeling").click()
        page.wait_for_url(f"**/annotate/{project.pk}/label/")

        expected: dict[int, str] = {}
        for position, (key, value) in enumerate(KEYS_AND_VALUES):
            text = page.locator("#item-text").inner_text()
            item = Item.objects.get(project=project, text=text.strip())
            expected[item.pk] = value
            if position == 0:
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
            with page.expect_navigation():
                page.keyboard.press(key)
            page.wait_for_load_state()

        assert page.get_by_role("heading", name="All done").is_visible()
    finally:
        context.close()

    labels = Annotation.objects.filter(project=project, annotator=annotator)
    assert {label.item_id: label.value for label in labels} == expected
    assert all(label.time_spent_ms is not None for label in labels)
    enrolment = Enrolment.objects.get(project=project, annotator=annotator)
    assert enrolment.survey_answers == {"age_group": "25-34", "gender": PREFER_NOT_TO_SAY}
    assert SCREENSHOT.stat().st_size > 0


RECONSENT_SCREENSHOT = Path("artifacts/browser/reconsent-page.png")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM}")
@pytest.mark.django_db(transaction=True)
def test_browser_annotator_after_pay_cut_sees_changes_and_consents_again(
    live_server, chromium_browser
):
    project = make_open_project(3, k=1, title="Terms campaign", compensation_amount="12.00")
    annotator = make_enrolled_annotator(project)
    project_update(
        project=project,
        actor=project.owner,
        data={"compensation_amount": "6.00", "risk_disclosure": "You may read slurs."},
        confirm_reconsent=True,
    )
    context = chromium_browser.new_context(viewport=PHONE_VIEWPORT, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _sign_in(page, annotator)
        page.get_by_role("link", name="Review the changes").click()
        page.wait_for_url(f"**/annotate/{project.pk}/consent/")

        changes = page.locator(".consent-diff")
        removed = " ".join(changes.locator(".diff-removed").all_inner_texts())
        added = " ".join(changes.locator(".diff-added").all_inner_texts())
        assert "12.00 EUR" in removed and "Some texts are offensive." in removed
        assert "6.00 EUR" in added and "You may read slurs." in added
        RECONSENT_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(RECONSENT_SCREENSHOT), full_page=True)
        page.get_by_label("I consent to take part").check()
        page.get_by_role("button", name="I consent to the new terms").click()
        page.wait_for_url(f"**/annotate/{project.pk}/label/")
        page.get_by_role("button", name="Start labeling").click()
        assert page.locator("#item-text").is_visible()
    finally:
        context.close()

    enrolment = Enrolment.objects.get(project=project, annotator=annotator)
    assert "6.00 EUR per item" in enrolment.consent.text
