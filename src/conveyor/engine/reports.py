"""CodeBuild report groups and reports: creating, reading, listing and deleting them, and the
test cases they hold.

A build's results come from the buildspec's ``reports``; `record_report` keeps them as the build
ends (`BuildService.finished`, in the build's own transaction), creating the report group the
first time a build reports to it, as CodeBuild does. `ReportService` serves the API:
CreateReportGroup makes a group beforehand, and the lists, batch reads, deletions and
DescribeTestCases read back what the builds reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conveyor.domain.arn import Scope
from conveyor.domain.builds import (
    Page,
    ReportResult,
    build_arn,
    group_name,
    report_arn,
    report_group_arn,
)
from conveyor.domain.errors import (
    InvalidInputException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from conveyor.engine.clock import Clock
from conveyor.store import CaseRecord, DuplicateKey, ReportGroupRecord, ReportRecord, Store

__all__ = ["ReportService", "record_report"]


def record_report(
    tx: Any, scope: Scope, project: str, build_id: str, result: ReportResult, now: float
) -> None:
    """Keep one build's results for one report group (in the build's own transaction): the
    group is created as the build first reports to it, as CodeBuild creates it."""
    name = group_name(project, result.group)
    group = report_group_arn(scope, name)
    if not tx.builds.get_groups([group]):
        config = {"exportConfigType": "NO_EXPORT"}
        fresh: dict[str, Any] = {
            "type": "TEST",
            "exportConfig": config,
            "tags": [],
            "status": "ACTIVE",
        }
        tx.builds.insert_group(ReportGroupRecord(group, name, now, now, fresh))
    arn = report_arn(scope, name, build_id)
    counts = result.status_counts
    failed = counts.get("FAILED", 0) + counts.get("ERROR", 0)
    status = "INCOMPLETE" if result.problem else ("FAILED" if failed else "SUCCEEDED")
    summary = {
        "total": len(result.cases),
        "statusCounts": counts,
        "durationInNanoSeconds": sum(c.duration_ns for c in result.cases),
    }
    data: dict[str, Any] = {
        "type": "TEST",
        "name": name,
        "executionId": build_arn(scope, build_id),
        "exportConfig": {"exportConfigType": "NO_EXPORT"},
        "truncated": False,
        "testSummary": summary,
        "fileFormat": result.file_format,
    }
    cases = [
        CaseRecord(
            index + 1,
            case.status,
            case.name,
            case.prefix,
            case.suite,
            case.duration_ns,
            case.message,
            case.file,
        )
        for index, case in enumerate(result.cases)
    ]
    tx.builds.insert_report(ReportRecord(arn, group, build_id, status, now, data), cases)


class ReportService:
    def __init__(self, store: Store, scope: Scope, clock: Clock) -> None:
        self._store = store
        self._scope = scope
        self._clock = clock

    # -- report groups --

    def _group_wire(self, record: ReportGroupRecord) -> dict[str, Any]:
        return {
            "arn": record.arn,
            "name": record.name,
            **record.data,
            "created": record.created,
            "lastModified": record.updated,
        }

    def create_group(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = params["name"]
        arn = report_group_arn(self._scope, name)
        now = self._clock.now()
        data = {
            "type": params["type"],
            "exportConfig": params["exportConfig"],
            "tags": list(params.get("tags") or []),
            "status": "ACTIVE",
        }
        record = ReportGroupRecord(arn, name, now, now, data)
        exists = ResourceAlreadyExistsException(f"Report group already exists: {arn}")
        try:
            with self._store.write() as tx:
                if tx.builds.get_groups([arn]):
                    raise exists
                tx.builds.insert_group(record)
        except DuplicateKey:
            raise exists from None
        return self._group_wire(record)

    def batch_get_groups(self, arns: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
        unique = list(dict.fromkeys(arns))
        with self._store.read() as tx:
            found = tx.builds.get_groups(unique)
        return [self._group_wire(found[a]) for a in unique if a in found], [
            a for a in unique if a not in found
        ]

    def delete_group(self, arn: str, delete_reports: bool) -> None:
        with self._store.write() as tx:
            held = tx.builds.reports_of_group(arn)
            if held and not delete_reports:
                raise InvalidInputException(
                    f"Report group {arn} holds {len(held)} reports: set deleteReports to "
                    "delete them with it"
                )
            tx.builds.delete_reports(held)
            tx.builds.delete_group(arn)

    def groups_page(
        self, sort_by: str, desc: bool, after: tuple[Any, str] | None, limit: int
    ) -> Page:
        with self._store.read() as tx:
            rows = tx.builds.group_page(sort_by, desc, after, limit + 1)
        page = rows[:limit]
        return Page([arn for _, arn in page], page[-1] if len(rows) > limit else None)

    # -- reports --

    def reports_page(
        self,
        group: str | None,
        status: str | None,
        desc: bool,
        after: tuple[float, str] | None,
        limit: int,
    ) -> Page:
        with self._store.read() as tx:
            if group is not None and not tx.builds.get_groups([group]):
                raise ResourceNotFoundException(f"Report group {group} does not exist")
            rows = tx.builds.report_page(group, status, desc, after, limit + 1)
        page = rows[:limit]
        return Page([arn for _, arn in page], page[-1] if len(rows) > limit else None)

    def batch_get_reports(self, arns: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
        unique = list(dict.fromkeys(arns))
        with self._store.read() as tx:
            found = tx.builds.get_reports(unique)
        reports = []
        for arn in unique:
            if arn not in found:
                continue
            record = found[arn]
            data = {k: v for k, v in record.data.items() if k != "fileFormat"}
            reports.append(
                {
                    "arn": arn,
                    "reportGroupArn": record.group_arn,
                    "status": record.status,
                    "created": record.created,
                    **data,
                }
            )
        return reports, [a for a in unique if a not in found]

    def delete_report(self, arn: str) -> None:
        with self._store.write() as tx:
            tx.builds.delete_reports([arn])

    def cases(
        self,
        report: str,
        status: str | None,
        keyword: str | None,
        after: int,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int | None]:
        with self._store.read() as tx:
            if not tx.builds.get_reports([report]):
                raise ResourceNotFoundException(f"Report {report} does not exist")
            rows = tx.builds.cases(report, status, keyword, after, limit + 1)
        page = rows[:limit]
        cases = []
        for row in page:
            case: dict[str, Any] = {
                "reportArn": report,
                "testRawDataPath": row.file,
                "prefix": row.prefix,
                "name": row.name,
                "status": row.status,
                "durationInNanoSeconds": row.duration_ns,
            }
            if row.message:
                case["message"] = row.message
            if row.suite:
                case["testSuiteName"] = row.suite
            cases.append(case)
        return cases, page[-1].seq if len(rows) > limit else None
