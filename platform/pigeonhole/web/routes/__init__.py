"""REST routes, one module per part of the vocabulary."""

from pigeonhole.web.routes.agents import AgentController, EnrolController
from pigeonhole.web.routes.alerts import AlertController
from pigeonhole.web.routes.audit import AuditController
from pigeonhole.web.routes.banks import BankController
from pigeonhole.web.routes.carriers import CONTROLLERS as CARRIER_CONTROLLERS
from pigeonhole.web.routes.directory import DIRECTORY_CONTROLLERS
from pigeonhole.web.routes.directory_io import CONTROLLERS as DIRECTORY_IO_CONTROLLERS
from pigeonhole.web.routes.doors import CommandController, RemoteOpenController
from pigeonhole.web.routes.health import health
from pigeonhole.web.routes.hierarchy import DivisionController, EnterpriseController, LocationController
from pigeonhole.web.routes.keys import ApiKeyController
from pigeonhole.web.routes.messages import CONTROLLERS as MESSAGE_CONTROLLERS
from pigeonhole.web.routes.packages import PackageController
from pigeonhole.web.routes.partner import PARTNER_CONTROLLERS
from pigeonhole.web.routes.pickup import CONTROLLERS as PICKUP_CONTROLLERS
from pigeonhole.web.routes.platform import PlatformTenantController
from pigeonhole.web.routes.removal import CONTROLLERS as REMOVAL_CONTROLLERS
from pigeonhole.web.routes.plugins import PluginController
from pigeonhole.web.routes.roles import PermissionController, RoleController
from pigeonhole.web.routes.signin import SIGNIN_CONTROLLERS
from pigeonhole.web.routes.sso import SSO_CONTROLLERS
from pigeonhole.web.routes.storage import STORAGE_CONTROLLERS
from pigeonhole.web.routes.users import UserController

TENANT_CONTROLLERS = [
    EnterpriseController,
    DivisionController,
    LocationController,
    BankController,
    PackageController,
    *PICKUP_CONTROLLERS,  # pickup by code, QR, badge (F1-F3); forgotten codes (F5)
    *CARRIER_CONTROLLERS,  # carrier codes and carrier sessions at kiosks (E7)
    PluginController,
    ApiKeyController,
    AgentController,
    AlertController,
    CommandController,
    RemoteOpenController,
    EnrolController,  # /api/v1/agents/enrol: the tenant is in the body, with its token
    UserController,
    RoleController,
    PermissionController,
    AuditController,
    *SIGNIN_CONTROLLERS,
    *SSO_CONTROLLERS,
    *DIRECTORY_CONTROLLERS,
    *DIRECTORY_IO_CONTROLLERS,
    *PARTNER_CONTROLLERS,  # partner API, returns at the kiosk, webhook deliveries (#5, J2)
    *MESSAGE_CONTROLLERS,  # message wording (H2) and delivery status (H5)
    *STORAGE_CONTROLLERS,  # reservations of every kind (G4, G5), storage (G1-G3, D6)
    *REMOVAL_CONTROLLERS,  # expired packages out of the lockers (G5), package timelines (H3, H4)
]

#: Above tenants: the platform operator's routes (identity #3).
PLATFORM_CONTROLLERS = [PlatformTenantController]

__all__ = ["PLATFORM_CONTROLLERS", "TENANT_CONTROLLERS", "health"]
