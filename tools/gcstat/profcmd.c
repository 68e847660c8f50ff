/* tools/gcstat/profcmd.c: `gcstat profile`, the heap profile in pprof's
 * format, from a live process (it writes the profile itself:
 * gc_write_heap_profile, asked through request.c) or from a heap dump
 * (its PROFILE, BUCKET, MAPPING and SYMBOL records, read by dumpread.c
 * and encoded by format/pprof.c, the library's own encoder: the same
 * profile the process would have written at the dump, named with the
 * names it resolved then). A dump without a profile is an error that
 * says why: written before dumps carried it, or profiling was off. */
#include "format/pprof.h"
#include "tools/gcstat/gcstat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

int gcs_cmd_profile(long pid, const char *out)
{
	char path[PATH_MAX + 64];

	if (gcs_request(pid, "profile", path, sizeof(path)))
		return 1;
	if (!out) {
		printf("%s\n", path);
		return 0;
	}
	FILE *in = fopen(path, "rb"), *o = fopen(out, "wb");
	if (!in || !o) {
		int e = errno;
		if (in)
			fclose(in);
		if (o)
			fclose(o);
		return gcs_error("%s: %s", in ? out : path, strerror(e));
	}
	char buf[65536];
	size_t k;
	bool ok = true;
	while ((k = fread(buf, 1, sizeof(buf), in)))
		ok = ok && fwrite(buf, 1, k, o) == k;
	fclose(in);
	if (fclose(o) || !ok)
		return gcs_error("%s: write error", out);
	unlink(path);
	return 0;
}

int gcs_cmd_profile_dump(const char *dump, const char *out)
{
	hd_dump d;
	char def[4096];
	unsigned char magic[2] = {0};
	FILE *f = fopen(dump, "rb");

	if (!f)
		return gcs_error("profile: %s is neither a pid nor a heap "
		                 "dump: %s", dump, strerror(errno));
	size_t got = fread(magic, 1, 2, f);
	fclose(f);
	if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
		return gcs_error("profile: %s is gzip, not a heap dump: a "
		                 "profile already? (go tool pprof reads it)",
		                 dump);
	if (hd_load(dump, &d))
		return 1;
	if (!d.has_profile) {
		hd_free(&d);
		return gcs_error("%s: the dump has no heap profile (written by "
		                 "a gcheap before dumps carried one; ask the "
		                 "process: gcstat profile PID)", dump);
	}
	if (d.prof.rate <= 0) {
		hd_free(&d);
		return gcs_error("%s: the dump has no heap profile (the "
		                 "process ran with GCHEAP_MEMPROFILERATE=0: "
		                 "profiling off)", dump);
	}
	if (!out) {
		if ((size_t)snprintf(def, sizeof(def), "%s.pb.gz", dump) >=
		    sizeof(def)) {
			hd_free(&d);
			return gcs_error("%s: name too long", dump);
		}
		out = def;
	}
	int e = pprof_write(&d.prof, out);
	hd_free(&d);
	if (e)
		return gcs_error("%s: %s", out, strerror(e));
	if (out == def) /* as for a pid: the path unless -o named it */
		printf("%s\n", out);
	return 0;
}
