"""The server's log of what it does: one line per state change, from the committed events.

Each change the engine makes is recorded as an EventBridge event in the same transaction;
the store hands a transaction's events here once it has committed, so a line is written
for exactly what happened and nothing that was rolled back. Execution changes and action
ends are INFO, stage changes and action starts DEBUG. Each line carries its facts as the
record's extra fields (pipeline, execution, stage, action, state), which
``--log-format json`` turns into keys.
"""

from __future__ import annotations

import logging
from typing import Any

from conveyor.domain.events import ACTION, PIPELINE, STAGE

log = logging.getLogger("conveyor.events")
_ENDS = frozenset({"SUCCEEDED", "FAILED", "ABANDONED"})


def log_events(events: list[tuple[str, dict[str, Any]]]) -> None:
    """Log each event as a line; never raises (the change it reports has committed)."""
    for detail_type, body in events:
        try:
            _log(detail_type, body["detail"])
        except Exception:  # a malformed event must not fail a committed write
            log.debug("cannot log an event of type %s", detail_type, exc_info=True)


def _log(detail_type: str, detail: dict[str, Any]) -> None:
    facts = {
        "pipeline": detail["pipeline"],
        "execution": detail["execution-id"],
        "state": detail["state"],
    }
    if detail_type == PIPELINE:
        log.info("pipeline %s execution %s %s", *facts.values(), extra=facts)
    elif detail_type == STAGE:
        facts["stage"] = detail["stage"]
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "pipeline %s execution %s stage %s %s",
                facts["pipeline"],
                facts["execution"],
                facts["stage"],
                facts["state"],
                extra=facts,
            )
    elif detail_type == ACTION:
        facts["stage"] = detail["stage"]
        facts["action"] = detail["action"]
        level = logging.INFO if facts["state"] in _ENDS else logging.DEBUG
        error = (detail.get("execution-result") or {}).get("error-code")
        if error:
            facts["error"] = error
        if log.isEnabledFor(level):
            log.log(
                level,
                "pipeline %s execution %s action %s/%s %s%s",
                facts["pipeline"],
                facts["execution"],
                facts["stage"],
                facts["action"],
                facts["state"],
                f" ({error})" if error else "",
                extra=facts,
            )
