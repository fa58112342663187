"""The path to the lock hardware: the server's hub and the site's agent."""
