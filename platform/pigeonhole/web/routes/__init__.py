"""REST routes, one module per part of the vocabulary."""

from pigeonhole.web.routes.banks import BankController
from pigeonhole.web.routes.health import health
from pigeonhole.web.routes.hierarchy import DivisionController, EnterpriseController, LocationController
from pigeonhole.web.routes.keys import ApiKeyController
from pigeonhole.web.routes.packages import PackageController
from pigeonhole.web.routes.pickup import PickupController
from pigeonhole.web.routes.plugins import PluginController

TENANT_CONTROLLERS = [
    EnterpriseController,
    DivisionController,
    LocationController,
    BankController,
    PackageController,
    PickupController,
    PluginController,
    ApiKeyController,
]

__all__ = ["TENANT_CONTROLLERS", "health"]
