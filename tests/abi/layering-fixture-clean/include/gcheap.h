/* Fixture for check-layering.sh: the public header. */
