"""Every hook a Pigeonhole plugin can implement.

A plugin is a class (see :class:`pigeonhole.api.Plugin`) published under the
entry-point group ``pigeonhole.plugins``. The host builds one instance of it per
tenant that enabled it, with that tenant's configuration, and registers the
instance in that tenant's own plugin manager: a tenant's hooks therefore reach
only the plugins it enabled.

Two hooks are *platform* hooks (:func:`pigeonhole_routes`,
:func:`pigeonhole_cli_commands`): they are called once at start-up on an
instance built with ``config=None``, because routes and commands are mounted
before any tenant is known. The host still refuses a plugin route to a tenant
that has not enabled the plugin.

pluggy is synchronous. Hooks therefore *contribute objects* (drivers, channels,
access methods, workflows) or *observe* events; the host awaits the objects'
async methods itself. Never return a coroutine from a hook.

Every hook here must be documented in ``docs/plugins/hooks.md``; a test fails
when one is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import click

    from pigeonhole.api import AccessMethod, AlertView, Channel, CustodyEvent, LockDriver, Workflow
    from pigeonhole.api import StoragePolicy
    from pigeonhole.api import EventSubscriber

hookspec = pluggy.HookspecMarker("pigeonhole")
hookimpl = pluggy.HookimplMarker("pigeonhole")


@hookspec
def pigeonhole_lock_drivers() -> list[type[LockDriver]]:
    """Contribute lock-driver classes.

    Each class drives one kind of lock board. A bank names its driver by the
    class's ``name`` and carries a driver configuration validated against the
    class's ``Config`` struct. The agent that serves the bank instantiates the
    driver once per bank.
    """


@hookspec
def pigeonhole_channels() -> list[Channel]:
    """Contribute notification channels (email, SMS, chat...).

    Return channel *instances*, already built with the plugin's tenant
    configuration. The host offers each notification to every channel of the
    tenant that says it can reach the recipient.
    """


@hookspec
def pigeonhole_access_methods() -> list[AccessMethod]:
    """Contribute access methods: how a credential looks and is checked.

    The host stores only a keyed digest of every secret and enforces
    uniqueness among the active credentials of a bank; the method decides the
    secret's form, its normalisation and its lifetime.
    """


@hookspec
def pigeonhole_workflows() -> list[Workflow]:
    """Contribute workflows: the policies of a kind of locker site.

    A workflow decides how long a package is held, which access methods are
    issued on deposit and which events notify the recipient. A tenant enables
    one workflow plugin; if it enables several, the first one registered wins
    and the admin console says so.
    """


@hookspec
def pigeonhole_custody_event(event: CustodyEvent) -> None:
    """Observe an event appended to a chain of custody, after its commit.

    Called once per event, in the process that committed it, for the tenant's
    enabled plugins only. It must be quick and must not raise; work that has to
    survive a crash belongs in a channel (which the outbox makes durable).
    """


@hookspec
def pigeonhole_subscribers() -> list[EventSubscriber]:
    """Contribute event subscribers: outside systems told of custody events (partner webhooks, J2).

    Return subscriber *instances* built with the plugin's tenant configuration,
    each with a ``name`` unique among the tenant's subscribers. When an event is
    appended, the host writes a delivery for every subscriber whose ``wants``
    accepts its kind, in the same transaction, and a worker calls ``deliver``
    with retries and backoff. Called on every event of a tenant that enabled
    the plugin: build the objects cheaply.
    """


@hookspec
def pigeonhole_alert(alert: AlertView) -> None:
    """Observe an alert raised for the tenant (a forced door, a door left open...), after commit.

    Called once per alert, in the process that raised it, for the tenant's
    enabled plugins only. The alert is also listed by the API until someone
    acknowledges it. A plugin that takes alerts to people (mail, SMS, chat)
    should queue durable work rather than send from here; it must not raise.
    """


@hookspec
def pigeonhole_storage_policies() -> list[StoragePolicy]:
    """Contribute the tenant's policy for storage of belongings (G1-G3, D6).

    Return :class:`pigeonhole.api.StoragePolicy` objects built from the
    plugin's tenant configuration: which modes are allowed (fixed, flexible up
    to a maximum, open-ended), how far ahead one may reserve, when to remind,
    which sizes, and how many compartments of each size every bank keeps for
    deliveries only. The host enforces the policy; with none, the tenant
    offers no storage. If several plugins contribute one, the first enabled wins.
    """


@hookspec
def pigeonhole_routes() -> list[Any]:
    """Contribute Litestar route handlers (platform hook).

    They are mounted under ``/api/v1/t/{tenant}/ext/{plugin-name}/``. The
    host authenticates the request and answers 404 when the tenant has not
    enabled the plugin. A handler may take a ``plugin_request`` parameter of
    type :class:`pigeonhole.api.PluginRequest` to learn the tenant and caller.
    """


@hookspec
def pigeonhole_cli_commands(cli: click.Group) -> None:
    """Add commands to the ``pigeonhole`` command line (platform hook).

    Receive the root click group and attach commands or groups to it.
    """
