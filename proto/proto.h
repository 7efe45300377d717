/*
 * portd wire protocol, version 1: the contract between the daemon and its
 * clients, and a pure json-c codec for it. No I/O, no logging, no globals.
 * One header; the code is split by concern: names.c (the string tables),
 * json.c (the strict reader), request.c (requests and the reply envelope),
 * lease.c (leases and sockets).
 *
 * A message is one JSON object on one line ending in '\n'. Functions here
 * take the line without its '\n'.
 */
#ifndef PORTD_PROTO_H
#define PORTD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#define PROTO_VERSION    1
#define PROTO_MAX_LINE   (64 * 1024) /* bytes of one line, '\n' excluded */
#define PROTO_MAX_DEPTH  16          /* nesting of arrays and objects */
#define PROTO_MAX_COUNT  64          /* ports in one lease */
#define PROTO_MAX_NAME   128         /* bytes of a lease's label */
#define PROTO_MAX_ID     64          /* bytes of a lease id */
#define PROTO_MAX_REQID  256         /* bytes of a string request id */
#define PROTO_MAX_ERRMSG 256         /* bytes of an error message */

/* Sockets of one lease: a TCP and a UDP one for each port (proto both). */
#define PROTO_MAX_SOCKETS (PROTO_MAX_COUNT * 2)

enum proto_errcode {
	PROTO_E_NONE = 0,
	PROTO_E_BAD_REQUEST,
	PROTO_E_UNKNOWN_OP,
	PROTO_E_REQUEST_TOO_LARGE,
	PROTO_E_NO_PORTS,
	PROTO_E_PORT_UNAVAILABLE,
	PROTO_E_QUOTA_EXCEEDED,
	PROTO_E_NOT_FOUND,
	PROTO_E_FORBIDDEN,
	PROTO_E_RESOURCE_EXHAUSTED,
	PROTO_E_INTERNAL,
	PROTO_E__MAX
};

struct proto_error {
	enum proto_errcode code;
	char message[PROTO_MAX_ERRMSG];
};

enum proto_op {
	PROTO_OP_HELLO,
	PROTO_OP_LEASE,
	PROTO_OP_RENEW,
	PROTO_OP_CLAIM,
	PROTO_OP_RELEASE,
	PROTO_OP_LIST,
	PROTO_OP_STATUS,
	PROTO_OP_METRICS, /* the Prometheus text, as the HTTP endpoint serves it
	                   */
	PROTO_OP_STOP,    /* stop the daemon (root or the daemon's own uid) */
	PROTO_OP_WHO,
	PROTO_OP__MAX
};

/* proto is a bit set: both = tcp | udp. */
enum proto_proto { PROTO_TCP = 1, PROTO_UDP = 2, PROTO_BOTH = 3 };
enum proto_family { PROTO_FAM_DUAL, PROTO_FAM_IPV4, PROTO_FAM_IPV6 };
enum proto_hold { PROTO_HOLD_SHARED, PROTO_HOLD_EXCLUSIVE };
enum proto_scope { PROTO_SCOPE_TTL, PROTO_SCOPE_SESSION, PROTO_SCOPE_PROCESS };
/* What portd does for a lease's port now: holds its sockets, keeps it
 * reserved for the owner who claimed it, or cannot hold it (a restored
 * lease whose port someone else has; retried until held again). */
enum proto_state { PROTO_STATE_HELD, PROTO_STATE_CLAIMED, PROTO_STATE_UNHELD };
enum proto_strategy {
	PROTO_STRATEGY_DEFAULT, /* the daemon's configured strategy */
	PROTO_STRATEGY_POOL,
	PROTO_STRATEGY_EPHEMERAL
};

/* A parsed, validated request. Fields an op does not take keep defaults. */
struct proto_request {
	enum proto_op op;
	json_object *id; /* owned reference or NULL; echoed in the reply */

	int64_t version; /* hello; 0 when absent */

	/* lease */
	int count;
	enum proto_proto proto;
	enum proto_family family;
	int port; /* specific port, 0 when absent; also release by port */
	bool contiguous;
	bool has_hold;
	enum proto_hold hold;
	bool has_ttl;
	int64_t ttl; /* seconds (lease, renew) */
	enum proto_scope scope;
	int64_t pid; /* process scope; 0 when absent */
	char name[PROTO_MAX_NAME + 1];
	bool fd;
	enum proto_strategy strategy;

	/* renew, claim, release */
	char lease[PROTO_MAX_ID + 1];

	bool all; /* list */
};

/* The public view of a lease, as carried on the wire. */
struct proto_lease {
	char id[PROTO_MAX_ID + 1];
	int nports;
	uint16_t ports[PROTO_MAX_COUNT];
	enum proto_proto proto;
	enum proto_family family;
	bool ipv6; /* false: a dual lease on a host without IPv6 (IPv4 only) */
	enum proto_scope scope;
	enum proto_hold hold;
	int64_t ttl;     /* seconds, -1 for none */
	int64_t expires; /* Unix ms, -1 for null */
	int64_t created; /* Unix ms */
	char name[PROTO_MAX_NAME + 1];
	uint32_t uid; /* owner */
	int32_t pid;  /* owner's pid (the watched pid for process scope) */
	bool held;    /* portd holds the sockets now: state held */
	enum proto_state state;
	char reason[PROTO_MAX_ERRMSG]; /* unheld: why, else "" */
};

/* One socket handed over with a reply (fd handoff). */
struct proto_socket {
	uint16_t port;
	enum proto_proto proto;   /* PROTO_TCP or PROTO_UDP */
	enum proto_family family; /* dual = one IPv6 socket with V6ONLY off */
};

/*
 * names.c: the wire name of every enumerated value, one string table per
 * enum, and the only spelling of each name in the source. *_to_string
 * returns "?" for a value without a name (an error code: "internal");
 * *_from_string returns the value, or -1 for an unknown name (an error
 * code: PROTO_E_INTERNAL, also for "none").
 */
const char *proto_errcode_to_string(enum proto_errcode);
enum proto_errcode proto_errcode_from_string(const char *);
const char *proto_op_to_string(enum proto_op);
int proto_op_from_string(const char *);
const char *proto_proto_to_string(enum proto_proto);
int proto_proto_from_string(const char *);
const char *proto_family_to_string(enum proto_family);
int proto_family_from_string(const char *);
const char *proto_hold_to_string(enum proto_hold);
int proto_hold_from_string(const char *);
const char *proto_scope_to_string(enum proto_scope);
int proto_scope_from_string(const char *);
const char *proto_state_to_string(enum proto_state);
int proto_state_from_string(const char *);
const char *proto_strategy_to_string(enum proto_strategy);
int proto_strategy_from_string(const char *);

/*
 * json.c: the strict JSON reader, used for requests by the daemon, for
 * replies by clients and for journal records; and the errors of every
 * proto function.
 */

/* Fill err; printf-style message. Returns -1 so callers can `return`. */
int proto_error_set(struct proto_error *err, enum proto_errcode code,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Parse one line into a JSON object with the protocol's limits (length,
 * depth, strictness, one object, nothing after it). Returns a new
 * reference or NULL.
 */
json_object *proto_parse_object(
    const char *line, size_t len, struct proto_error *err);
/* The same with another length limit: replies (a long list) may be larger
 * than a request. */
json_object *proto_parse_object_max(
    const char *line, size_t len, size_t max, struct proto_error *err);

/* Strict field readers; absent fields leave *ret alone and return 0. */
int proto_get_int(json_object *obj, const char *key, int64_t min, int64_t max,
    int64_t *ret, struct proto_error *err);
int proto_get_bool(
    json_object *obj, const char *key, bool *ret, struct proto_error *err);
/* A string of at most max bytes, valid UTF-8, no control characters. */
int proto_get_string(json_object *obj, const char *key, size_t max, char *ret,
    struct proto_error *err);

/*
 * Serialize obj as one line with its '\n'. Returns a malloc'd string and
 * its length (including '\n') in *ret_len, or NULL on allocation failure.
 */
char *proto_serialize(json_object *obj, size_t *ret_len);

/* Checks shared by both sides. */
bool proto_utf8_valid(const char *s, size_t len);
bool proto_label_valid(const char *s, size_t len);
bool proto_lease_id_valid(const char *s, size_t len);

/* request.c: the request codec and the reply envelope. */

/*
 * Parse and validate one request line (len bytes, no '\n'). On success
 * fills *ret and returns 0; the caller frees it with proto_request_clear().
 * On failure returns -1 with *err set; ret->id may still hold the request's
 * id (when the line got far enough to have one) so the error can echo it,
 * and ret->op is the op it named, or PROTO_OP__MAX when it named none we
 * know: call proto_request_clear() on both paths.
 */
int proto_request_parse(const char *line, size_t len, struct proto_request *ret,
    struct proto_error *err);
/*
 * The two readers behind it, which give the same result for every line
 * (fuzz_proto checks): _json through json-c, for any line; _fast for a
 * line in the canonical shape (no white space or escapes, as libportd
 * writes requests), 1 and *ret cleared for any other.
 */
int proto_request_parse_json(const char *line, size_t len,
    struct proto_request *ret, struct proto_error *err);
int proto_request_parse_fast(const char *line, size_t len,
    struct proto_request *ret, struct proto_error *err);
void proto_request_clear(struct proto_request *);

/*
 * The other direction, for clients: init gives the request of op that an
 * empty line of that op parses to; encode is the inverse of parse (the
 * object, "op" first, then "id" if set and the op's fields in the order
 * of the protocol's tables, each left out at its default), so that
 * parse(encode(r)) gives r back. NULL on allocation failure.
 */
void proto_request_init(struct proto_request *r, enum proto_op op);
json_object *proto_request_encode(const struct proto_request *r);

/*
 * Building a request, on the client's side: {"op": name of op}, and a
 * field added to it. Both return NULL on allocation failure; add then
 * drops o and value, so calls can be chained and checked once.
 */
json_object *proto_request_new(enum proto_op op);
json_object *proto_request_add(
    json_object *o, const char *key, json_object *value);

/* Replies: {"id":…,"ok":true} and {"id":…,"ok":false,"error":{…}}. */
json_object *proto_reply_ok(json_object *id);
json_object *proto_reply_error(json_object *id, const struct proto_error *);

/*
 * A success reply written as it is built, member by member: the bytes
 * proto_serialize gives for proto_reply_ok(id) with the same members
 * added in the same order (each key once), without a json-c tree. The
 * buffer grows as needed; after an allocation failure every call does
 * nothing and _end returns NULL.
 */
struct proto_writer {
	char *p;
	size_t len, cap;
	bool nomem;
};
void proto_writer_reply(struct proto_writer *, json_object *id);
/* "key": v's text; v stays the caller's (NULL writes null). */
void proto_writer_value(struct proto_writer *, const char *key, json_object *v);
/* Every member of the object o, in its order. */
void proto_writer_members(struct proto_writer *, json_object *o);
void proto_writer_str(struct proto_writer *, const char *key, const char *s);
void proto_writer_ints(
    struct proto_writer *, const char *key, const uint16_t *v, int n);
void proto_writer_lease(
    struct proto_writer *, const char *key, const struct proto_lease *);
/* The line with its '\n' (malloc'd, the caller's) and its length; NULL
 * after a failure. Either way the writer is empty again. */
char *proto_writer_end(struct proto_writer *, size_t *ret_len);
void proto_writer_free(struct proto_writer *);

/* lease.c: the lease and socket codec, both directions. */
/*
 * The lease's one encoder: its JSON object as text (no newline) into buf,
 * NUL-terminated. Returns the length, which is at least size when buf was
 * too small (PROTO_LEASE_TEXT_MAX always suffices). The bytes are those
 * json-c writes for the same object with JSON_C_TO_STRING_PLAIN and
 * JSON_C_TO_STRING_NOSLASHESCAPE (proto_serialize).
 */
#define PROTO_LEASE_TEXT_MAX 4096
size_t proto_lease_write(const struct proto_lease *, char *buf, size_t size);
/*
 * The lease as a value to put into a reply or record: it serializes to
 * proto_lease_write's text without building an object per field. It is
 * opaque (its fields cannot be read back without parsing the text), and
 * NULL on failure.
 */
json_object *proto_lease_encode(const struct proto_lease *);
int proto_lease_decode(
    json_object *, struct proto_lease *ret, struct proto_error *err);
json_object *proto_socket_encode(const struct proto_socket *);
int proto_socket_decode(
    json_object *, struct proto_socket *ret, struct proto_error *err);

/* status.c: the daemon's identity (hello, status) and the status reply,
 * both directions. Decoding fills every number the reply lacks with -1
 * (strings with ""); it refuses nothing, so that a client can show what
 * an older or newer daemon sent. */
struct proto_identity {
	int64_t version;  /* protocol version */
	char name[64];    /* server name, "portd" */
	char release[64]; /* server version, "0.1.0" */
	int64_t pid;
};
enum proto_counter {
	PROTO_COUNTER_REQUESTS,
	PROTO_COUNTER_ERRORS,
	PROTO_COUNTER_LEASES_CREATED,
	PROTO_COUNTER_LEASES_RELEASED,
	PROTO_COUNTER_LEASES_EXPIRED,
	PROTO_COUNTER_LEASES_SESSION_ENDED,
	PROTO_COUNTER_LEASES_PROCESS_ENDED,
	PROTO_COUNTER_CLAIMS,
	PROTO_COUNTER_RENEWALS,
	PROTO_COUNTER__MAX
};
struct proto_status {
	struct proto_identity identity;
	int64_t uptime; /* seconds */
	int64_t leases, ports, sockets, unheld, connections;
	int64_t queued_output, output_stalls;
	int64_t pool_lo, pool_hi, pool_size, pool_free;
	int pool_strategy; /* enum proto_strategy; -1 when absent */
	int ipv6;          /* 1, 0; -1 when absent */
	int64_t counters[PROTO_COUNTER__MAX];
};
/* The counter's field name in the reply ("leases_created"). */
const char *proto_counter_name(enum proto_counter);
/* Add the fields to reply, in the protocol's order: 0, or -1 when out of
 * memory. config (consumed, may be NULL) goes in as "config". */
int proto_identity_encode(json_object *reply, const struct proto_identity *);
int proto_status_encode(
    json_object *reply, const struct proto_status *, json_object *config);
void proto_identity_decode(json_object *reply, struct proto_identity *ret);
/* A reply's integer field, or -1 when absent or not an integer (o may be
 * NULL): how clients read the numbers of a reply. */
int64_t proto_reply_int(json_object *o, const char *key);
void proto_status_decode(json_object *reply, struct proto_status *ret);

#endif
