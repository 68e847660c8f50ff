/* Fixture for check-layering.sh: a runtime header. */
int thread_fixture(void);
