/*
 * Reader of the golden tree of invalid request lines (cases.h). Strict on
 * purpose: a misspelt file, a stray newline or an empty tree stops the
 * test program instead of leaving cases unchecked.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "proto.h"

static void __attribute__((format(printf, 1, 2), noreturn))
bad_tree(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "golden cases: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* The whole file, NUL-terminated after *ret_len. */
static char *
slurp(const char *path, size_t max, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		bad_tree("%s: %s", path, strerror(errno));
	if ((buf = malloc(max + 2)) == NULL)
		bad_tree("out of memory");
	n = fread(buf, 1, max + 1, f);
	if (ferror(f))
		bad_tree("%s: read error", path);
	fclose(f);
	if (n > max)
		bad_tree("%s: longer than %zu bytes", path, max);
	buf[n] = '\0';
	*ret_len = n;
	return buf;
}

static int
by_name(const void *a, const void *b)
{
	const struct bad_case *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static void
check_name(const char *dir, const char *name)
{
	if (name[strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_")] != '\0')
		bad_tree("%s/%s: a case's name is made of a-z, 0-9 and _", dir,
		    name);
}

/* error: the code's line, then at most one line of message part. */
static void
read_error(const char *path, struct bad_case *c)
{
	size_t len;
	char *text = slurp(path, 1024, &len), *nl;

	if (len == 0 || text[len - 1] != '\n')
		bad_tree("%s: each line ends in a newline", path);
	text[len - 1] = '\0';
	if ((nl = strchr(text, '\n')) != NULL) {
		*nl = '\0';
		if (strchr(nl + 1, '\n') != NULL)
			bad_tree("%s: more than two lines", path);
		if (nl[1] == '\0')
			bad_tree("%s: an empty message part", path);
		if ((c->msg = strdup(nl + 1)) == NULL)
			bad_tree("out of memory");
	}
	if (text[0] == '\0')
		bad_tree("%s: no error code", path);
	if ((c->code = strdup(text)) == NULL)
		bad_tree("out of memory");
	free(text);
}

static void
read_case(const char *dir, const char *name, struct bad_case *c)
{
	char path[4096];
	bool input = false, error = false;
	struct dirent *e;
	DIR *d;

	memset(c, 0, sizeof(*c));
	check_name(dir, name);
	if ((c->name = strdup(name)) == NULL)
		bad_tree("out of memory");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((d = opendir(path)) == NULL)
		bad_tree("%s: %s (a case is a folder)", path, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (strcmp(e->d_name, "input") == 0)
			input = true;
		else if (strcmp(e->d_name, "error") == 0)
			error = true;
		else if (strcmp(e->d_name, "note") != 0)
			bad_tree("%s/%s: not one of input, error, note", path,
			    e->d_name);
	}
	closedir(d);
	if (!input || !error)
		bad_tree("%s: a case needs both input and error", path);

	snprintf(path, sizeof(path), "%s/%s/input", dir, name);
	c->input = slurp(path, PROTO_MAX_LINE, &c->len);
	if (memchr(c->input, '\n', c->len) != NULL)
		bad_tree(
		    "%s: a newline byte (one line, without its newline)", path);
	snprintf(path, sizeof(path), "%s/%s/error", dir, name);
	read_error(path, c);
}

size_t
cases_load(const char *dir, struct bad_case **ret)
{
	struct bad_case *cases = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		bad_tree("%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			cases = realloc(cases, cap * sizeof(*cases));
			if (cases == NULL)
				bad_tree("out of memory");
		}
		read_case(dir, e->d_name, &cases[n++]);
	}
	closedir(d);
	if (n == 0)
		bad_tree("%s: no cases", dir);
	qsort(cases, n, sizeof(*cases), by_name);
	*ret = cases;
	return n;
}
