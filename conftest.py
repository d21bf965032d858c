"""Load the mssante-check plugin; nothing else lives here (see plugins/)."""
pytest_plugins = ["plugins"]
