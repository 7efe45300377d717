/*
 * The golden tree of invalid request lines, tests/cases/invalid: one
 * folder a case, its input beside the error it must give (the format is
 * in tests/cases/README.md). Read by test_proto and test_malformed.
 */
#ifndef PORTD_CASES_H
#define PORTD_CASES_H

#include <stddef.h>

struct bad_case {
	char *name;  /* the case's folder */
	char *input; /* the line's bytes, NUL-terminated after len */
	size_t len;
	char *code; /* the expected error code's wire name */
	char *msg;  /* a part of the expected message, or NULL */
};

/*
 * Every case under dir, sorted by name, into *ret; returns how many. A
 * missing or empty tree, or a case not in the documented format, is
 * reported on stderr and ends the program with status 1.
 */
size_t cases_load(const char *dir, struct bad_case **ret);

#endif
