"""Connectors (readers, parsers, writers, formatters) and their sessions."""
