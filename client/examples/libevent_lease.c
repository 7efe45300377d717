/*
 * libportd's event-loop interface driven from libevent: lease COUNT ports
 * at once on one connection (pipelined, never blocking the loop), print
 * them, give them all back, and leave the loop.
 *
 *   libevent_lease [COUNT]      (1..1000, default 3)
 *
 * The daemon is found as portd_connect() finds it ($PORTD_SOCKET, ...).
 * Build: cc libevent_lease.c $(pkg-config --cflags --libs portd libevent)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <portd.h>

struct app {
	struct event_base *base;
	struct event *rev, *wev;
	struct portd_async *pa;
	int want, leased, released, failed;
	char (*ids)[PORTD_MAX_ID + 1];
};

/* The library says which events it needs: keep the write watch in step. */
static void
watch(struct portd_async *pa, int events, void *arg)
{
	struct app *app = arg;

	(void)pa;
	if (events & PORTD_ASYNC_WRITE)
		event_add(app->wev, NULL);
	else
		event_del(app->wev);
}

static void
io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct app *app = arg;
	int rc;

	(void)fd;
	rc = portd_async_process(
	    app->pa, (what & EV_READ ? PORTD_ASYNC_READ : 0) |
	                 (what & EV_WRITE ? PORTD_ASYNC_WRITE : 0));
	if (rc < 0) {
		fprintf(stderr, "libevent_lease: %s\n",
		    portd_async_errmsg(app->pa));
		event_base_loopbreak(app->base);
	}
}

static void
released(struct portd_async *pa, struct portd_async_reply *r, void *arg)
{
	struct app *app = arg;

	(void)pa;
	if (r->err < 0) {
		fprintf(stderr, "release: %s\n", r->errmsg);
		app->failed++;
	}
	if (++app->released == app->leased)
		event_base_loopbreak(app->base);
}

static void
leased(struct portd_async *pa, struct portd_async_reply *r, void *arg)
{
	struct app *app = arg;

	if (r->err < 0) {
		fprintf(stderr, "lease: %s: %s\n", portd_error_name(r->err),
		    r->errmsg);
		app->failed++;
	} else {
		printf("%u\n", r->lease->ports[0]);
		memcpy(app->ids[app->leased++], r->lease->id, PORTD_MAX_ID + 1);
		portd_lease_free(r->lease);
	}
	if (app->leased + app->failed < app->want)
		return;
	/* All answered: give every port back, again all at once. */
	if (app->leased == 0)
		event_base_loopbreak(app->base);
	for (int i = 0; i < app->leased; i++)
		portd_async_release(pa, app->ids[i], released, app);
}

int
main(int argc, char *argv[])
{
	const struct portd_lease_request req = {.scope = PORTD_SCOPE_SESSION};
	struct app app = {.want = 3};
	char errbuf[512];
	const struct portd_options opts = {
	    .autostart = true, .errbuf = errbuf, .errbuf_size = sizeof(errbuf)};
	int rc;

	if (argc > 2 || (argc == 2 && ((app.want = atoi(argv[1])) < 1 ||
	                                  app.want > 1000))) {
		fprintf(stderr, "usage: libevent_lease [COUNT]  (1..1000)\n");
		return 2;
	}
	if ((rc = portd_async_connect(&opts, &app.pa)) < 0) {
		fprintf(stderr, "libevent_lease: %s\n", errbuf);
		return 69;
	}
	app.ids = calloc((size_t)app.want, sizeof(*app.ids));
	app.base = event_base_new();
	app.rev = event_new(app.base, portd_async_fd(app.pa),
	    EV_READ | EV_PERSIST, io_cb, &app);
	app.wev = event_new(app.base, portd_async_fd(app.pa),
	    EV_WRITE | EV_PERSIST, io_cb, &app);
	if (app.ids == NULL || app.base == NULL || app.rev == NULL ||
	    app.wev == NULL) {
		fprintf(stderr, "libevent_lease: out of memory\n");
		return 1;
	}
	portd_async_set_watch(app.pa, watch, &app);
	event_add(app.rev, NULL);
	for (int i = 0; i < app.want; i++)
		if (portd_async_lease(app.pa, &req, leased, &app) < 0) {
			fprintf(stderr, "libevent_lease: %s\n",
			    portd_async_errmsg(app.pa));
			return 1;
		}
	event_base_dispatch(app.base);
	portd_async_free(app.pa);
	event_free(app.rev);
	event_free(app.wev);
	event_base_free(app.base);
	free(app.ids);
	return app.failed == 0 && app.released == app.want ? 0 : 1;
}
