/* Support shared by the fuzz targets. */
#ifndef PORTD_FUZZ_CHECK_H
#define PORTD_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* A broken invariant: say which, then crash for the fuzzer. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(                                               \
			    stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
