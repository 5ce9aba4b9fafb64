"""The ``Source/AWS/ECR/1`` executor: the image a tag of an ECR repository names, through boto3.

The image is ``ImageTag`` (``latest`` by default) of ``RepositoryName``, or the digest a
start-time source revision gives. Its details go into the output artifact as
``imageDetail.json``, in the shape CodePipeline writes, and become the output variables
(``RegistryId``, ``RepositoryName``, ``ImageTag``, ``ImageDigest``, ``ImageURI``); the
digest is the revision and the external execution id.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from conveyor.actions import aws
from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig, Revision
from conveyor.actions.inputs import put_output
from conveyor.artifacts import ArtifactError

__all__ = ["EcrSource"]

_DEFAULT_TAG = "latest"


class EcrSource:
    """Emits the details of an image of an ECR repository at the ``ecr`` endpoint."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def run(self, context: JobContext) -> JobResult:
        repository = context.configuration.get("RepositoryName", "").strip()
        tag = context.configuration.get("ImageTag", "").strip() or _DEFAULT_TAG
        if not repository:
            return JobResult.failed(
                "The configuration has no RepositoryName", FailureType.CONFIGURATION_ERROR
            )
        if len(context.output_artifacts) != 1:
            return JobResult.failed(
                "An ECR source action has exactly one output artifact",
                FailureType.CONFIGURATION_ERROR,
            )
        ecr: Any = aws.client(self.config, "ecr", context)
        wanted = context.source_revision
        image_id = {"imageDigest": wanted} if wanted else {"imageTag": tag}
        try:
            (found,) = ecr.describe_repositories(repositoryNames=[repository])["repositories"]
            (image,) = ecr.describe_images(repositoryName=repository, imageIds=[image_id])[
                "imageDetails"
            ]
        except aws.AwsError as error:
            return JobResult.failed(
                f"Image {wanted or tag} of {repository}: {aws.describe(error)}",
                FailureType.REVISION_UNAVAILABLE,
            )
        digest = str(image["imageDigest"])
        uri = f"{found['repositoryUri']}@{digest}"
        pushed = image.get("imagePushedAt")
        tags = [str(t) for t in image.get("imageTags") or ()]
        detail: dict[str, Any] = {
            "ImageSizeInBytes": str(image.get("imageSizeInBytes", 0)),
            "ImageDigest": digest,
            "Version": "1.0",
            "ImagePushedAt": pushed.strftime("%a %b %d %H:%M:%S %Z %Y")
            if isinstance(pushed, datetime)
            else str(pushed),
            "RegistryId": str(image.get("registryId", found.get("registryId", ""))),
            "RepositoryName": repository,
            "ImageURI": uri,
            "ImageTags": tags,
        }
        try:
            put_output(context, "imageDetail.json", json.dumps(detail, indent=2))
        except ArtifactError as error:
            return JobResult.failed(str(error))
        context.log.write(f"Emitted {uri}\n")
        shown_tag = tag if not wanted else ",".join(tags) or tag
        return JobResult(
            succeeded=True,
            summary=f"{repository}:{shown_tag} is {digest}",
            output_variables={
                "RegistryId": detail["RegistryId"],
                "RepositoryName": repository,
                "ImageTag": shown_tag,
                "ImageDigest": digest,
                "ImageURI": uri,
            },
            revision=Revision(
                revision_id=digest,
                change_identifier=digest,
                created=pushed.timestamp() if isinstance(pushed, datetime) else None,
                summary=f"{repository}:{shown_tag}",
            ),
            external_execution_id=digest,
        )
