"""The ``flowhook`` command."""
