/* tests/abi/bad_symbol.c: a library that exports a symbol without the gc_
 * prefix, next to a proper gc_ one. check-symbols.sh must reject it, as a
 * .so and as a .a (tests symbols-catches-leak, symbols-catches-static-leak).
 */
#define ABI_EXPORT __attribute__((visibility("default")))

ABI_EXPORT int gc_abi_fixture_ok(void);
ABI_EXPORT int leaky_helper(void);

int leaky_helper(void)
{
	return 42;
}

int gc_abi_fixture_ok(void)
{
	return leaky_helper();
}
