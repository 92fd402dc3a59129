"""Endpoints: their configuration, URL tokens and API keys."""
