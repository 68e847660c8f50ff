/* Fixture for check-layering.sh: an allocator header whose name a higher
 * layer uses too (runtime/lock.h). */
int mutex_fixture(void);
