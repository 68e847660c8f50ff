/* Fixture for check-layering.sh: a collector header. */
