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
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from conveyor.console.csrf import Tokens
from conveyor.console.forms import Check, Forms, routes_of
from conveyor.console.live import hub_of, make_stream
from conveyor.console.logstream import make_log_stream
from conveyor.console.pages import Pages
from conveyor.console.render import Renderer
from conveyor.engine.services import Services

STATIC = Path(__file__).parent / "static"


def console_routes(services: Services, logs: Path | None, check: Check) -> list[BaseRoute]:
    """The console's routes, to be served beside the API (which answers ``POST /``);
    ``check`` validates a form's values as the API validates the operation's input."""
    pages = Pages(services, Renderer(Tokens(services.token_key)), logs)
    forms = Forms(pages, check)
    under = "/pipelines/{name}"
    routes: list[BaseRoute] = [
        Route("/", pages.endpoint(pages.pipelines), methods=["GET"]),
        Route(under, pages.endpoint(pages.pipeline), methods=["GET"]),
        Route(f"{under}/executions", pages.endpoint(pages.history), methods=["GET"]),
        Route(
            f"{under}/executions/{{execution_id}}",
            pages.endpoint(pages.execution),
            methods=["GET"],
        ),
        Route(f"{under}/logs/{{action_execution_id}}", pages.endpoint(pages.log), methods=["GET"]),
        Route(f"{under}/definition", pages.endpoint(pages.definition), methods=["GET"]),
        Route("/action-types", pages.endpoint(pages.action_types), methods=["GET"]),
        Route("/console/events", make_stream(services.store, services.notifier), methods=["GET"]),
        Mount("/console/static", StaticFiles(directory=STATIC), name="static"),
    ]
    routes += [
        Route(f"{under}/{path}", endpoint, methods=["POST"])
        for path, endpoint in routes_of(forms).items()
    ]
    if logs is not None:
        routes.append(
            Route(
                "/console/logs/{action_execution_id}",
                make_log_stream(services.store, logs, hub_of(services.notifier)),
                methods=["GET"],
            )
        )
    return routes
