/* tests/abi/symbol_clean.c: a library shaped like gcheap: it exports only
 * gc_ symbols, and its other globals are hidden and carry an agreed internal
 * prefix (tools/internal-prefixes.txt). check-symbols.sh must accept it
 * (test symbols-accepts-clean-fixture). */
#define ABI_EXPORT __attribute__((visibility("default")))
#define ABI_HIDDEN __attribute__((visibility("hidden")))

ABI_EXPORT int gc_abi_fixture_ok(void);
ABI_HIDDEN int mheap_abi_fixture_helper(void);
ABI_HIDDEN int sys_abi_fixture_counter;

int sys_abi_fixture_counter;

static int local_helper(void)
{
	return 1;
}

int mheap_abi_fixture_helper(void)
{
	return local_helper() + sys_abi_fixture_counter;
}

int gc_abi_fixture_ok(void)
{
	return mheap_abi_fixture_helper();
}
