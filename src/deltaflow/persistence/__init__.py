"""``pw.persistence``: checkpoint a run's inputs and resume from them after a restart.

See docs/persistence.md. ``pw.run(persistence_config=pw.persistence.Config(
pw.persistence.Backend.filesystem(path)))`` turns it on.
"""

from deltaflow.io.s3 import AwsS3Settings
from deltaflow.persistence.config import Backend, Config, PersistenceMode, SnapshotAccess

__all__ = ["AwsS3Settings", "Backend", "Config", "PersistenceMode", "SnapshotAccess"]
