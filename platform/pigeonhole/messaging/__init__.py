"""Work after the request: the outbox, its relay to the broker, and the actors."""
