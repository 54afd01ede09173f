"""SubjectData: what another domain holds about a person, joined to export and erasure.

Consent never imports the domains that hold such data (deliveries, for one):
each hands in an object of this shape, and `consent.access` adds its section to
the export while `consent.rights` calls its `erase` inside the erasure.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session


class SubjectData(Protocol):
    """A section of what another domain holds about a person, for export and erasure."""

    name: str

    def export(self, session: Session, subject_ref: str, email: str) -> Any: ...

    def erase(self, session: Session, subject_ref: str, email: str) -> None: ...
