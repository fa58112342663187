"""The plugin runtime: what is installed, and what each tenant enabled."""
