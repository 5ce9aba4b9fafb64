"""Turning a page's values into an HTML response: the Jinja2 environment, the values every
page has (the CSRF token, a notice, the warning that the server is open), and the cookie.

A request made by the page itself to refresh its live part (``HX-Request``) gets only that
part: the template ``<page>_live.html`` that the whole page includes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from conveyor.console import present
from conveyor.console.csrf import COOKIE, FIELD, Tokens
from conveyor.domain.errors import ConveyorError

OPEN = (
    "This server is open to anyone who can reach it: there is no sign-in yet, so anyone on "
    "its network can see and change every pipeline."
)
# Pages load scripts and styles from the server only, and no other site may frame them (a
# framed page could be clicked through); style attributes draw the timeline.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Errors that say a thing does not exist answer 404 on a page; the rest keep the API's status.
_NOT_FOUND = ("NotFoundException", "NotFound")


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("conveyor.console", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tone"] = present.tone
    env.filters["duration"] = present.duration
    env.filters["timestamp"] = present.timestamp
    env.filters["path"] = lambda value: quote(str(value), safe="")
    env.filters["link"] = present.link
    env.globals["OPEN"] = OPEN
    # A fresh clientRequestToken for each Release change form: sent twice, it starts one.
    env.globals["request_token"] = lambda: str(uuid.uuid4())
    env.globals["FIELD"] = FIELD
    return env


class Renderer:
    def __init__(self, tokens: Tokens, *, signin: bool = False) -> None:
        self.env = environment()
        self.tokens = tokens
        # Whether the server requires a signed-in user (else every page says it is open).
        self.signin = signin
        self.live = frozenset(n for n in self.env.list_templates() if n.endswith("_live.html"))

    def page(
        self,
        request: Request,
        template: str,
        values: dict[str, Any],
        *,
        status: int = 200,
        error: ConveyorError | None = None,
    ) -> Response:
        cookie = request.cookies.get(COOKIE)
        fresh = None if self.tokens.valid(cookie) else self.tokens.issue()
        now = time.time()
        context = {
            **values,
            "csrf": fresh or cookie,
            "notice": request.query_params.get("notice"),
            "error": error,
            "now": now,
            "age": lambda moment: present.age(moment, now),
            "request_path": request.url.path,
            "signin": self.signin,
            "user": getattr(request.state, "caller", None),
        }
        live = template.replace(".html", "_live.html")
        if request.headers.get("hx-request") and live in self.live:
            template = live
        body = self.env.get_template(template).render(context)
        response = HTMLResponse(body, status_code=status, headers=HEADERS)
        if fresh is not None:
            response.set_cookie(COOKIE, fresh, httponly=True, samesite="strict", path="/")
        return response

    def failure(self, request: Request, error: ConveyorError) -> Response:
        status = 404 if error.code.endswith(_NOT_FOUND) else error.status
        return self.page(request, "error.html", {"title": error.code}, status=status, error=error)
