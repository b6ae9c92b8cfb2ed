"""pytest plugin exposing lashspec conformance traces to ports' test suites."""
