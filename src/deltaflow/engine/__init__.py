"""The incremental engine: operators, arrangements and the time loop."""
