"""alt42-heartbeat: the ALT42 student heartbeat job for Moodle, in Python."""

__version__ = "1.0.0"
