/* tests/tools/test_dumpprof.c: a heap dump's profile records (PROFILE,
 * BUCKET, MAPPING, SYMBOL: docs/heapdump.md) through gcstat's reader
 * (tools/gcstat/dumpread.c), the shared encoder (format/pprof.c) and
 * `gcstat profile DUMP` (tools/gcstat/profcmd.c), on dumps built by hand:
 * a good profile is read back field for field and encoded; each kind of
 * malformed record, with the checksum right, is rejected with its own
 * reason; every truncation and byte flip of the dump is rejected; and a
 * dump without a profile, or with profiling off, is an error. */
#include "format/pprof.h"
#include "tests/testing.h"
#include "tests/tools/dumpgen.h"
#include "tools/gcstat/gcstat.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void profile_rec(wbuf *o, uint64_t rate)
{
	rec(o, HD_PROFILE, 8);
	w(o, rate, 8);
}

static void bucket(wbuf *o, uint64_t a, uint64_t ab, uint64_t f, uint64_t fb,
                   const uint64_t *pcs, uint32_t n)
{
	rec(o, HD_BUCKET, 36 + 8 * n);
	w(o, a, 8), w(o, ab, 8), w(o, f, 8), w(o, fb, 8), w(o, n, 4);
	for (uint32_t i = 0; i < n; i++)
		w(o, pcs[i], 8);
}

static void wstr(wbuf *o, const char *s, size_t len)
{
	w(o, len, 2);
	wbytes(o, s, len);
}

static void mapping(wbuf *o, uint64_t start, uint64_t limit,
                    const char *file, const char *id)
{
	rec(o, HD_MAPPING, (uint32_t)(28 + strlen(file) + strlen(id)));
	w(o, start, 8), w(o, limit, 8), w(o, 0, 8);
	wstr(o, file, strlen(file));
	wstr(o, id, strlen(id));
}

static void symbol(wbuf *o, uint64_t pc, const char *name, size_t len)
{
	rec(o, HD_SYMBOL, (uint32_t)(10 + len));
	w(o, pc, 8);
	wstr(o, name, len);
}

static const uint64_t big_pcs[] = {0x401010, 0x401200};
static const uint64_t small_pcs[] = {0x401020, 0x401200};

/* One object and a root, then (unless rate < 0) a profile at rate: two
 * buckets, big_site's (2 objects, 1 freed) and small_site's, the mapping
 * of /bin/prog, and the names of the sites. */
static size_t make_prof_dump(wbuf *o, int64_t rate)
{
	dump_begin(o, 7);
	obj(o, 0x10000, 64, 0, NULL, 0);
	root(o, HD_ROOT_GLOBAL, 0x10000);
	if (rate >= 0) {
		profile_rec(o, (uint64_t)rate);
		bucket(o, 2, 8192, 1, 4096, big_pcs, 2);
		bucket(o, 1, 64, 0, 0, small_pcs, 2);
		mapping(o, 0x400000, 0x402000, "/bin/prog", "abcd");
		symbol(o, 0x401010, "big_site", 8);
		symbol(o, 0x401020, "small_site", 10);
	}
	return dump_end(o, 1);
}

static bool has(const uint8_t *b, size_t n, const char *s)
{
	return memmem(b, n, s, strlen(s)) != NULL;
}

START_TEST(test_profile_read_and_encoded)
{
	static wbuf o;
	size_t n = make_prof_dump(&o, 1);
	hd_dump d;
	char err[256];

	ck_assert_msg(hd_parse(o.b, n, &d, err, sizeof(err)) == 0, "%s", err);
	ck_assert(d.has_profile);
	const pprof_profile *p = &d.prof;
	ck_assert_int_eq(p->rate, 1);
	ck_assert_uint_eq(p->nsamples, 2);
	ck_assert_uint_eq(p->npcs, 4);
	ck_assert_uint_eq(p->samples[0].allocs, 2);
	ck_assert_uint_eq(p->samples[0].alloc_bytes, 8192);
	ck_assert_uint_eq(p->samples[0].frees, 1);
	ck_assert_uint_eq(p->samples[0].free_bytes, 4096);
	ck_assert_uint_eq(p->samples[1].stk, 2);
	ck_assert_uint_eq(p->samples[1].nstk, 2);
	ck_assert_uint_eq(p->pcs[p->samples[1].stk], 0x401020);
	ck_assert_uint_eq(p->nmappings, 1);
	ck_assert_uint_eq(p->mappings[0].limit, 0x402000);
	ck_assert_str_eq(p->mappings[0].file, "/bin/prog");
	ck_assert_str_eq(p->mappings[0].build_id, "abcd");
	ck_assert_uint_eq(p->nnames, 2);
	ck_assert_str_eq(p->names[1].name, "small_site");

	size_t distinct;
	uint64_t *pcs = pprof_distinct_pcs(p, &distinct);
	ck_assert_uint_eq(distinct, 3);
	ck_assert_uint_eq(pcs[2], 0x401200);
	free(pcs);
	/* Stored deflate blocks: the strings are there to be seen. */
	size_t gzn;
	uint8_t *gz = pprof_encode(p, &gzn);
	ck_assert_ptr_nonnull(gz);
	ck_assert(gzn > 18 && gz[0] == 0x1f && gz[1] == 0x8b && gz[2] == 8);
	ck_assert(has(gz, gzn, "big_site") && has(gz, gzn, "small_site"));
	ck_assert(has(gz, gzn, "/bin/prog") && has(gz, gzn, "abcd"));
	ck_assert(has(gz, gzn, "inuse_space"));
	free(gz);
	hd_free(&d);
	ck_assert(!d.has_profile && !d.prof.npcs);

	/* A profile with nothing sampled yet: no arrays at all (UBSan
	 * caught a memcpy from NULL here). */
	dump_begin(&o, 7);
	profile_rec(&o, 512 * 1024);
	n = dump_end(&o, 0);
	ck_assert_msg(hd_parse(o.b, n, &d, err, sizeof(err)) == 0, "%s", err);
	ck_assert(d.has_profile && !d.prof.pcs && !d.prof.samples);
	gz = pprof_encode(&d.prof, &gzn);
	ck_assert_ptr_nonnull(gz);
	free(gz);
	hd_free(&d);
}
END_TEST

/* A dump whose profile has one malformed record, kind i (checksum and
 * counts right); its expected reason, or NULL past the last kind. */
static const char *make_damaged(wbuf *o, int i)
{
	static const char *const why[] = {
		"a second PROFILE record",
		"a profile record before the PROFILE record",
		"a PROFILE's rate is out of range",
		"a PROFILE record has the wrong length",
		"a BUCKET record is short",
		"a BUCKET's frame count does not match its length",
		"a BUCKET's frame count does not match its length",
		"a MAPPING ends before it starts",
		"a MAPPING record is short",
		"a string runs past its record",
		"a MAPPING's strings do not match its length",
		"a string holds a NUL byte",
		"a SYMBOL has an empty name",
		"a SYMBOL's name does not match its length",
		"a SYMBOL record is short",
	};
	if (i >= (int)(sizeof(why) / sizeof(why[0])))
		return NULL;
	dump_begin(o, 7);
	if (i == 0 || i > 3) /* 1-3 damage the PROFILE itself */
		profile_rec(o, 512 * 1024);
	switch (i) {
	case 0: profile_rec(o, 1); break;
	case 1: bucket(o, 1, 1, 0, 0, big_pcs, 2); break;
	case 2: profile_rec(o, 1ull << 63); break;
	case 3: rec(o, HD_PROFILE, 9), w(o, 1, 8), w(o, 0, 1); break;
	case 4: rec(o, HD_BUCKET, 20), w(o, 0, 8), w(o, 0, 8), w(o, 0, 4);
		break;
	case 5: /* says 3 frames, holds 2 */
		rec(o, HD_BUCKET, 36 + 16);
		w(o, 1, 8), w(o, 1, 8), w(o, 0, 8), w(o, 0, 8), w(o, 3, 4);
		w(o, 1, 8), w(o, 2, 8);
		break;
	case 6: /* 2^32 - 1 frames: 8n overflows 32 bits */
		rec(o, HD_BUCKET, 36 + 8);
		w(o, 1, 8), w(o, 1, 8), w(o, 0, 8), w(o, 0, 8);
		w(o, UINT32_MAX, 4), w(o, 1, 8);
		break;
	case 7: mapping(o, 0x2000, 0x2000, "f", ""); break;
	case 8: rec(o, HD_MAPPING, 27), w(o, 0, 8), w(o, 1, 8), w(o, 0, 8);
		w(o, 0, 2), w(o, 0, 1);
		break;
	case 9: /* the file's length runs past the record */
		rec(o, HD_MAPPING, 28 + 1);
		w(o, 0, 8), w(o, 1, 8), w(o, 0, 8), w(o, 500, 2);
		w(o, 'x', 1), w(o, 0, 2);
		break;
	case 10: /* a byte after the build id */
		rec(o, HD_MAPPING, 28 + 1);
		w(o, 0, 8), w(o, 1, 8), w(o, 0, 8), w(o, 0, 2), w(o, 0, 2);
		w(o, 'x', 1);
		break;
	case 11: symbol(o, 0x401010, "big\0site", 8); break;
	case 12: symbol(o, 0x401010, "", 0); break;
	case 13: rec(o, HD_SYMBOL, 12), w(o, 1, 8), w(o, 1, 2), w(o, 'f', 1);
		w(o, 'g', 1);
		break;
	case 14: rec(o, HD_SYMBOL, 9), w(o, 1, 8), w(o, 0, 1); break;
	}
	dump_end(o, 0);
	return why[i];
}

START_TEST(test_malformed_profile_records_rejected)
{
	static wbuf o;
	const char *why;
	hd_dump d;
	char err[256];

	for (int i = 0; (why = make_damaged(&o, i)); i++) {
		/* An exact-size heap copy: ASan sees any overread. */
		uint8_t *b = malloc(o.n);
		memcpy(b, o.b, o.n);
		ck_assert_msg(hd_parse(b, o.n, &d, err, sizeof(err)) != 0,
		              "damage %d parsed", i);
		ck_assert_msg(strstr(err, why), "damage %d: %s", i, err);
		free(b);
	}
}
END_TEST

START_TEST(test_every_cut_and_flip_rejected)
{
	static wbuf o;
	size_t n = make_prof_dump(&o, 4096);

	dump_check_damage(o.b, n);
}
END_TEST

/* `gcstat profile DUMP -o OUT` on a dump built at rate (< 0: none): its
 * exit status; *wrote tells whether OUT exists after. */
static int profile_cmd(int64_t rate, bool *wrote)
{
	static wbuf o;
	char dump[] = "/tmp/test_dumpprof.XXXXXX";
	char out[64];
	size_t n = make_prof_dump(&o, rate);
	int fd = mkstemp(dump);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, o.b, n), (ssize_t)n);
	close(fd);
	snprintf(out, sizeof(out), "%s.pb.gz", dump);
	unlink(out);
	int rc = gcs_cmd_profile_dump(dump, out);
	*wrote = access(out, F_OK) == 0;
	if (*wrote) {
		FILE *f = fopen(out, "rb");
		unsigned char m[2] = {0};
		ck_assert_int_eq(fread(m, 1, 2, f), 2);
		ck_assert(m[0] == 0x1f && m[1] == 0x8b);
		fclose(f);
	}
	unlink(out);
	unlink(dump);
	return rc;
}

START_TEST(test_profile_command)
{
	bool wrote;

	ck_assert_int_eq(profile_cmd(512 * 1024, &wrote), 0);
	ck_assert(wrote);
	/* No PROFILE record (an older writer) and profiling off. */
	ck_assert_int_eq(profile_cmd(-1, &wrote), 1);
	ck_assert(!wrote);
	ck_assert_int_eq(profile_cmd(0, &wrote), 1);
	ck_assert(!wrote);
}
END_TEST

/* Write the first n bytes of o to a new temporary file (its name in path,
 * at least 32 bytes). */
static void write_temp(const wbuf *o, size_t n, char *path)
{
	strcpy(path, "/tmp/test_dumpprof.XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, o->b, n), (ssize_t)n);
	close(fd);
}

/* A span of 2^40 pages (a corrupt or hostile dump the reader accepts):
 * the heap map drew a rect per 64 pages, 2^34 of them, and wrote 566 MB
 * in 3 s without end. It stops at the map's cap now. */
START_TEST(test_plot_huge_span)
{
	static wbuf o;
	char dump[64], out[96];
	struct stat st;
	/* 2^40 pages, and (2^30 - 1) * 64, whose rows overflowed an int. */
	uint64_t npages = _i ? (((uint64_t)1 << 30) - 1) * 64 :
	                       (uint64_t)1 << 40;

	dump_begin(&o, 1);
	rec(&o, HD_SPAN, 8 + 8 + 8 + 4 + 4 + 4 + 1);
	w(&o, 0x100000, 8), w(&o, npages, 8), w(&o, 0, 8);
	w(&o, 0, 4), w(&o, 1, 4), w(&o, 1, 4), w(&o, 0, 1);
	size_t n = dump_end(&o, 0);
	write_temp(&o, n, dump);
	snprintf(out, sizeof(out), "%s.svg", dump);
	char *argv[] = {"heapmap", dump, "-o", out};
	ck_assert_int_eq(gcs_cmd_plot(4, argv), 0);
	ck_assert_int_eq(stat(out, &st), 0);
	ck_assert_int_lt(st.st_size, 64 << 20);
	/* Its height is what is drawn: the rows were counted past the cap
	 * (an int overflow, a negative height, for 2^36 pages). */
	FILE *f = fopen(out, "r");
	char head[512] = {0};
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_gt(fread(head, 1, sizeof(head) - 1, f), 0);
	fclose(f);
	const char *h = strstr(head, "height=\"");
	ck_assert_ptr_nonnull(h);
	long height = atol(h + 8);
	ck_assert_msg(height > 0 && height < 1000000, "height %ld", height);
	unlink(out);
	unlink(dump);
}
END_TEST

/* gcstat diff of dumps whose totals pass 2^63: the deltas negated and
 * added int64_t casts of u64 totals (undefined behaviour, which UBSan
 * reported); they saturate now. */
START_TEST(test_diff_huge_totals)
{
	static wbuf o;
	char a[64], b[64];

	dump_begin(&o, 1);
	obj(&o, 0, (uint64_t)1 << 63, 0, NULL, 0);
	root(&o, HD_ROOT_GLOBAL, 0);
	write_temp(&o, dump_end(&o, 1), a);
	dump_begin(&o, 2);
	obj(&o, 0, ((uint64_t)1 << 63) + 5, 0, NULL, 0);
	obj(&o, (uint64_t)9 << 60, (uint64_t)1 << 62, 0, NULL, 0);
	root(&o, HD_ROOT_GLOBAL, 0);
	write_temp(&o, dump_end(&o, 2), b);
	ck_assert_int_eq(gcs_cmd_diff(a, b, 10, true), 0);
	ck_assert_int_eq(gcs_cmd_diff(b, a, 10, false), 0);
	unlink(a);
	unlink(b);
}
END_TEST

/* Two types of one name (the API allows it: every anonymous type is
 * "(anonymous)"), in two dumps of the same heap with the types made in
 * the other order: diff paired the rows one for one in each dump's order
 * and reported growth in both directions. They are one row now. */
static void dup_types(wbuf *o, uint64_t pid, bool swap)
{
	static const char name[] = "dup";
	uint64_t sizes[2] = {600, 1000};

	dump_begin(o, pid);
	for (uint32_t id = 1; id <= 2; id++) {
		rec(o, HD_TYPE, 4 + 8 + 4 + 2 + 3);
		w(o, id, 4), w(o, sizes[(id - 1) ^ swap], 8), w(o, 0, 4);
		w(o, 3, 2), wbytes(o, name, 3);
	}
	/* One 600-byte object and three of 1000 bytes, as roots: in the
	 * swapped dump the 1000-byte ones come first. */
	for (uint64_t i = 0; i < 4; i++) {
		bool single = swap ? i == 3 : i == 0;
		uint32_t id = single == !swap ? 1 : 2;
		obj(o, 0x100000 + i * 4096, single ? 600 : 1000, id, NULL, 0);
	}
	for (uint64_t i = 0; i < 4; i++)
		root(o, HD_ROOT_GLOBAL, 0x100000 + i * 4096);
}

START_TEST(test_diff_same_name_types)
{
	static wbuf o;
	char a[64], b[64], out[] = "/tmp/test_dumpprof.out.XXXXXX";
	char text[4096] = {0};

	dup_types(&o, 1, false);
	write_temp(&o, dump_end(&o, 4), a);
	dup_types(&o, 2, true);
	write_temp(&o, dump_end(&o, 4), b);
	int fd = mkstemp(out);
	ck_assert_int_ge(fd, 0);
	fflush(stdout);
	int saved = dup(1);
	ck_assert_int_ge(dup2(fd, 1), 0);
	int rc = gcs_cmd_diff(a, b, 10, false);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_ge(pread(fd, text, sizeof(text) - 1, 0), 1);
	close(fd);
	ck_assert_msg(strstr(text, "(+0 objects, +0 bytes)") &&
	              strstr(text, "Growth by type (top 0,") &&
	              !strstr(text, " dup\n"), "%s", text);
	unlink(a);
	unlink(b);
	unlink(out);
}
END_TEST

/* A type name with control characters (and a NUL) is read as \xNN, so
 * that the text outputs cannot send the terminal an escape sequence or
 * end a name early; printable bytes stay as they are. */
START_TEST(test_type_name_escaped)
{
	static wbuf o;
	static const char name[] = "a\033[2J\nb\0c\x7f~";
	hd_dump d;
	char err[256], nb[64];

	char ctl[200];

	memset(ctl, 1, sizeof(ctl)); /* each byte 4 when escaped */
	dump_begin(&o, 1);
	rec(&o, HD_TYPE, 4 + 8 + 4 + 2 + sizeof(name) - 1);
	w(&o, 1, 4), w(&o, 64, 8), w(&o, 0, 4);
	w(&o, sizeof(name) - 1, 2), wbytes(&o, name, sizeof(name) - 1);
	rec(&o, HD_TYPE, 4 + 8 + 4 + 2 + sizeof(ctl));
	w(&o, 2, 4), w(&o, 64, 8), w(&o, 0, 4);
	w(&o, sizeof(ctl), 2), wbytes(&o, ctl, sizeof(ctl));
	obj(&o, 0x100000, 64, 1, NULL, 0);
	obj(&o, 0x100040, 64, 2, NULL, 0);
	root(&o, HD_ROOT_GLOBAL, 0x100000);
	root(&o, HD_ROOT_GLOBAL, 0x100040);
	size_t n = dump_end(&o, 2);
	ck_assert_msg(hd_parse(o.b, n, &d, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(hd_type_name(&d, &d.objects[0], nb, sizeof(nb)),
	                 "a\\x1b[2J\\x0ab\\x00c\\x7f~");
	const char *c = hd_type_name(&d, &d.objects[1], nb, sizeof(nb));
	ck_assert_uint_eq(strlen(c), 4 * sizeof(ctl));
	ck_assert(!strncmp(c, "\\x01\\x01", 8));
	hd_free(&d);
}
END_TEST

static Suite *dumpprof_suite(void)
{
	Suite *s = suite_create("dumpprof");
	TCase *tc = tcase_create("records");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_profile_read_and_encoded);
	tcase_add_test(tc, test_malformed_profile_records_rejected);
	tcase_add_test(tc, test_every_cut_and_flip_rejected);
	tcase_add_test(tc, test_profile_command);
	tcase_add_loop_test(tc, test_plot_huge_span, 0, 2);
	tcase_add_test(tc, test_diff_huge_totals);
	tcase_add_test(tc, test_diff_same_name_types);
	tcase_add_test(tc, test_type_name_escaped);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(dumpprof_suite());
}
