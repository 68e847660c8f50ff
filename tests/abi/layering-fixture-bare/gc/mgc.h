/* Fixture for check-layering.sh: a collector header. */
int gcmark_fixture(void);
