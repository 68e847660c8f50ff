/* Fixture for check-layering.sh: a collector header. */
int gcmark_fixture_inline(void);
