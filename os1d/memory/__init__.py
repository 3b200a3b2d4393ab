"""Memory: what was said, embedded, stored and recalled."""
