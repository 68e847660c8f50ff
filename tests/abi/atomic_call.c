/* tests/abi/atomic_call.c: a library like the clean fixture whose one
 * function calls into libatomic_ops (AO_pause, declared here: only the
 * undefined reference matters). check-symbols.sh must reject its archive,
 * since gcheap.pc requires no atomic_ops (test
 * symbols-catches-atomic-ops-call). */
#define ABI_EXPORT __attribute__((visibility("default")))

ABI_EXPORT int gc_abi_fixture_ok(void);
void AO_pause(int n);

int gc_abi_fixture_ok(void)
{
	AO_pause(1);
	return 1;
}
