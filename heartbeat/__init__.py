"""alt42-heartbeat: the ALT42 student heartbeat job for Moodle, in Python."""

__version__ = "0.5.0"
