"""The decision store: every decision (and reviewer's verdict) kept in a database for lookups and audit."""
