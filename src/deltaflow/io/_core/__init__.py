"""The connector framework of seed 003: readers, parsers, formatters, writers and sessions."""
