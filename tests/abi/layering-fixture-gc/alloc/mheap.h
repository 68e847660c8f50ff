/* Fixture for check-layering.sh: an allocator header. */
int mheap_fixture(void);
