"""The console in a real browser: Playwright driving Debian's chromium.

Playwright's own browser download cannot be used here, so the tests take the system's
chromium (``CONVEYOR_CHROMIUM``, else ``chromium`` on the PATH). Where there is none, or it
does not start, every test here is skipped with the reason (``-ra`` prints it); ``make test``
installs chromium with apt when it can.

Screenshots of each page go to ``$CONVEYOR_SCREENSHOTS`` when it is set (``make
screenshots`` sets it to ``docs/console``), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.server import Running
from tests.console.conftest import gated
from tests.support.engine import (
    action_state,
    approval_token,
    commands,
    declaration,
    latest_execution_id,
    stage,
    stage_state,
    wait_for,
    wait_status,
)

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]'"
)


def _chromium() -> str | None:
    return os.environ.get("CONVEYOR_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        pytest.skip(
            "No browser for the console tests: install Debian's chromium "
            "(apt-get install chromium; make test does so as root) or set CONVEYOR_CHROMIUM"
        )
    with playwright_api.sync_playwright() as driver:
        try:
            launched = driver.chromium.launch(executable_path=executable)
        except playwright_api.Error as exc:
            pytest.skip(f"The browser {executable} does not start: {exc.message.splitlines()[0]}")
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, live: Running, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page; its Content-Security-Policy is bypassed (Playwright's ``wait_for_function``
    evaluates strings, which the policy forbids) unless the test is marked ``csp``."""
    context = browser.new_context(
        base_url=live.endpoint,
        viewport={"width": 1280, "height": 900},
        bypass_csp=request.node.get_closest_marker("csp") is None,
    )
    context.set_default_timeout(15000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CONVEYOR_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_every_page_opens_and_is_photographed(
    page: Any, api: Any, repo: Path, shots: Path, browser: Any, live: Running
) -> None:
    declared = gated(repo)
    api.create_pipeline(pipeline=declared)
    api.create_pipeline(pipeline=gated(repo, "website"))
    execution_id = latest_execution_id(api, "app")
    approval_token(api, "app")
    declared["stages"][3]["actions"][0]["commands"] = ["echo shipped", "echo twice"]
    api.update_pipeline(pipeline=declared)
    make = action_state(api, "app", "Build", "Make")["actionExecutionId"]
    visits = [
        ("pipelines", "/", "Pipelines"),
        ("pipeline", "/pipelines/app", "app"),
        ("history", "/pipelines/app/executions", "app: executions"),
        ("execution", f"/pipelines/app/executions/{execution_id}", "Execution"),
        ("log", f"/pipelines/app/logs/{make}", "Build / Make"),
        ("definition", "/pipelines/app/definition?version=2&compare=1", "app: definition"),
        ("action-types", "/action-types", "Action types"),
    ]
    for name, path, heading in visits:
        page.goto(path)
        assert heading in page.locator("h1").inner_text()
        assert "open to anyone who can reach it" in page.locator(".open").inner_text()
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    dark = browser.new_context(
        base_url=live.endpoint, color_scheme="dark", viewport={"width": 1280, "height": 900}
    )
    phone = browser.new_context(base_url=live.endpoint, viewport={"width": 390, "height": 844})
    try:
        for context, name in ((dark, "pipeline-dark"), (phone, "pipeline-phone")):
            other = context.new_page()
            other.goto("/pipelines/app")
            other.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        width = phone.pages[0].evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # nothing wider than the phone's screen
    finally:
        dark.close()
        phone.close()


@pytest.mark.csp
def test_release_change_and_watch_the_statuses_change_without_a_reload(
    page: Any, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo, "app", "sleep 1", "echo built"))
    first = latest_execution_id(api, "app")
    approval_token(api, "app")
    page.goto("/pipelines/app")
    page.get_by_text("Release change", exact=True).first.click()  # open the details
    page.get_by_role("button", name="Release change").click()
    page.wait_for_url("**/pipelines/app?notice=*")
    assert "Started execution" in page.locator("#notice").inner_text()
    second = latest_execution_id(api, "app")
    assert second != first
    page.wait_for_selector('html[data-live="open"]', state="attached")  # under the page's CSP
    page.evaluate("window.sameDocument = true")
    # Make runs for a second: the page shows it start, then end, each pushed by the server.
    page.wait_for_selector('[id="action-Build-Make"] .chip[title="InProgress"]')
    page.wait_for_selector('[id="action-Build-Make"] .chip[title="Succeeded"]')
    page.wait_for_selector('[id="action-Gate-Approve"] .chip[title="InProgress"]')
    assert page.evaluate("window.sameDocument") is True  # updated in place, not reloaded


def test_a_change_reaches_an_open_page_quickly(page: Any, api: Any, repo: Path) -> None:
    api.create_pipeline(pipeline=gated(repo))
    approval_token(api, "app")
    page.goto("/pipelines/app")
    page.wait_for_function("document.documentElement.dataset.live === 'open'")
    page.evaluate(
        """() => { window.changedAt = null;
        document.addEventListener('conveyor:refreshed', () => {
          if (document.querySelector('#live .chip[title="Disabled"], #live .reason')
              && window.changedAt === null) { window.changedAt = Date.now(); } }); }"""
    )
    before = time.time()
    api.disable_stage_transition(
        pipelineName="app", stageName="Deploy", transitionType="Inbound", reason="Freeze"
    )
    committed = time.time()
    page.wait_for_function("window.changedAt !== null")
    shown = page.evaluate("window.changedAt") / 1000
    print(
        f"\nchange committed to page updated: {(shown - committed) * 1000:.0f} ms "
        f"(the API call took {(committed - before) * 1000:.0f} ms)"
    )
    assert shown - committed < 1.0  # 100 ms is the aim; a shared machine may be slower
    assert "Freeze" in page.locator("#live").inner_text()


def test_approve_with_a_comment(page: Any, api: Any, repo: Path) -> None:
    api.create_pipeline(pipeline=gated(repo))
    execution_id = latest_execution_id(api, "app")
    approval_token(api, "app")
    page.goto("/pipelines/app")
    assert "Check the build" in page.locator('[id="action-Gate-Approve"]').inner_text()
    page.get_by_label("Comment").fill("Ship it")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url("**notice=*")
    assert wait_status(api, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    assert action_state(api, "app", "Gate", "Approve")["summary"] == "Ship it"


def test_retry_a_failed_stage_then_roll_it_back(
    page: Any, api: Any, repo: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    api.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Check", f"test -e {flag}")))
    )
    execution_id = latest_execution_id(api, "app")
    wait_status(api, "app", execution_id, "Failed")
    page.goto("/pipelines/app")
    flag.touch()
    page.get_by_role("button", name="Retry failed actions").click()
    page.wait_for_url("**notice=*")
    assert wait_status(api, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    page.wait_for_selector('[id="action-Build-Check"] .chip[title="Succeeded"]')
    # The stage has succeeded once: the live page now offers that execution to roll back to.
    rollback = page.locator('form[aria-label="Roll back Build"]')
    rollback.get_by_label("Roll back to").select_option(execution_id)
    rollback.get_by_role("button", name="Roll back").click()
    page.wait_for_url("**notice=*")
    page.wait_for_selector('[id="stage-Build"] .chip.rollback')
    target = page.locator('[id="stage-Build"] .rolled-back a')
    assert target.get_attribute("href") == f"/pipelines/app/executions/{execution_id}"


def test_stop_an_execution(page: Any, api: Any, repo: Path) -> None:
    api.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Wait", "sleep 30")))
    )
    execution_id = latest_execution_id(api, "app")
    wait_for(lambda: action_state(api, "app", "Build", "Wait").get("status") == "InProgress")
    page.goto("/pipelines/app")
    page.get_by_label("Reason").first.fill("Wrong branch")
    page.get_by_label("abandon running actions").check()
    page.get_by_role("button", name="Stop").click()
    page.wait_for_url("**notice=*")
    assert wait_status(api, "app", execution_id, "Stopped") == "Stopped"


def test_disable_a_transition_and_enable_it_again(page: Any, api: Any, repo: Path) -> None:
    api.create_pipeline(pipeline=gated(repo))
    approval_token(api, "app")
    page.goto("/pipelines/app")
    into_deploy = page.locator('li[aria-label="Transition into Deploy"]')
    into_deploy.get_by_label("Reason").fill("Release freeze")
    into_deploy.get_by_role("button", name="Disable transition").click()
    page.wait_for_url("**notice=*")
    assert "Release freeze" in page.locator('li[aria-label="Transition into Deploy"]').inner_text()
    assert stage_state(api, "app", "Deploy")["inboundTransitionState"]["enabled"] is False
    page.get_by_role("button", name="Enable transition").click()
    page.wait_for_url("**notice=*")
    assert stage_state(api, "app", "Deploy")["inboundTransitionState"]["enabled"] is True


def test_follow_a_running_log(page: Any, api: Any, repo: Path) -> None:
    api.create_pipeline(
        pipeline=declaration(
            "app",
            repo,
            stage(
                "Build",
                commands("Count", "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.3; done"),
            ),
        )
    )
    wait_for(lambda: action_state(api, "app", "Build", "Count").get("status") == "InProgress")
    count = action_state(api, "app", "Build", "Count")["actionExecutionId"]
    page.goto(f"/pipelines/app/logs/{count}")
    page.evaluate("window.sameDocument = true")
    page.wait_for_function("document.getElementById('log').textContent.includes('line 6')")
    assert page.evaluate("window.sameDocument") is True
    page.wait_for_function(
        "document.getElementById('follow-state').textContent.includes('finished')"
    )


def test_look_at_a_diff_between_versions(page: Any, api: Any, repo: Path) -> None:
    declared = gated(repo)
    api.create_pipeline(pipeline=declared)
    declared["stages"][3]["actions"][0]["commands"] = ["echo shipped again"]
    api.update_pipeline(pipeline=declared)
    page.goto("/pipelines/app/definition")
    page.get_by_label("Compare with").select_option("1")
    page.get_by_role("button", name="Show").click()
    assert "echo shipped again" in page.locator(".diff .add").first.inner_text()
    assert "echo shipped" in page.locator(".diff .del").first.inner_text()


def test_a_form_with_a_wrong_csrf_token_is_refused(page: Any, api: Any, repo: Path) -> None:
    api.create_pipeline(pipeline=gated(repo))
    approval_token(api, "app")
    page.goto("/pipelines/app")
    page.evaluate(
        "document.querySelectorAll('input[name=csrf]').forEach(i => { i.value = 'forged.0'; })"
    )
    page.get_by_text("Release change", exact=True).first.click()
    page.get_by_role("button", name="Release change").click()
    assert "security token" in page.locator("body").inner_text()
    assert len(api.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"]) == 1


def test_forms_work_without_javascript_and_by_keyboard(
    browser: Any, live: Running, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    execution_id = latest_execution_id(api, "app")
    approval_token(api, "app")
    context = browser.new_context(base_url=live.endpoint, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/pipelines/app")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
        page.get_by_label("Comment").focus()
        page.keyboard.type("By keyboard")
        page.keyboard.press("Tab")  # to the Approve button
        assert page.evaluate("document.activeElement.textContent") == "Approve"
        page.keyboard.press("Enter")
        page.wait_for_url("**notice=*")
    finally:
        context.close()
    assert wait_status(api, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    assert action_state(api, "app", "Gate", "Approve")["summary"] == "By keyboard"


def test_what_was_typed_survives_a_live_refresh(page: Any, api: Any, repo: Path) -> None:
    api.create_pipeline(pipeline=gated(repo))
    approval_token(api, "app")
    page.goto("/pipelines/app")
    page.wait_for_function("document.documentElement.dataset.live === 'open'")
    page.get_by_label("Comment").fill("Half a thought")
    page.locator("h1").click()  # the field loses focus: refreshes go ahead
    page.evaluate(
        "window.refreshed = 0;"
        "document.addEventListener('conveyor:refreshed', () => { window.refreshed += 1; })"
    )
    api.disable_stage_transition(
        pipelineName="app", stageName="Deploy", transitionType="Inbound", reason="Freeze"
    )
    page.wait_for_function("window.refreshed > 0")
    assert "Freeze" in page.locator("#live").inner_text()
    assert page.get_by_label("Comment").input_value() == "Half a thought"


def test_a_refused_form_shows_the_api_error_and_the_page_stays_live(
    page: Any, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    token = approval_token(api, "app")
    page.goto("/pipelines/app")
    page.wait_for_function("document.documentElement.dataset.live === 'open'")
    page.get_by_label("Comment").focus()  # typing: the page waits before refreshing
    api.put_approval_result(
        pipelineName="app",
        stageName="Gate",
        actionName="Approve",
        result={"summary": "elsewhere", "status": "Approved"},
        token=token,
    )
    page.get_by_role("button", name="Reject").click()
    page.wait_for_url("**/pipelines/app/approve")
    assert "ApprovalAlreadyCompletedException" in page.locator("#error").inner_text()
    page.wait_for_function("document.documentElement.dataset.live === 'open'")
    api.disable_stage_transition(
        pipelineName="app", stageName="Deploy", transitionType="Inbound", reason="Freeze"
    )
    page.wait_for_function("document.getElementById('live').textContent.includes('Freeze')")
