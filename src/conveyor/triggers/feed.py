"""Starting the executions that changes call for, once each.

Every start carries the change's token as its ``clientRequestToken``, so however often a change
is seen (by a restarted server, by two servers, by a poll and a delivery) it starts one
execution; the execution is pinned to the change's revision, and output variables the change
implies (a pull request's) go to the source action with it.
"""

from __future__ import annotations

import json
import logging

from conveyor.domain.errors import ConveyorError
from conveyor.domain.triggers import Fire
from conveyor.engine.services import Services
from conveyor.store import DuplicateKey
from conveyor.triggers.catalog import Target

log = logging.getLogger("conveyor.triggers")


class Feed:
    def __init__(self, services: Services) -> None:
        self._services = services

    def start(self, target: Target, fire: Fire, trigger_type: str) -> str | None:
        """The execution started (or already started) for ``fire``; None when the pipeline
        cannot start one (it was deleted meanwhile)."""
        revision = {
            "actionName": fire.action,
            "revisionType": fire.revision_type,
            "revisionValue": fire.revision,
        }
        if fire.variables:
            revision["outputVariables"] = json.dumps(dict(fire.variables))
        try:
            execution = self._services.executions.start(
                target.pipeline_name,
                trigger_type=trigger_type,
                trigger_detail=fire.detail,
                client_token=fire.token,
                source_revisions=[revision],
            )
        except DuplicateKey:
            return None  # another server started it at the same moment
        except ConveyorError as error:
            log.warning("cannot start pipeline %s: %s", target.pipeline_name, error.message)
            return None
        log.info(
            "pipeline %s: %s started execution %s", target.pipeline_name, fire.detail, execution
        )
        return execution
