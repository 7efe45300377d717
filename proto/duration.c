/*
 * The duration grammar of the config file and the command lines: systemd's
 * time spans (systemd.time(7)), so "1h30m", "90s" and "2d" mean what
 * they mean in a unit file.
 */
#include <inttypes.h>
#include <stdbool.h>
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

static const struct {
	const char *name;
	int64_t us;
} span_units[] = {
    /* Longest first where one name begins another ("ms" and "m"). */
    {"usec", 1},
    {"us", 1},
    {"msec", 1000},
    {"ms", 1000},
    {"seconds", 1000000},
    {"second", 1000000},
    {"sec", 1000000},
    {"s", 1000000},
    {"minutes", 60000000},
    {"minute", 60000000},
    {"min", 60000000},
    {"months", 2629800000000},
    {"month", 2629800000000},
    {"m", 60000000},
    {"hours", 3600000000},
    {"hour", 3600000000},
    {"hr", 3600000000},
    {"h", 3600000000},
    {"days", 86400000000},
    {"day", 86400000000},
    {"d", 86400000000},
    {"weeks", 604800000000},
    {"week", 604800000000},
    {"w", 604800000000},
    {"M", 2629800000000},
    {"years", 31557600000000},
    {"year", 31557600000000},
    {"y", 31557600000000},
};

int
proto_duration_parse(const char *s, int64_t unit_ms, int64_t *ret_ms)
{
	const char *p = s;
	int64_t total = 0; /* microseconds */
	bool any = false;

	if (unit_ms <= 0 || unit_ms > INT64_MAX / 1000)
		return -1;
	for (;;) {
		int64_t whole = 0, frac = 0, scale = 1, mul = -1, v;
		const char *q, *num_end;
		size_t len = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (*p < '0' || *p > '9') {
			if (*p != '.' || p[1] < '0' || p[1] > '9')
				return -1;
		} else if (proto_parse_digits(p, &whole, &p) == -1)
			return -1;
		if (*p == '.') {
			for (p++; *p >= '0' && *p <= '9'; p++)
				if (scale <=
				    INT64_MAX / 100) { /* past 1e-17: 0 */
					frac = frac * 10 + (*p - '0');
					scale *= 10;
				}
		}
		num_end = p;
		while (*p == ' ' || *p == '\t')
			p++;
		for (q = p;
		     (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'); q++)
			len++;
		/* A bare number ends the span or is followed by a blank:
		 * "1h30" is 1h30s, "1..5s" is nothing. */
		if (len == 0 && *p != '\0' && p == num_end)
			return -1;
		if (len == 0)
			mul = unit_ms * 1000;
		for (size_t i = 0;
		     len > 0 && i < sizeof(span_units) / sizeof(span_units[0]);
		     i++)
			if (strlen(span_units[i].name) == len &&
			    strncmp(p, span_units[i].name, len) == 0)
				mul = span_units[i].us;
		if (mul < 0)
			return -1;
		p = q;
		if (whole > INT64_MAX / mul)
			return -1;
		v = whole * mul;
		/* frac / scale of a unit, truncated to a microsecond. */
		if (frac > 0) {
			int64_t f = frac, sc = scale;
			while (f > INT64_MAX / mul) {
				f /= 10;
				sc /= 10;
			}
			v += sc > 0 ? f * mul / sc : 0;
		}
		if (v > INT64_MAX - total)
			return -1;
		total += v;
		any = true;
	}
	if (!any || total % 1000 != 0)
		return -1;
	*ret_ms = total / 1000;
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
