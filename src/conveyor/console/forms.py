"""The console's state-changing forms: each a POST with the CSRF token, each checked against
the API operation's input model (the API's own validator, handed in) and calling the engine
service that operation calls. A refusal shows the pipeline page again with the
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
# Raises the API's ValidationException for an operation's input the model refuses.
Check = Callable[[str, dict[str, Any]], None]
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
    def __init__(self, pages: Pages, check: Check) -> None:
        self.pages = pages
        self.check = check
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

    def _checked(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """The operation's input built from a form, without the members left empty, as the
        API would accept it (or its `ValidationException`)."""
        given = {k: v for k, v in params.items() if v not in (None, "", [])}
        self.check(operation, given)
        return given

    def release(self, name: str, form: Form) -> str:
        params = self._checked(
            "StartPipelineExecution",
            {
                "name": name,
                "variables": [
                    {"name": n, "value": v}
                    for n, v in _pairs(form.get("variables"), "variables", 2, "=")
                ],
                "sourceRevisions": [
                    {"actionName": a, "revisionType": t, "revisionValue": v}
                    for a, t, v in _pairs(form.get("sourceRevisions"), "sourceRevisions", 3, None)
                ],
                "clientRequestToken": _field(form, "clientRequestToken", required=False),
            },
        )
        execution_id = self.services.executions.start(
            name,
            trigger_type="StartPipelineExecution",
            trigger_detail=self.caller,
            variables=params.get("variables") or (),
            client_token=params.get("clientRequestToken"),
            source_revisions=params.get("sourceRevisions") or (),
        )
        return f"Started execution {execution_id}."

    def stop(self, name: str, form: Form) -> str:
        params = self._checked(
            "StopPipelineExecution",
            {
                "pipelineName": name,
                "pipelineExecutionId": _field(form, "pipelineExecutionId", required=False),
                "abandon": form.get("abandon") in ("1", "on", "true"),
                "reason": _field(form, "reason", required=False),
            },
        )
        abandon = bool(params.get("abandon"))
        execution_id = self.services.executions.stop(
            name, params["pipelineExecutionId"], abandon=abandon, reason=params.get("reason")
        )
        return f"{'Abandoning' if abandon else 'Stopping'} execution {execution_id}."

    def retry(self, name: str, form: Form) -> str:
        params = self._checked(
            "RetryStageExecution",
            {
                "pipelineName": name,
                **{
                    k: _field(form, k, required=False)
                    for k in ("stageName", "pipelineExecutionId", "retryMode")
                },
            },
        )
        execution_id = self.services.executions.retry(
            name,
            params["stageName"],
            params["pipelineExecutionId"],
            RetryMode(params["retryMode"]),
        )
        return f"Retrying stage {params['stageName']} of execution {execution_id}."

    def approve(self, name: str, form: Form) -> str:
        params = self._checked(
            "PutApprovalResult",
            {
                "pipelineName": name,
                "stageName": _field(form, "stageName", required=False),
                "actionName": _field(form, "actionName", required=False),
                "token": _field(form, "token", required=False),
                "result": {
                    "status": _field(form, "status", required=False) or "",
                    # The API requires a summary; a decision without a comment says itself.
                    "summary": _field(form, "summary", required=False)
                    or _field(form, "status", required=False)
                    or "",
                },
            },
        )
        result = params["result"]
        self.services.executions.approve(
            name,
            params["stageName"],
            params["actionName"],
            params["token"],
            approved=result["status"] == "Approved",
            summary=result["summary"],
            caller=self.caller,
        )
        return f"{params['stageName']}/{params['actionName']}: {result['status'].lower()}."

    def transition(self, name: str, form: Form) -> str:
        enable = _field(form, "enable", required=False) == "1"
        params = self._checked(
            "EnableStageTransition" if enable else "DisableStageTransition",
            {
                "pipelineName": name,
                "stageName": _field(form, "stageName", required=False),
                "transitionType": _field(form, "transitionType", required=False),
                "reason": None if enable else _field(form, "reason", required=False),
            },
        )
        direction = params["transitionType"]
        self.services.executions.set_transition(
            name,
            params["stageName"],
            direction,
            enabled=enable,
            reason=params.get("reason"),
            caller=self.caller,
        )
        state = "enabled" if enable else "disabled"
        return f"The {direction.lower()} transition of {params['stageName']} is {state}."


def routes_of(forms: Forms) -> dict[str, Any]:
    """The form endpoints by the path under ``/pipelines/{name}/``."""
    return {
        "release": forms.endpoint(forms.release),
        "stop": forms.endpoint(forms.stop),
        "retry": forms.endpoint(forms.retry),
        "approve": forms.endpoint(forms.approve),
        "transition": forms.endpoint(forms.transition),
    }
