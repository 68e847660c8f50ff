/* Fixture for check-layering.sh: a runtime header. */
