"""Webhook operations: PutWebhook, ListWebhooks, DeleteWebhook, and the third-party
registrations, which Conveyor answers without telling any third party anything."""

from __future__ import annotations

from typing import Any

from conveyor.api.context import Context, Params
from conveyor.api.shapes import compact, tags_from, tags_shape
from conveyor.domain.webhooks import masked
from conveyor.engine.webhooks import WebhookView

DEFAULT_PAGE = 100


def _item(view: WebhookView) -> dict[str, Any]:
    """The ``ListWebhookItem`` of a webhook, its secret token redacted."""
    record = view.record
    return compact(
        definition=masked(record.definition),
        url=view.url,
        errorMessage=record.error_message,
        errorCode=record.error_code,
        lastTriggered=record.last_triggered,
        arn=view.arn,
        tags=tags_shape(view.tags) or None,
    )


def put_webhook(ctx: Context, params: Params) -> dict[str, Any]:
    view = ctx.services.webhooks.put(params["webhook"], tags_from(params.get("tags")))
    return {"webhook": _item(view)}


def list_webhooks(ctx: Context, params: Params) -> dict[str, Any]:
    after = ctx.tokens.read("ListWebhooks", {}, params.get("NextToken"))
    views, following = ctx.services.webhooks.page(after, params.get("MaxResults") or DEFAULT_PAGE)
    return compact(
        webhooks=[_item(v) for v in views],
        NextToken=ctx.tokens.issue("ListWebhooks", {}, following) if following else None,
    )


def delete_webhook(ctx: Context, params: Params) -> None:
    ctx.services.webhooks.delete(params["name"])


def register_webhook_with_third_party(ctx: Context, params: Params) -> None:
    ctx.services.webhooks.require(params.get("webhookName"))


def deregister_webhook_with_third_party(ctx: Context, params: Params) -> None:
    ctx.services.webhooks.require(params.get("webhookName"))
