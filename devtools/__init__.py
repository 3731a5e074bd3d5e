"""Developer tooling, apart from what runs in production: the embedded demo, the producer, the local
Tansu and redis-server launchers and the test/bench harness."""
