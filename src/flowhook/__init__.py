"""flowhook: a self-hostable Webhook Endpoint for conversational AI agents."""

__version__ = "0.1.0"
