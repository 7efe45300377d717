/* The duration grammar of the config file and the command lines. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "shared.h"

static const struct {
	const char *suffix;
	int64_t ms;
} units[] = {{"d", PROTO_MS_DAY}, {"h", PROTO_MS_HOUR}, {"m", PROTO_MS_MINUTE},
    {"s", PROTO_MS_SECOND}, {"ms", 1}};

int
proto_parse_digits(const char *s, int64_t *ret, const char **ret_end)
{
	int64_t v = 0;
	const char *p;

	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (p == s)
		return -1;
	*ret = v;
	*ret_end = p;
	return 0;
}

int
proto_duration_parse(const char *s, int64_t unit_ms, int64_t *ret_ms)
{
	int64_t v, mul = -1;
	const char *p;

	if (proto_parse_digits(s, &v, &p) == -1)
		return -1;
	if (*p == '\0')
		mul = unit_ms;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(p, units[i].suffix) == 0)
			mul = units[i].ms;
	if (mul <= 0 || v > INT64_MAX / mul)
		return -1;
	*ret_ms = v * mul;
	return 0;
}

void
proto_duration_format(int64_t ms, char *buf, size_t size)
{
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		/* 0 is "0s"; whatever no larger unit divides is in ms. */
		bool exact = ms % units[i].ms == 0 &&
		             (ms != 0 || units[i].ms == PROTO_MS_SECOND);
		if (!exact && units[i].ms != 1)
			continue;
		snprintf(buf, size, "%" PRId64 "%s", ms / units[i].ms,
		    units[i].suffix);
		return;
	}
}
