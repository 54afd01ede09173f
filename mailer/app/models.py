"""One metadata for Alembic: every domain's tables, registered by importing their models."""

from __future__ import annotations

from consent.models import Base
from mailer.audience import models as audience
from mailer.bounces import models as bounces
from mailer.cadence import models as cadence
from mailer.cadence import targets as schedule_targets
from mailer.clusters import models as clusters
from mailer.content import models as content
from mailer.content import surveys, targets
from mailer.delivery import models as delivery

metadata = Base.metadata
DOMAINS = (content, delivery, bounces, cadence)  # each module defines its tables on `metadata`
# issue 13: the catalogue, the audience, and their links to issues, events and schedules
DOMAINS_13 = (clusters, audience, targets, surveys, schedule_targets)
