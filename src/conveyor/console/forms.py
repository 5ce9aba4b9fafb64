"""The console's state-changing forms: each a POST with the CSRF token, each checked against
the API operation's input model (the API's own validator, handed in) and calling the engine
service that operation calls. A refusal shows the pipeline page again with the
API's error (its code and message) and the API's HTTP status; success redirects (303) to the
page that shows the result, so reloading it never repeats the change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from conveyor.console.csrf import COOKIE, FIELD
from conveyor.console.formdata import CSRF_REFUSED, Form, read_form
from conveyor.console.pages import Pages, internal_failure
from conveyor.console.render import HEADERS
from conveyor.console.signin import Call, Gate, caller_of
from conveyor.domain.errors import ConveyorError, ValidationException
from conveyor.domain.execution import RetryMode

Endpoint = Callable[[Request], Awaitable[Response]]
Change = Callable[[str, Form, Call], str]  # (pipeline, form, call) -> the notice to show
# Raises the API's ValidationException for an operation's input the model refuses.
Check = Callable[[str, dict[str, Any]], None]


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
    def __init__(self, pages: Pages, check: Check, gate: Gate) -> None:
        self.pages = pages
        self.check = check
        self.gate = gate
        self.services = pages.services
        # Who a change is made by when nobody signs in: the console itself.
        self.anonymous = f"arn:aws:iam::{self.services.scope.account}:user/console"

    def endpoint(self, change: Change) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            name = request.path_params["name"]
            call = Call(caller_of(request))
            try:
                form = await read_form(request)
                if not self.pages.renderer.tokens.accepts(
                    request.cookies.get(COOKIE), _field(form, FIELD, required=False)
                ):
                    return HTMLResponse(CSRF_REFUSED, status_code=403, headers=HEADERS)
                notice = await run_in_threadpool(change, name, form, call)
            except ConveyorError as error:
                await run_in_threadpool(self.gate.record, request, call, error)
                return await self._refused(request, name, error)
            except Exception:
                return self.pages.renderer.failure(request, internal_failure(request))
            await run_in_threadpool(self.gate.record, request, call, None)
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

    def _checked(self, call: Call, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """The operation's input built from a form, without the members left empty, as the
        API would accept it (or its `ValidationException`), once the user may perform it
        (or `AccessDeniedException`)."""
        given = {k: v for k, v in params.items() if v not in (None, "", [])}
        self.check(operation, given)
        self.gate.form_call(call, operation, given)
        return given

    def _by(self, call: Call) -> str:
        return call.caller.arn if call.caller is not None else self.anonymous

    def release(self, name: str, form: Form, call: Call) -> str:
        params = self._checked(
            call,
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
            trigger_detail=self._by(call),
            variables=params.get("variables") or (),
            client_token=params.get("clientRequestToken"),
            source_revisions=params.get("sourceRevisions") or (),
        )
        return f"Started execution {execution_id}."

    def stop(self, name: str, form: Form, call: Call) -> str:
        params = self._checked(
            call,
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

    def retry(self, name: str, form: Form, call: Call) -> str:
        params = self._checked(
            call,
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

    def rollback(self, name: str, form: Form, call: Call) -> str:
        params = self._checked(
            call,
            "RollbackStage",
            {
                "pipelineName": name,
                **{
                    k: _field(form, k, required=False)
                    for k in ("stageName", "targetPipelineExecutionId")
                },
            },
        )
        stage, target = params["stageName"], params["targetPipelineExecutionId"]
        execution_id = self.services.executions.rollback(name, stage, target, self._by(call))
        return f"Rolling back stage {stage} to execution {target}: execution {execution_id}."

    def approve(self, name: str, form: Form, call: Call) -> str:
        params = self._checked(
            call,
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
            caller=self._by(call),
        )
        return f"{params['stageName']}/{params['actionName']}: {result['status'].lower()}."

    def transition(self, name: str, form: Form, call: Call) -> str:
        enable = _field(form, "enable", required=False) == "1"
        params = self._checked(
            call,
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
            caller=self._by(call),
        )
        state = "enabled" if enable else "disabled"
        return f"The {direction.lower()} transition of {params['stageName']} is {state}."


def routes_of(forms: Forms) -> dict[str, Any]:
    """The form endpoints by the path under ``/pipelines/{name}/``."""
    return {
        "release": forms.endpoint(forms.release),
        "stop": forms.endpoint(forms.stop),
        "retry": forms.endpoint(forms.retry),
        "rollback": forms.endpoint(forms.rollback),
        "approve": forms.endpoint(forms.approve),
        "transition": forms.endpoint(forms.transition),
    }
