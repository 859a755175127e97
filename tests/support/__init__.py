"""Host-side helpers shared by the test suites (never copied into a test image)."""
