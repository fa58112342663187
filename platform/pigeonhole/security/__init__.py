"""Secrets at rest: keyed digests for codes and keys, sealing for messages."""
