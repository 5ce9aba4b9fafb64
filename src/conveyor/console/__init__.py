"""The web console: pages that show every pipeline, its executions, logs, definitions and
action types, forms that start, stop, retry, approve and steer them, and a live event stream.

Server-rendered HTML (Jinja2 templates), htmx vendored under ``/console/static``, hand-written
CSS; pages work without JavaScript except for their live updates. Everything is read through
the engine's views and changed through the engine's services, as the API does.

URLs (all GET unless said; every form is a POST with a CSRF token):

    /                                           pipelines (?q= name prefix, ?after= next page)
    /pipelines/{name}                           a pipeline, its stages, actions and forms
    /pipelines/{name}/executions                execution history (?status=, ?before=)
    /pipelines/{name}/executions/{id}           an execution and its timeline
    /pipelines/{name}/logs/{actionExecutionId}  an action's log
    /pipelines/{name}/definition                the declaration (?version=, ?format=, ?compare=)
    /action-types                               the action type catalog
    POST /pipelines/{name}/{release|stop|retry|approve|transition}
    /console/events                             Server-Sent Events (?pipeline=)
    /console/logs/{actionExecutionId}           a log followed as Server-Sent Events
    /console/sign-in, POST /console/sign-out    when the server requires authentication
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from conveyor.auth.gate import Access
from conveyor.console.csrf import Tokens
from conveyor.console.forms import Check, Forms, routes_of
from conveyor.console.live import hub_of, make_stream
from conveyor.console.logstream import make_log_stream
from conveyor.console.pages import Pages
from conveyor.console.render import Renderer
from conveyor.console.signin import Gate, Need, caller_of, signin_routes
from conveyor.domain.errors import ActionExecutionNotFoundException
from conveyor.engine.services import Services

STATIC = Path(__file__).parent / "static"


def console_routes(
    services: Services, logs: Path | None, check: Check, access: Access | None = None
) -> list[BaseRoute]:
    """The console's routes, to be served beside the API (which answers ``POST /``);
    ``check`` validates a form's values as the API validates the operation's input, and
    ``access``, when it requires authentication, makes every page ask for a signed-in user
    and decides it on the user's policies (`conveyor.console.signin`)."""
    gate = Gate(services, access)
    renderer = Renderer(Tokens(services.token_key), signin=gate.required)
    pages = Pages(services, renderer, logs, gate)
    forms = Forms(pages, check, gate)
    scope = services.scope

    def on_pipeline(operation: str) -> Need:
        return lambda request: (operation, scope.pipeline(request.path_params["name"]))

    def everything(operation: str) -> Need:
        return lambda _: (operation, "*")

    def log_of(request: Request) -> tuple[str, str]:
        with services.store.read() as tx:
            action = tx.actions.get(request.path_params["action_execution_id"])
            pipeline = tx.pipelines.get_by_id(action.pipeline_id) if action else None
        if pipeline is None:
            raise ActionExecutionNotFoundException("No such action execution.")
        return "ListActionExecutions", scope.pipeline(pipeline.name)

    def events_of(request: Request) -> tuple[str, str]:
        pipeline = request.query_params.get("pipeline")
        if pipeline:
            return "GetPipelineState", scope.pipeline(pipeline)
        return "ListPipelines", "*"

    def visible(request: Request) -> Callable[[str], bool]:
        caller = caller_of(request)
        return lambda name: gate.permits(caller, "GetPipelineState", scope.pipeline(name))

    under = "/pipelines/{name}"
    shown = [
        ("/", pages.pipelines, everything("ListPipelines")),
        (under, pages.pipeline, on_pipeline("GetPipelineState")),
        (f"{under}/executions", pages.history, on_pipeline("ListPipelineExecutions")),
        (
            f"{under}/executions/{{execution_id}}",
            pages.execution,
            on_pipeline("GetPipelineExecution"),
        ),
        (
            f"{under}/logs/{{action_execution_id}}",
            pages.log,
            on_pipeline("ListActionExecutions"),
        ),
        (f"{under}/definition", pages.definition, on_pipeline("GetPipeline")),
        ("/action-types", pages.action_types, everything("ListActionTypes")),
    ]
    routes: list[BaseRoute] = [
        Route(path, gate.guard(pages.endpoint(build), need), methods=["GET"])
        for path, build, need in shown
    ]
    stream = make_stream(services.store, services.notifier, visible if gate.required else None)
    routes += [
        Route("/console/events", gate.guard(stream, events_of, page=False), methods=["GET"]),
        Mount("/console/static", StaticFiles(directory=STATIC), name="static"),
        *signin_routes(gate, renderer),
    ]
    routes += [
        Route(f"{under}/{path}", gate.guard(endpoint, page=False), methods=["POST"])
        for path, endpoint in routes_of(forms).items()
    ]
    if logs is not None:
        follow = make_log_stream(services.store, logs, hub_of(services.notifier))
        routes.append(
            Route(
                "/console/logs/{action_execution_id}",
                gate.guard(follow, log_of, page=False),
                methods=["GET"],
            )
        )
    return routes
