"""The paramserv built-in: user entry point and executors (LOCAL today)."""
