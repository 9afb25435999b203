"""In a real browser, the Content-Security-Policy blocks nothing the pages need.

A policy violation is silent for users (a script that does not run, a plot drawn without
its styles), so Chromium's console is read on the pages with scripts, plots, bar charts,
the admin and the Swagger UI: any "Content Security Policy" message or uncaught script
error fails the test.
Skipped (by tests/conftest.py) when /usr/bin/chromium is missing.
"""

from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from annotation.analysis import analysis_compute
from tests.annotation.analysis_data import make_labelled_project
from tests.core.factories import PASSWORD

SCREENSHOTS = Path("artifacts/browser")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_browser_csp_pages_plots_and_api_docs_render_without_violations(
    live_server: Any, chromium_browser: Any
) -> None:
    labelled = make_labelled_project()
    project = labelled.project
    analysis_compute(project=project, filters={})  # pages show stored plots, never draw them
    # Staff too, for the admin's change form (its scripts are static files with data-*).
    project.owner.is_staff = project.owner.is_superuser = True
    project.owner.save(update_fields=["is_staff", "is_superuser"])
    context = chromium_browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            problems.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(project.owner.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/research/")

        for name in (
            "research-project",
            "research-project-edit",
            "research-project-import",
            "research-analysis",
            "research-analysis-items",
        ):
            response = page.goto(reverse(name, args=[project.pk]))
            assert response is not None and response.status == 200, name
        for path in ("/admin/", reverse("admin:annotation_project_change", args=[project.pk])):
            response = page.goto(path)
            assert response is not None and response.status == 200, path
        page.goto(reverse("research-analysis", args=[project.pk]))
        plot = page.locator("#entropy-plot svg")
        assert plot.count() == 1
        page.screenshot(path=str(SCREENSHOTS / "analysis-page.png"), full_page=True)

        page.goto("/api/docs/")
        page.locator(".swagger-ui .info .title").wait_for()
        assert "Chorus API" in page.locator(".swagger-ui .info .title").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "api-docs.png"))
    finally:
        context.close()

    assert problems == []
