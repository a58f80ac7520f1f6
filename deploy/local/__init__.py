"""The production topology on one machine, real parts only (see deploy/README.md)."""
