"""Imports every domain's models so that ``Base.metadata`` is complete (Alembic, tests)."""

from workcard import audit, events  # noqa: F401
from workcard.banks import models as banks_models  # noqa: F401
from workcard.credentials import models as credentials_models  # noqa: F401
from workcard.ecard import models as ecard_models  # noqa: F401
from workcard.iam import models as iam_models  # noqa: F401
from workcard.notify import models as notify_models  # noqa: F401
from workcard.permits import models as permits_models  # noqa: F401
