"""Reading the console's forms: URL-encoded fields, and the answer to a forged one."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from conveyor.domain.errors import ValidationException

CSRF_REFUSED = (
    "This form was refused: its security token is missing or does not match this browser's."
    " Reload the page and send it again."
)
Form = dict[str, str]
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
