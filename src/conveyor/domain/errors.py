"""Every error Conveyor reports, named exactly as AWS CodePipeline names it.

One base class, one subclass per exception in the CodePipeline model, so a single grep finds
the spec, the raise and the test. Only the protocol layer turns these into responses::

    ConveyorError                      400 unless the class says otherwise
    ├── ValidationException            input that breaks the model's constraints
    ├── PipelineNotFoundException, StageNotFoundException, ...   (the model's exceptions)
    ├── ConflictException              409
    ├── UnknownOperationException      an X-Amz-Target that is not an operation of the model
    ├── SerializationException         a body that is not a JSON object
    ├── RequestEntityTooLargeException 413: a body over the server's limit
    ├── RequestTimeoutException        408: a body that did not arrive in time
    ├── MisdirectedRequestException    421: a Host header that does not name the server
    ├── UnsupportedOperationException  an operation Conveyor does not serve yet
    ├── UnrecognizedClientException    a signature whose access key is unknown
    ├── MissingAuthenticationTokenException, IncompleteSignatureException,
    │   InvalidSignatureException      requests without, or with a malformed or wrong, signature
    ├── AccessDeniedException          a caller whose policies do not allow the operation
    └── InternalFailure                500: anything unexpected, logged by the protocol layer
"""

from __future__ import annotations

from typing import ClassVar


class ConveyorError(Exception):
    """Base of every error with an AWS error code; ``code`` is the class name."""

    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        return type(self).__name__


class ValidationException(ConveyorError):
    pass


class ActionExecutionNotFoundException(ConveyorError):
    pass


class ActionNotFoundException(ConveyorError):
    pass


class ActionTypeAlreadyExistsException(ConveyorError):
    pass


class ActionTypeNotFoundException(ConveyorError):
    pass


class ApprovalAlreadyCompletedException(ConveyorError):
    pass


class ConcurrentModificationException(ConveyorError):
    pass


class ConcurrentPipelineExecutionsLimitExceededException(ConveyorError):
    pass


class ConditionNotOverridableException(ConveyorError):
    pass


class ConflictException(ConveyorError):
    status = 409


class DuplicatedStopRequestException(ConveyorError):
    pass


class InvalidActionDeclarationException(ConveyorError):
    pass


class InvalidApprovalTokenException(ConveyorError):
    pass


class InvalidArnException(ConveyorError):
    pass


class InvalidBlockerDeclarationException(ConveyorError):
    pass


class InvalidClientTokenException(ConveyorError):
    pass


class InvalidJobException(ConveyorError):
    pass


class InvalidJobStateException(ConveyorError):
    pass


class InvalidNextTokenException(ConveyorError):
    pass


class InvalidNonceException(ConveyorError):
    pass


class InvalidStageDeclarationException(ConveyorError):
    pass


class InvalidStructureException(ConveyorError):
    pass


class InvalidTagsException(ConveyorError):
    pass


class InvalidWebhookAuthenticationParametersException(ConveyorError):
    pass


class InvalidWebhookFilterPatternException(ConveyorError):
    pass


class JobNotFoundException(ConveyorError):
    pass


class LimitExceededException(ConveyorError):
    pass


class NotLatestPipelineExecutionException(ConveyorError):
    pass


class OutputVariablesSizeExceededException(ConveyorError):
    pass


class PipelineExecutionNotFoundException(ConveyorError):
    pass


class PipelineExecutionNotStoppableException(ConveyorError):
    pass


class PipelineExecutionOutdatedException(ConveyorError):
    pass


class PipelineNameInUseException(ConveyorError):
    pass


class PipelineNotFoundException(ConveyorError):
    pass


class PipelineVersionNotFoundException(ConveyorError):
    pass


class RequestFailedException(ConveyorError):
    pass


class ResourceNotFoundException(ConveyorError):
    pass


class StageNotFoundException(ConveyorError):
    pass


class StageNotRetryableException(ConveyorError):
    pass


class TooManyTagsException(ConveyorError):
    pass


class UnableToRollbackStageException(ConveyorError):
    pass


class WebhookNotFoundException(ConveyorError):
    pass


# CodeBuild's exceptions, for its projects on the same endpoint (ResourceNotFoundException
# above is also CodeBuild's).


class AccountLimitExceededException(ConveyorError):
    pass


class InvalidInputException(ConveyorError):
    pass


class ResourceAlreadyExistsException(ConveyorError):
    pass


# CodeStar Notifications' own exception, for notification rules on the same endpoint.


class ConfigurationException(ConveyorError):
    pass


# Protocol-level errors: not in the CodePipeline model, but what AWS answers for such requests.


class UnknownOperationException(ConveyorError):
    pass


class SerializationException(ConveyorError):
    pass


class RequestEntityTooLargeException(ConveyorError):
    status = 413


class RequestTimeoutException(ConveyorError):
    status = 408


class MisdirectedRequestException(ConveyorError):
    """A request whose Host header does not name this server (answered before the API)."""

    status = 421


class UnsupportedOperationException(ConveyorError):
    pass


class UnrecognizedClientException(ConveyorError):
    """The request's signature names an access key that does not exist."""


class MissingAuthenticationTokenException(ConveyorError):
    """A request without any signature, to a server that requires one (403, as AWS's
    common errors give it)."""

    status = 403


class IncompleteSignatureException(ConveyorError):
    """An Authorization header, or the headers it names, that SigV4 cannot read."""


class InvalidSignatureException(ConveyorError):
    """A signature that does not match the request, or that is out of date."""


class AccessDeniedException(ConveyorError):
    """The caller's policies do not allow the operation on the resource."""


# CloudTrail's, for LookupEvents.


class InvalidLookupAttributesException(ConveyorError):
    pass


class InvalidTimeRangeException(ConveyorError):
    pass


class InternalFailure(ConveyorError):
    status = 500
