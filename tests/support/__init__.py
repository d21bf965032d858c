"""Test-only helpers: fake and hostile servers the tests start themselves on loopback."""
