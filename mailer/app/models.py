"""One metadata for Alembic: every domain's tables, registered by importing their models."""

from __future__ import annotations

from consent.models import Base
from mailer.accounts import models as accounts
from mailer.archive import models as archive
from mailer.audience import models as audience
from mailer.bounces import models as bounces
from mailer.cadence import models as cadence
from mailer.cadence import targets as schedule_targets
from mailer.clicks import models as clicks
from mailer.clusters import models as clusters
from mailer.content import models as content
from mailer.content import surveys, targets
from mailer.contributions import models as contributions
from mailer.delivery import models as delivery

metadata = Base.metadata
# Each module defines its tables on `metadata`.
DOMAINS = (
    content,
    delivery,
    bounces,
    cadence,
    archive,
    contributions,
    clicks,
    accounts,
    clusters,
    audience,
    targets,
    surveys,
    schedule_targets,
)
