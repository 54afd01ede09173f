"""Tables of the catalogue: clusters and their sectors, proposals, and the months' clusters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consent.models import Base, UTCDateTime


class Cluster(Base):
    """One entry of the public catalogue; no person is stored here (contacts are left out)."""

    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The name case-folded: names are matched without regard to case, on both databases.
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    region: Mapped[str] = mapped_column(String(200), default="")
    objectives: Mapped[str] = mapped_column(Text, default="")
    website: Mapped[str] = mapped_column(String(500), default="")
    priority: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    sectors: Mapped[list[ClusterSector]] = relationship(
        cascade="all, delete-orphan", order_by="ClusterSector.position", passive_deletes=True
    )

    @property
    def sector_names(self) -> list[str]:
        return [s.name for s in self.sectors]


class ClusterSector(Base):
    """One sector of a cluster, in the catalogue's order."""

    __tablename__ = "cluster_sectors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300), index=True)


class ClusterProposal(Base):
    """A new cluster, or a change to one, proposed on the public form; waits for an editor."""

    __tablename__ = "cluster_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "new" or "change"
    cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="SET NULL"), nullable=True
    )
    name: Mapped[str] = mapped_column(String(200))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), index=True)  # pending, accepted, rejected
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ClusterMonth(Base):
    """The cluster of one month, chosen by the rule or picked by an editor."""

    __tablename__ = "cluster_months"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # "2026-12"
    cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="SET NULL"), nullable=True, index=True
    )
    cluster_name: Mapped[str] = mapped_column(String(200))  # kept if the entry is removed
    how: Mapped[str] = mapped_column(String(10))  # "rule" or "editor"
    reason: Mapped[str] = mapped_column(Text, default="")
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime())
