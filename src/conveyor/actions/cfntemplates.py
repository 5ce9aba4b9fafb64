"""Templates too large for a CloudFormation request, put in S3 and passed by their URL.

CloudFormation takes at most 51,200 bytes of ``TemplateBody``; a larger template must be in
S3 and named by ``TemplateURL``, as CodePipeline does with its artifact bucket. The template
goes to the bucket ``conveyor-templates-<account>-<region>`` (made when missing) at the S3
endpoint of the settings (``aws_endpoints.s3``, else the CloudFormation one, which suits
LocalStack and AWS alike), under a key made of the pipeline's name and the template's SHA-256.
The URL is S3's own form (``https://<bucket>.s3.<region>.amazonaws.com/<key>``), the one
CloudFormation reads on AWS, and LocalStack and moto resolve to their own S3.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from conveyor.actions import aws
from conveyor.actions.base import JobContext, ProviderConfig

__all__ = ["TEMPLATE_BODY_LIMIT", "templates_bucket", "upload_template"]

# The most a CreateStack, UpdateStack or CreateChangeSet request takes as TemplateBody.
TEMPLATE_BODY_LIMIT = 51_200


def templates_bucket(config: ProviderConfig, region: str) -> str:
    return f"conveyor-templates-{config.account}-{region}".lower()


def upload_template(
    config: ProviderConfig, context: JobContext, body: str, log: Callable[[str], None]
) -> str:
    """Put ``body`` in the templates bucket; its URL for ``TemplateURL``."""
    region = aws.region_of(config, context)
    endpoint_of = "s3" if "s3" in config.aws_endpoints else "cloudformation"
    s3 = aws.client(config, "s3", context, endpoint_of=endpoint_of)
    bucket = templates_bucket(config, region)
    data = body.encode("utf-8")
    key = f"{context.pipeline_name}/{hashlib.sha256(data).hexdigest()}.template"
    try:
        s3.head_bucket(Bucket=bucket)
    except aws.AwsError as error:
        if aws.error_code(error) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        place = {} if region == "us-east-1" else {"LocationConstraint": region}
        try:
            s3.create_bucket(
                Bucket=bucket, **({"CreateBucketConfiguration": place} if place else {})
            )
        except aws.AwsError as race:
            if aws.error_code(race) not in ("BucketAlreadyOwnedByYou",):
                raise
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    log(
        f"The template is {len(data):,} bytes, over the {TEMPLATE_BODY_LIMIT:,} a request takes: "
        f"passed as s3://{bucket}/{key}"
    )
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"
