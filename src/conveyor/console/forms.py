"""The console's state-changing forms: each a POST with the CSRF token, each calling the
engine service the API operation calls. A refusal shows the pipeline page again with the
API's error (its code and message) and the API's HTTP status; success redirects (303) to the
page that shows the result, so reloading it never repeats the change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from conveyor.console.csrf import COOKIE, FIELD
from conveyor.console.pages import Pages, internal_failure
from conveyor.console.render import HEADERS
from conveyor.domain.errors import ConveyorError, ValidationException
from conveyor.domain.execution import RetryMode

CSRF_REFUSED = (
    "This form was refused: its security token is missing or does not match this browser's."
    " Reload the page and send it again."
)
Endpoint = Callable[[Request], Awaitable[Response]]
Form = dict[str, str]
Change = Callable[[str, Form], str]  # (pipeline, form) -> the notice to show
URLENCODED = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> Form:
    """A URL-encoded form, the first value of each field (the console's forms send no files)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = (await request.body()).decode("utf-8", "replace")
    if body and kind != URLENCODED:
        raise ValidationException(f"A form must be sent as {URLENCODED}, not '{kind}'.")
    form: Form = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        form.setdefault(key, value)
    return form


def _field(form: Form, name: str, *, required: bool = True) -> str | None:
    text = form.get(name, "").strip()
    if required and not text:
        raise ValidationException(f"The field '{name}' is required.")
    return text or None


def _pairs(text: str | None, field: str, parts: int, separator: str | None) -> list[list[str]]:
    """Lines of ``text`` split in ``parts`` (blank lines skipped)."""
    found = []
    for number, line in enumerate((text or "").splitlines(), 1):
        if not line.strip():
            continue
        if separator == "=":
            name, equals, value = line.partition("=")
            items = [name.strip(), value.strip()] if equals else [line.strip()]
        else:
            items = line.split(None, parts - 1)
        if len(items) != parts or not all(items):
            shape = "NAME=value" if separator == "=" else "ACTION TYPE VALUE"
            raise ValidationException(f"Line {number} of '{field}' is not {shape}: '{line}'.")
        found.append(items)
    return found


class Forms:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.services = pages.services
        self.caller = f"arn:aws:iam::{self.services.scope.account}:user/console"

    def endpoint(self, change: Change) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            name = request.path_params["name"]
            try:
                form = await read_form(request)
                if not self.pages.renderer.tokens.accepts(
                    request.cookies.get(COOKIE), _field(form, FIELD, required=False)
                ):
                    return HTMLResponse(CSRF_REFUSED, status_code=403, headers=HEADERS)
                notice = await run_in_threadpool(change, name, form)
            except ConveyorError as error:
                return await self._refused(request, name, error)
            except Exception:
                return self.pages.renderer.failure(request, internal_failure(request))
            return RedirectResponse(
                f"/pipelines/{quote(name, safe='')}?{urlencode({'notice': notice})}",
                status_code=303,
            )

        return endpoint

    async def _refused(self, request: Request, name: str, error: ConveyorError) -> Response:
        """The pipeline page with the error above it; the error page if the pipeline is gone."""
        try:
            template, values = await run_in_threadpool(
                self.pages.read, self.pages.pipeline, request
            )
        except ConveyorError:
            return self.pages.renderer.failure(request, error)
        return self.pages.renderer.page(request, template, values, status=error.status, error=error)

    # -- the changes --------------------------------------------------------------------------

    def release(self, name: str, form: Form) -> str:
        variables = [
            {"name": n, "value": v}
            for n, v in _pairs(_field(form, "variables", required=False), "variables", 2, "=")
        ]
        revisions = [
            {"actionName": a, "revisionType": t, "revisionValue": v}
            for a, t, v in _pairs(
                _field(form, "sourceRevisions", required=False), "sourceRevisions", 3, None
            )
        ]
        execution_id = self.services.executions.start(
            name,
            trigger_type="StartPipelineExecution",
            trigger_detail=self.caller,
            variables=variables,
            client_token=_field(form, "clientRequestToken", required=False),
            source_revisions=revisions,
        )
        return f"Started execution {execution_id}."

    def stop(self, name: str, form: Form) -> str:
        execution_id = _field(form, "pipelineExecutionId") or ""
        abandon = form.get("abandon") in ("1", "on", "true")
        self.services.executions.stop(
            name, execution_id, abandon=abandon, reason=_field(form, "reason", required=False)
        )
        return f"{'Abandoning' if abandon else 'Stopping'} execution {execution_id}."

    def retry(self, name: str, form: Form) -> str:
        stage = _field(form, "stageName") or ""
        mode = _field(form, "retryMode") or ""
        if mode not in {m.value for m in RetryMode}:
            raise ValidationException(
                f"The field 'retryMode' must be one of {', '.join(m.value for m in RetryMode)}."
            )
        execution_id = self.services.executions.retry(
            name, stage, _field(form, "pipelineExecutionId") or "", RetryMode(mode)
        )
        return f"Retrying stage {stage} of execution {execution_id}."

    def approve(self, name: str, form: Form) -> str:
        stage = _field(form, "stageName") or ""
        action = _field(form, "actionName") or ""
        decision = _field(form, "status") or ""
        if decision not in ("Approved", "Rejected"):
            raise ValidationException("The field 'status' must be Approved or Rejected.")
        self.services.executions.approve(
            name,
            stage,
            action,
            _field(form, "token") or "",
            approved=decision == "Approved",
            summary=_field(form, "summary", required=False) or "",
            caller=self.caller,
        )
        return f"{stage}/{action}: {decision.lower()}."

    def transition(self, name: str, form: Form) -> str:
        stage = _field(form, "stageName") or ""
        direction = _field(form, "transitionType") or ""
        if direction not in ("Inbound", "Outbound"):
            raise ValidationException("The field 'transitionType' must be Inbound or Outbound.")
        enable = _field(form, "enable", required=False) == "1"
        reason = None if enable else _field(form, "reason")
        self.services.executions.set_transition(
            name, stage, direction, enabled=enable, reason=reason, caller=self.caller
        )
        state = "enabled" if enable else "disabled"
        return f"The {direction.lower()} transition of {stage} is {state}."


def routes_of(forms: Forms) -> dict[str, Any]:
    """The form endpoints by the path under ``/pipelines/{name}/``."""
    return {
        "release": forms.endpoint(forms.release),
        "stop": forms.endpoint(forms.stop),
        "retry": forms.endpoint(forms.retry),
        "approve": forms.endpoint(forms.approve),
        "transition": forms.endpoint(forms.transition),
    }
