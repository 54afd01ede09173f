"""One metadata for Alembic: every domain's tables, registered by importing their models."""

from __future__ import annotations

from consent.models import Base
from mailer.bounces import models as bounces
from mailer.cadence import models as cadence
from mailer.clusters import models as clusters
from mailer.content import models as content
from mailer.delivery import models as delivery

metadata = Base.metadata
DOMAINS = (content, delivery, bounces, cadence)  # each module defines its tables on `metadata`
# issue 13: the cluster catalogue
DOMAINS_13 = (clusters,)
