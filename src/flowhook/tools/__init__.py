"""Small helpers for users of flowhook (e.g. a local webhook receiver for trying it out)."""
