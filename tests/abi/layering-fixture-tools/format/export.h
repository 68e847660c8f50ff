/* Fixture for check-layering.sh: a format header. */
