/* Fixture for check-layering.sh: a runtime header named like
 * alloc/sys/lock.h. */
int runtime_lock_fixture(void);
