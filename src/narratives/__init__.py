"""narratives: track the stories markets tell themselves."""

__version__ = "0.1.0"
