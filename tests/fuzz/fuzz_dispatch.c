/*
 * Fuzz target for the dispatcher (daemon/request.c) against the real lease
 * table, pool and process watchers of an in-process portd (inproc.h), with
 * four clients of three users taking turns.
 *
 * An input is lines. The first byte of each picks the client: bits 0-1
 * the client (0 and 1 are uid 1000, 2 is uid 1001, 3 is root); bit 2
 * reconnects it first (its session leases end). The rest is the request,
 * where "$N" (a digit) becomes the id of the N-th lease in the table and
 * "#N" its first port, so that inputs can name leases they did not make.
 * Checked after every request:
 *   - the invariants of inproc_check (table and pool agree, every quota
 *     count is the sum of its leases and within the quota, every
 *     descriptor accounted for);
 *   - exactly one reply per request;
 *   - no request of one user ends another user's lease (only root may),
 *     beyond what expired or lost its process meanwhile.
 * At the end, everything is given back (inproc_end).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "inproc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uid_t uids[INPROC_CLIENTS] = {1000, 1000, 1001, 0};

struct snap {
	int n;
	struct {
		char id[PROTO_MAX_ID + 1];
		uint16_t port;
		uid_t uid;
	} l[256];
};

static void
snap_one(struct lease *l, void *arg)
{
	struct snap *s = arg;

	if (s->n == (int)(sizeof(s->l) / sizeof(s->l[0])))
		return;
	snprintf(s->l[s->n].id, sizeof(s->l[0].id), "%s", lease_key(l));
	s->l[s->n].port = lease_port0(l);
	{
		struct proto_lease v;

		lease_view(l, &v);
		s->l[s->n].uid = v.uid;
	}
	s->n++;
}

/* The request line with $N and #N replaced; its length. */
static size_t
expand(const uint8_t *p, size_t n, const struct snap *s, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + PROTO_MAX_ID + 2 < cap; i++) {
		int k = i + 1 < n ? p[i + 1] - '0' : -1;

		if ((p[i] == '$' || p[i] == '#') && k >= 0 && k <= 9 &&
		    k < s->n) {
			if (p[i] == '$')
				o += (size_t)snprintf(
				    out + o, cap - o, "%s", s->l[k].id);
			else
				o += (size_t)snprintf(out + o, cap - o, "%u",
				    (unsigned)s->l[k].port);
			i++;
		} else
			out[o++] = (char)p[i];
	}
	out[o++] = '\n';
	return o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[8192];
	const uint8_t *end = data + size;

	inproc_begin();
	while (data < end) {
		const uint8_t *nl = memchr(data, '\n', (size_t)(end - data));
		size_t n = (size_t)((nl != NULL ? nl : end) - data);
		struct snap before = {0}, after = {0};
		uint64_t ended;
		int i, gone = 0, replies;
		size_t len;

		if (n == 0) {
			data++;
			continue;
		}
		i = data[0] & 3;
		if ((data[0] & 4) && inproc_connected(i)) {
			inproc_close(i);
			inproc_pump(true);
		}
		if (!inproc_connected(i))
			inproc_connect(i, uids[i]);
		lease_foreach(true, 0, snap_one, &before);
		ended = lease_counters()->ended[LEASE_END_EXPIRED] +
		        lease_counters()->ended[LEASE_END_PROCESS];
		len = expand(data + 1, n - 1, &before, line, sizeof(line));
		replies = inproc_replies(i);

		inproc_send(i, line, len, false);
		inproc_pump(true);
		inproc_check();

		/* A connection that portd closed (a limit) answers no more. */
		if (inproc_connected(i))
			CHECK(inproc_replies(i) == replies + 1);
		lease_foreach(true, 0, snap_one, &after);
		for (int b = 0; uids[i] != 0 && b < before.n; b++) {
			bool found = false;

			if (before.l[b].uid == uids[i])
				continue;
			for (int a = 0; a < after.n && !found; a++)
				found =
				    strcmp(before.l[b].id, after.l[a].id) == 0;
			gone += !found;
		}
		CHECK(gone <= (int)(lease_counters()->ended[LEASE_END_EXPIRED] +
		                    lease_counters()->ended[LEASE_END_PROCESS] -
		                    ended));
		data += n + (nl != NULL);
	}
	inproc_end();
	return 0;
}
