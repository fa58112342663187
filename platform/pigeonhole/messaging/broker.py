"""The dramatiq broker: Redis or RabbitMQ in deployments, in-process by default.

The embedded broker is dramatiq's in-memory StubBroker with a worker in the
same process. It keeps nothing across a crash, and need not: the outbox in the
database is the durable copy, and the relay publishes again whatever was not
done. See docs/decisions/0005-outbox-and-embedded-broker.md.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

from pigeonhole.messaging import actors


def queue_name() -> str:
    return os.environ.get("PIGEONHOLE_QUEUE", "pigeonhole")


def make_broker(url: str | None) -> dramatiq.Broker:
    middleware = [AgeLimit(), TimeLimit(), ShutdownNotifications(), Callbacks(), Pipelines(), Retries()]
    if not url:
        broker: dramatiq.Broker = StubBroker(middleware=middleware)
    elif url.startswith(("redis://", "rediss://", "unix://")):
        broker = RedisBroker(
            url=url,
            middleware=middleware,
            namespace=os.environ.get("PIGEONHOLE_QUEUE_NAMESPACE", "pigeonhole"),
            heartbeat_timeout=int(os.environ.get("PIGEONHOLE_BROKER_HEARTBEAT_MS", "60000")),
        )
    elif url.startswith(("amqp://", "amqps://")):
        broker = RabbitmqBroker(url=url, middleware=middleware)
    else:
        raise ValueError(f"PIGEONHOLE_BROKER_URL must start with redis://, amqp:// or be unset (got '{url}')")
    dramatiq.set_broker(broker)
    actors.declare(broker, queue_name())
    return broker


def describe(url: str | None) -> str:
    if not url:
        return "embedded"
    return url.split("://", 1)[0]


def ping(broker: dramatiq.Broker) -> str:
    """'ok' or the reason the broker cannot be reached."""
    try:
        if isinstance(broker, RedisBroker):
            broker.client.ping()
        elif isinstance(broker, RabbitmqBroker):
            broker.connection  # noqa: B018 - opens (or reuses) the connection
        return "ok"
    except Exception as exc:  # health reports, it does not raise
        return f"unreachable: {exc}"
