"""Trainer callbacks, one concern per file."""
