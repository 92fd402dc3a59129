"""Delivery: getting each bot output to the endpoint's webhook, in order, until it is taken."""

from flowhook.delivery.dispatcher import Dispatcher, HeaderFactory
from flowhook.delivery.lean_transport import LeanTransport
from flowhook.delivery.retry import RetryPolicy
from flowhook.delivery.transport import AiohttpTransport
from flowhook.delivery.types import (
    AttemptResult,
    DeliveryLedger,
    PendingDelivery,
    TargetResolver,
    Transport,
    WebhookTarget,
)

__all__ = [
    "AiohttpTransport",
    "AttemptResult",
    "DeliveryLedger",
    "Dispatcher",
    "HeaderFactory",
    "LeanTransport",
    "PendingDelivery",
    "RetryPolicy",
    "TargetResolver",
    "Transport",
    "WebhookTarget",
]
