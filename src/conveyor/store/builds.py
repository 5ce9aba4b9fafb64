"""Queries on CodeBuild builds, report groups, reports and test cases.

Builds page by (start time, id), reports by (created, ARN), report groups by name or either
time; test cases by their order in the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.store.rows import dumps, loads
from conveyor.store.tables import builds, report_groups, reports, test_cases


@dataclass(frozen=True, slots=True)
class BuildRecord:
    id: str
    project: str
    number: int
    status: str
    started: float
    ended: float | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReportGroupRecord:
    arn: str
    name: str
    created: float
    updated: float
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReportRecord:
    arn: str
    group_arn: str
    build_id: str
    status: str
    created: float
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CaseRecord:
    seq: int
    status: str
    name: str
    prefix: str
    suite: str
    duration_ns: int
    message: str
    file: str


def _build(row: Mapping[Any, Any]) -> BuildRecord:
    return BuildRecord(
        row["id"],
        row["project"],
        row["number"],
        row["status"],
        row["started"],
        row["ended"],
        loads(row["data"]),
    )


def _group(row: Mapping[Any, Any]) -> ReportGroupRecord:
    return ReportGroupRecord(
        row["arn"], row["name"], row["created"], row["updated"], loads(row["data"])
    )


def _report(row: Mapping[Any, Any]) -> ReportRecord:
    return ReportRecord(
        row["arn"],
        row["group_arn"],
        row["build_id"],
        row["status"],
        row["created"],
        loads(row["data"]),
    )


def _after(
    query: sa.Select[Any], columns: tuple[Any, Any], after: tuple[Any, str] | None, desc: bool
) -> sa.Select[Any]:
    first, second = columns
    query = query.order_by(first.desc(), second.desc()) if desc else query.order_by(first, second)
    if after is not None:
        pair = sa.tuple_(first, second)
        bound = sa.tuple_(sa.literal(after[0]), sa.literal(after[1]))
        query = query.where(pair < bound if desc else pair > bound)
    return query


class Builds:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- builds --

    def insert(self, record: BuildRecord) -> None:
        self._conn.execute(
            sa.insert(builds).values(
                id=record.id,
                project=record.project,
                number=record.number,
                status=record.status,
                started=record.started,
                ended=record.ended,
                data=dumps(record.data),
            )
        )

    def get(self, build_id: str) -> BuildRecord | None:
        row = self._conn.execute(sa.select(builds).where(builds.c.id == build_id)).first()
        return None if row is None else _build(row._mapping)

    def get_many(self, ids: Sequence[str]) -> dict[str, BuildRecord]:
        query = sa.select(builds).where(builds.c.id.in_(list(ids)))
        return {row.id: _build(row._mapping) for row in self._conn.execute(query)}

    def update(
        self,
        build_id: str,
        *,
        data: dict[str, Any],
        status: str | None = None,
        number: int | None = None,
        ended: float | None = None,
    ) -> bool:
        values: dict[str, Any] = {"data": dumps(data)}
        if status is not None:
            values["status"] = status
        if number is not None:
            values["number"] = number
        if ended is not None:
            values["ended"] = ended
        result = self._conn.execute(sa.update(builds).where(builds.c.id == build_id).values(values))
        return result.rowcount == 1

    def delete(self, ids: Sequence[str]) -> None:
        self._conn.execute(sa.delete(builds).where(builds.c.id.in_(list(ids))))

    def with_uuid(self, build_uuid: str) -> BuildRecord | None:
        """The build whose id ends ``:<build_uuid>``."""
        query = sa.select(builds).where(builds.c.id.like(f"%:{build_uuid}"))
        row = self._conn.execute(query.limit(1)).first()
        return None if row is None else _build(row._mapping)

    def in_progress(self) -> list[BuildRecord]:
        query = sa.select(builds).where(builds.c.status == "IN_PROGRESS")
        return [_build(row._mapping) for row in self._conn.execute(query)]

    def page(
        self, project: str | None, desc: bool, after: tuple[float, str] | None, limit: int
    ) -> list[tuple[float, str]]:
        query = sa.select(builds.c.started, builds.c.id)
        if project is not None:
            query = query.where(builds.c.project == project)
        query = _after(query, (builds.c.started, builds.c.id), after, desc)
        return [(row[0], row[1]) for row in self._conn.execute(query.limit(limit))]

    def last_number(self, project: str) -> int:
        query = sa.select(sa.func.max(builds.c.number)).where(builds.c.project == project)
        return int(self._conn.execute(query).scalar() or 0)

    # -- report groups --

    def insert_group(self, record: ReportGroupRecord) -> None:
        self._conn.execute(
            sa.insert(report_groups).values(
                arn=record.arn,
                name=record.name,
                created=record.created,
                updated=record.updated,
                data=dumps(record.data),
            )
        )

    def get_groups(self, arns: Sequence[str]) -> dict[str, ReportGroupRecord]:
        query = sa.select(report_groups).where(report_groups.c.arn.in_(list(arns)))
        return {row.arn: _group(row._mapping) for row in self._conn.execute(query)}

    def delete_group(self, arn: str) -> bool:
        deleted = self._conn.execute(sa.delete(report_groups).where(report_groups.c.arn == arn))
        return deleted.rowcount == 1

    def group_page(
        self, sort_by: str, desc: bool, after: tuple[Any, str] | None, limit: int
    ) -> list[tuple[Any, str]]:
        column = {
            "NAME": report_groups.c.name,
            "CREATED_TIME": report_groups.c.created,
            "LAST_MODIFIED_TIME": report_groups.c.updated,
        }[sort_by]
        query = sa.select(column, report_groups.c.arn)
        query = _after(query, (column, report_groups.c.arn), after, desc)
        return [(row[0], row[1]) for row in self._conn.execute(query.limit(limit))]

    # -- reports --

    def insert_report(self, record: ReportRecord, cases: Sequence[CaseRecord]) -> None:
        self._conn.execute(
            sa.insert(reports).values(
                arn=record.arn,
                group_arn=record.group_arn,
                build_id=record.build_id,
                status=record.status,
                created=record.created,
                data=dumps(record.data),
            )
        )
        if cases:
            self._conn.execute(
                sa.insert(test_cases),
                [
                    {
                        "report_arn": record.arn,
                        "seq": case.seq,
                        "status": case.status,
                        "name": case.name,
                        "prefix": case.prefix,
                        "suite": case.suite,
                        "duration_ns": case.duration_ns,
                        "message": case.message,
                        "file": case.file,
                    }
                    for case in cases
                ],
            )

    def get_reports(self, arns: Sequence[str]) -> dict[str, ReportRecord]:
        query = sa.select(reports).where(reports.c.arn.in_(list(arns)))
        return {row.arn: _report(row._mapping) for row in self._conn.execute(query)}

    def report_arns_of(self, build_ids: Sequence[str]) -> dict[str, list[str]]:
        query = (
            sa.select(reports.c.build_id, reports.c.arn)
            .where(reports.c.build_id.in_(list(build_ids)))
            .order_by(reports.c.created, reports.c.arn)
        )
        found: dict[str, list[str]] = {}
        for row in self._conn.execute(query):
            found.setdefault(row[0], []).append(row[1])
        return found

    def report_page(
        self,
        group_arn: str | None,
        status: str | None,
        desc: bool,
        after: tuple[float, str] | None,
        limit: int,
    ) -> list[tuple[float, str]]:
        query = sa.select(reports.c.created, reports.c.arn)
        if group_arn is not None:
            query = query.where(reports.c.group_arn == group_arn)
        if status is not None:
            query = query.where(reports.c.status == status)
        query = _after(query, (reports.c.created, reports.c.arn), after, desc)
        return [(row[0], row[1]) for row in self._conn.execute(query.limit(limit))]

    def delete_reports(self, arns: Sequence[str]) -> None:
        if not arns:
            return
        self._conn.execute(sa.delete(test_cases).where(test_cases.c.report_arn.in_(list(arns))))
        self._conn.execute(sa.delete(reports).where(reports.c.arn.in_(list(arns))))

    def reports_of_group(self, group_arn: str) -> list[str]:
        query = sa.select(reports.c.arn).where(reports.c.group_arn == group_arn)
        return [row[0] for row in self._conn.execute(query)]

    def cases(
        self,
        report_arn: str,
        status: str | None,
        keyword: str | None,
        after: int,
        limit: int,
    ) -> list[CaseRecord]:
        c = test_cases.c
        query = sa.select(test_cases).where(c.report_arn == report_arn, c.seq > after)
        if status is not None:
            query = query.where(c.status == status)
        if keyword:
            pattern = f"%{keyword.replace('%', '').replace('_', '')}%"
            query = query.where(sa.or_(c.name.like(pattern), c.prefix.like(pattern)))
        rows = self._conn.execute(query.order_by(c.seq).limit(limit))
        return [
            CaseRecord(
                row.seq,
                row.status,
                row.name,
                row.prefix,
                row.suite,
                row.duration_ns,
                row.message,
                row.file,
            )
            for row in rows
        ]
