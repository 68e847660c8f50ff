/* tests/abi/symbol_clean.c: a library shaped like gcheap: it exports only
 * gc_ symbols and its other globals are hidden. Its archive, made like
 * libgcheap.a (tools/localize-objects.sh), defines only gc_abi_fixture_ok:
 * check-symbols.sh must accept it (test symbols-accepts-clean-fixture);
 * archived as compiled, with the hidden globals still global, it must not
 * (symbols-catches-unlocalized-archive). */
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
