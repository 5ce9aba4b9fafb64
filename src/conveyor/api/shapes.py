"""Domain values in the wire shapes of the model (``ActionType``, ``ActionTypeDeclaration``)."""

from __future__ import annotations

from typing import Any

from conveyor.domain.actiontype import ActionType, ActionTypeId, ActionTypeUrls, ArtifactBounds


def compact(**members: Any) -> dict[str, Any]:
    """A structure with its unset (None) members left out, as AWS leaves them out."""
    return {k: v for k, v in members.items() if v is not None}


def type_id_shape(type_id: ActionTypeId) -> dict[str, str]:
    return {
        "category": type_id.category,
        "owner": type_id.owner,
        "provider": type_id.provider,
        "version": type_id.version,
    }


def type_id_from(raw: dict[str, Any], owner: str | None = None) -> ActionTypeId:
    return ActionTypeId(raw["category"], owner or raw["owner"], raw["provider"], raw["version"])


def _counts(bounds: ArtifactBounds) -> dict[str, int]:
    return {"minimumCount": bounds.minimum, "maximumCount": bounds.maximum}


def _settings(urls: ActionTypeUrls) -> dict[str, str]:
    return compact(
        thirdPartyConfigurationUrl=urls.configuration_url,
        entityUrlTemplate=urls.entity_url_template,
        executionUrlTemplate=urls.execution_url_template,
        revisionUrlTemplate=urls.revision_url_template,
    )


def action_type_shape(action_type: ActionType) -> dict[str, Any]:
    """The ``ActionType`` structure of ListActionTypes and CreateCustomActionType."""
    return compact(
        id=type_id_shape(action_type.id),
        settings=_settings(action_type.urls) or None,
        actionConfigurationProperties=[
            compact(
                name=p.name,
                required=p.required,
                key=p.key,
                secret=p.secret,
                queryable=p.queryable,
                description=p.description,
                type=p.type.value if p.type else None,
            )
            for p in action_type.properties
        ],
        inputArtifactDetails=_counts(action_type.input_artifacts),
        outputArtifactDetails=_counts(action_type.output_artifacts),
    )


def declaration_shape(action_type: ActionType) -> dict[str, Any]:
    """The ``ActionTypeDeclaration`` structure of GetActionType."""
    urls = action_type.urls
    return compact(
        description=action_type.description,
        executor=compact(
            configuration={"jobWorkerExecutorConfiguration": {}},
            type="JobWorker",
            jobTimeout=action_type.job_timeout,
        ),
        id=type_id_shape(action_type.id),
        inputArtifactDetails=_counts(action_type.input_artifacts),
        outputArtifactDetails=_counts(action_type.output_artifacts),
        permissions={"allowedAccounts": ["*"]},
        properties=[
            compact(
                name=p.name,
                optional=not p.required,
                key=p.key,
                noEcho=p.secret,
                queryable=p.queryable,
                description=p.description,
            )
            for p in action_type.properties
        ],
        urls=compact(
            configurationUrl=urls.configuration_url,
            entityUrlTemplate=urls.entity_url_template,
            executionUrlTemplate=urls.execution_url_template,
            revisionUrlTemplate=urls.revision_url_template,
        )
        or None,
    )


def tags_shape(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def tags_from(raw: list[dict[str, str]] | None) -> list[tuple[str, str]]:
    return [(t["key"], t["value"]) for t in raw or ()]
