"""Developer tools: the demo runner and a local mail sink."""
