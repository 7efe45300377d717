/*
 * Fuzz target for the connection code (daemon/conn.c) with everything
 * behind it: one client's byte stream through a real socket into the real
 * framing, limits, dispatcher and replies of an in-process portd
 * (inproc.h).
 *
 * An input is a header and the stream:
 *   byte 0   who and how: bits 0-1 the client's uid (1000, root, 65534,
 *            1001); bit 2 half-close at the end (else close); bit 3 read
 *            no reply until the end (a pipeliner that never reads);
 *            bits 4-7 which chunks carry a descriptor (chunk i when bit
 *            4 + i % 4 is set)
 *   byte 1   the number of split points (low 4 bits)
 *   then     two bytes per split point, little-endian, an offset into the
 *            stream (taken modulo its length): the stream is sent in
 *            chunks cut there, the loop running between chunks
 *   the rest the bytes the client sends
 * Checked: after every chunk, the invariants of inproc_check (the lease
 * table and the pool agree, quotas, every descriptor accounted for); at
 * the end, that the connection closes once the client goes, that every
 * lease and descriptor is given back, and that every descriptor sent
 * with the stream was let go; after a half-close, one reply per request
 * line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "inproc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uid_t uids[4] = {1000, 0, 65534, 1001};
	size_t cuts[17], ncuts, len, at = 0;
	const uint8_t *stream;
	uint8_t how;
	bool reads;

	if (size < 2)
		return 0;
	how = data[0];
	ncuts = data[1] & 15;
	if (size < 2 + 2 * ncuts)
		return 0;
	stream = data + 2 + 2 * ncuts;
	len = size - 2 - 2 * ncuts;
	for (size_t i = 0; i < ncuts; i++)
		cuts[i] = len == 0 ? 0
		                   : (size_t)(data[2 + 2 * i] | data[3 + 2 * i]
		                                                    << 8) %
		                         len;
	qsort(cuts, ncuts, sizeof(cuts[0]), cmp_size);
	cuts[ncuts++] = len;
	reads = !(how & 8);

	inproc_begin();
	inproc_connect(0, uids[how & 3]);
	for (size_t i = 0; i < ncuts; i++) {
		bool with_fd = (how >> (4 + i % 4)) & 1;

		inproc_send(0, stream + at, cuts[i] - at, with_fd);
		at = cuts[i];
		inproc_pump(reads);
		if (reads)
			inproc_check();
	}
	if (how & 4) {
		/* Every complete request before the EOF is answered, one
		 * reply line each. */
		size_t lines = 0;

		for (size_t i = 0; i < len; i++)
			lines += stream[i] == '\n';
		inproc_shutdown(0);
		inproc_pump(true);
		inproc_check();
		if (len <= PROTO_MAX_LINE)
			CHECK(inproc_replies(0) == (int)lines);
	}
	inproc_end();
	return 0;
}
