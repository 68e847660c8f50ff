/* tests/abi/header_cxx.cc: <gcheap.h> from C++ (built as C++11 and as
 * C++17 with -Wall -Wextra -pedantic -Werror, test abi/header-cxx11 and
 * abi/header-cxx17): the declarations link with C linkage against
 * libgcheap.a, and the inline functions (gc_write) compile as C++. The
 * program builds a list of C++ structs through gc_write while collections
 * run, and checks every node after them. */
#include <gcheap.h>

#include <cstddef>
#include <cstdio>

namespace {

struct node {
	node *next;
	long value;
};

int check(bool ok, const char *what)
{
	if (!ok)
		std::fprintf(stderr, "FAIL: %s\n", what);
	return ok ? 0 : 1;
}

} // namespace

int main()
{
	static const size_t ptrs[] = {offsetof(node, next)};
	static_assert(GCHEAP_OK == 0, "GCHEAP_OK is 0");
	int fails = 0;

	fails += check(gc_thread_attach() == GCHEAP_OK, "gc_thread_attach");
	gc_type *node_t = gc_type_new("node", sizeof(node), ptrs, 1,
				      GCHEAP_TAIL_REPEAT);
	fails += check(node_t != nullptr, "gc_type_new");
	if (node_t == nullptr)
		return 1;

	node *head = nullptr;
	void *slots[1] = {nullptr};
	gc_frame frame;
	gc_frame_push(&frame, slots, 1);
	for (long i = 0; i < 20000; i++) {
		node *n = static_cast<node *>(gc_alloc(sizeof(node), node_t));

		if (n == nullptr)
			return check(false, "gc_alloc");
		gc_write(&n->next, head);
		n->value = i;
		head = n;
		slots[0] = head;
		if (i % 5000 == 0)
			gc_collect();
	}
	gc_collect();
	long expect = 19999, count = 0;
	for (node *n = head; n != nullptr; n = n->next, expect--, count++) {
		if (n->value != expect)
			break;
	}
	fails += check(count == 20000, "the list survived the collections");
	fails += check(gc_size(head) >= sizeof(node), "gc_size");
	gc_frame_pop(&frame);
	fails += check(gc_thread_detach() == GCHEAP_OK, "gc_thread_detach");
	std::printf("C++%ld: %s\n", static_cast<long>(__cplusplus),
		    fails ? "FAIL" : "ok");
	return fails != 0;
}
