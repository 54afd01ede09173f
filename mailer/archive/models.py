"""Tables of the archive: the issues an editor withheld from it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from consent.models import Base, UTCDateTime


class WithheldIssue(Base):
    """An issue's place in the public archive, once an editor has decided on it.

    No row: a sent issue is shown. The row is kept when the issue is shown again, so
    that the archive's Last-Modified moves with every decision.
    """

    __tablename__ = "archive_withheld"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    withheld: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
