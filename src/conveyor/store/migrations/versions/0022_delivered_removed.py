"""A delivered notification is removed as it is recorded, not kept marked DELIVERED for a day:
the rows earlier versions kept go now.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM notification_deliveries WHERE status = 'DELIVERED'")


def downgrade() -> None:
    pass  # what was delivered is not pending again
