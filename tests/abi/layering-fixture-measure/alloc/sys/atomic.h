/* Fixture for check-layering.sh: an allocator header. */
