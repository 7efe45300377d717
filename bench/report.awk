# Turn bench/run.sh's results into the Markdown report and the charts'
# data. Input, tab-separated, one result a line:
#   FIGURE SERVER REP NAME N MEDIAN_US P99_US OPS_PER_S  a timed run
#   FIGURE SERVER 0 VALUE                                a number (kB, Ir)
#   restart portd REP restart COUNT READY_MS IDLE_KB LIVE_KB RESTORED_KB
#   sys SERVER 0 SYSCALL CALLS_PER_OPERATION
# Variables: machine, reps, sweep, held_max, levels (leases held of the
# latency chart), out (where the .dat files
# go), profile (1: callgrind and strace ran), top (callgrind's top
# functions, one "IR FUNCTION" a line).

NF == 8 {
	med[$1, $2, $3] = $6
	p99[$1, $2, $3] = $7
	ops[$1, $2, $3] = $8
	nrep[$1] = $3 > nrep[$1] ? $3 : nrep[$1]
}
NF == 4 {
	val[$1, $2] = $4
}
NF == 9 && $1 == "restart" {
	nrestart++
	ready[nrestart] = $6
	idle[nrestart] = $7
	live[nrestart] = $8
	restored[nrestart] = $9
	count = $5
}
NF == 5 && $1 == "sys" {
	sys[$2, $4] = $5
	if (!($4 in sysname)) {
		sysname[$4] = 1
		sysorder[++nsys] = $4
	}
	systotal[$2] += $5
}

# Sort a[1..n] numerically (insertion sort: n is small).
# One row of the table against the floor and Google's portserver: col of
# figure fig for each, shown as unit, and portd's ratio to the floor.
function row_vs(col, fig, unit, label,    x, y, z) {
	series(col, fig, "portd")
	x = spread(unit)
	series(col, fig, "floor")
	y = spread(unit)
	ratios(col, fig, "floor")
	z = spread("x")
	series(col, fig, "google")
	printf "| %s | %s | %s | %s | %s |\n", label, x, y, z, spread(unit)
}

# One chart's table and data file: for each point p of points, the
# median of col in figure prefix p for portd and the floor, their ratio,
# and a line of name.dat (p, portd, floor) for gnuplot.
function chart(col, prefix, points, title, name, what, a, b, unit, datfmt,
    i, ps, x, y, dat) {
	dat = out "/" name ".dat"
	print "![" title "](" name ".svg)"
	print ""
	print "| " what " | " a " | " b " | ratio |"
	print "| ---: | ---: | ---: | ---: |"
	printf "" >dat
	split(points, ps, " ")
	for (i = 1; i in ps; i++) {
		if (series(col, prefix ps[i], "portd") == 0)
			continue
		x = m["med"]
		series(col, prefix ps[i], "floor")
		y = m["med"]
		printf "%d\t" datfmt "\t" datfmt "\n", ps[i], x, y >dat
		printf "| %d | %.0f%s | %.0f%s | %.2f× |\n", ps[i], x, unit, y, \
		    unit, (y > 0 ? x / y : 0)
	}
	close(dat)
}

function sort(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) {
		t = a[i]
		for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--)
			a[j + 1] = a[j]
		a[j + 1] = t
	}
}

# Median, minimum and maximum of a[1..n], into m[].
function stats(a, n) {
	sort(a, n)
	m["med"] = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	m["min"] = a[1]
	m["max"] = a[n]
	m["n"] = n
}

# Collect one series: what ("med", "p99", "ops") of FIGURE SERVER over
# its repetitions; sets m[].
function series(what, fig, srv,    a, n, r, v) {
	n = 0
	for (r = 1; r <= nrep[fig]; r++) {
		v = what == "med" ? med[fig, srv, r] : \
		    what == "p99" ? p99[fig, srv, r] : ops[fig, srv, r]
		if (v != "")
			a[++n] = v
	}
	if (n == 0) {
		m["n"] = 0
		return 0
	}
	stats(a, n)
	return n
}

# The ratio portd / peer of each repetition (both measured side by side).
function ratios(what, fig, peer) {
	return ratios2(what, fig, "portd", peer)
}

# The ratio num / peer of each repetition.
function ratios2(what, fig, num, peer,    a, n, r, x, y) {
	n = 0
	for (r = 1; r <= nrep[fig]; r++) {
		x = what == "med" ? med[fig, num, r] : ops[fig, num, r]
		y = what == "med" ? med[fig, peer, r] : ops[fig, peer, r]
		if (x != "" && y != "" && y + 0 > 0)
			a[++n] = x / y
	}
	if (n == 0) {
		m["n"] = 0
		return 0
	}
	stats(a, n)
	return n
}

function fmt(v, unit) {
	if (unit == "us")
		return sprintf("%.0f µs", v)
	if (unit == "ops")
		return sprintf("%.0f", v)
	if (unit == "x")
		return sprintf("%.2f×", v)
	if (unit == "ms")
		return sprintf("%.0f ms", v)
	return v
}

# "median (min–max)" of m[].
function spread(unit) {
	if (m["n"] == 0)
		return "—"
	if (m["n"] == 1)
		return fmt(m["med"], unit)
	return fmt(m["med"], unit) " (" fmt(m["min"], unit) "–" \
	    fmt(m["max"], unit) ")"
}

# One row of the goal table: what is "med" or "ops"; goal "<=" or ">=".
function goal(label, fig, what, peer, pname, cmp, limit,    a, b, r, met) {
	series(what, fig, "portd")
	a = spread(what == "med" ? "us" : "ops")
	series(what, fig, peer)
	b = pname " " spread(what == "med" ? "us" : "ops")
	ratios(what, fig, peer)
	r = spread("x")
	met = m["n"] == 0 ? "—" : \
	    (cmp == "<=" ? m["med"] <= limit : m["med"] >= limit) ? "**met**" : \
	    "not met"
	printf "| %s | %s | %s | %s | %s %.2f× | %s |\n", label, a, b, r, \
	    cmp == "<=" ? "≤" : "≥", limit, met
}

function mb(kb) {
	return sprintf("%.1f MB", kb / 1024)
}

END {
	print "# portd benchmark"
	print ""
	print machine
	print ""
	print "Each figure of the goal table is measured " reps " times, " \
	    "portd and its floor or peer side by side in each repetition " \
	    "(in alternating order); a cell gives the median and, in " \
	    "brackets, the range over the repetitions. A ratio is taken " \
	    "within one repetition, then the median of those is given. " \
	    "Times are per lease + release pair as the client sees them."
	print ""
	print "## Goals"
	print ""
	print "| workload | portd | floor / peer | ratio | goal | |"
	print "| --- | ---: | ---: | ---: | ---: | --- |"
	goal("native lease+release p50, 1 client", "lease-1", "med", "floor", \
	    "floor", "<=", 1.25)
	goal("native lease+release p50, 4 clients", "lease-4", "med", \
	    "floor", "floor", "<=", 1.25)
	goal("native pairs/s, 4 clients", "lease-4", "ops", "floor", "floor", \
	    ">=", 0.8)
	goal("portserver requests/s, 4 clients", "ps-4", "ops", "google", \
	    "Google's portserver", ">=", 10)
	if (nrestart > 0) {
		for (i = 1; i <= nrestart; i++)
			a[i] = ready[i]
		stats(a, nrestart)
		printf "| ready after SIGKILL with %d leases | %s | — | — | " \
		    "≤ 250 ms | %s |\n", count, spread("ms"), \
		    m["med"] <= 250 ? "**met**" : "not met"
		for (i = 1; i <= nrestart; i++)
			a[i] = live[i]
		stats(a, nrestart)
		lv = m["med"]
		for (i = 1; i <= nrestart; i++)
			a[i] = restored[i]
		stats(a, nrestart)
		rs = m["med"]
		for (i = 1; i <= nrestart; i++)
			a[i] = idle[i]
		stats(a, nrestart)
		id = m["med"]
		printf "| RSS with %d leases: before the kill / after the " \
		    "restart | %s / %s | — | after / before %.2f× | " \
		    "≤ 1 KiB per lease, both; after ≤ 1.25× before | %s |\n", \
		    count, mb(lv), mb(rs), rs / lv, \
		    (lv / count <= 1 && rs / count <= 1 && rs <= 1.25 * lv) ? \
		    "**met**" : "not met"
		print ""
		printf "Per lease: %.2f KiB before the kill, %.2f KiB after " \
		    "the restart (RSS / leases); above the idle daemon's " \
		    "%s: %.2f KiB and %.2f KiB.\n", lv / count, rs / count, \
		    mb(id), (lv - id) / count, (rs - id) / count
	}

	print ""
	print "## More figures from the same runs"
	print ""
	print "| figure | portd | floor | ratio | Google's portserver |"
	print "| --- | ---: | ---: | ---: | ---: |"
	series("p99", "lease-1", "portd")
	x = spread("us")
	series("p99", "lease-1", "floor")
	printf "| lease+release p99, 1 client | %s | %s | | |\n", x, \
	    spread("us")
	series("p99", "lease-4", "portd")
	x = spread("us")
	series("p99", "lease-4", "floor")
	printf "| lease+release p99, 4 clients | %s | %s | | |\n", x, \
	    spread("us")
	series("ops", "lease-1", "portd")
	x = spread("ops")
	series("ops", "lease-1", "floor")
	y = spread("ops")
	ratios("ops", "lease-1", "floor")
	printf "| pairs/s, 1 client | %s | %s | %s | |\n", x, y, spread("x")
	row_vs("ops", "ps-4", "ops", "portserver requests/s, 4 clients")
	ratios2("ops", "ps-4", "floor", "google")
	printf "| portserver requests/s, 4 clients: floor / Google's " \
	    "portserver | | | %s | |\n", spread("x")
	row_vs("med", "ps-4", "us", "portserver request p50, 4 clients")
	printf "| RSS idle | %s | %s | | %s |\n", mb(val["rss-idle", "portd"]), \
	    mb(val["rss-idle", "floor"]), mb(val["rss-idle", "google"])
	printf "| RSS holding %d leases (the server of the charts) | %s | %s " \
	    "| | |\n", held_max, mb(val["rss-held", "portd"]), \
	    mb(val["rss-held", "floor"])

	print ""
	print "## Charts"
	print ""
	print "Medians of " sweep " repetitions each."
	print ""
	chart("med", "held-", levels, "latency against leases held", \
	    "latency-held", "leases held", "portd p50", "floor p50", " µs", \
	    "%.2f")
	print ""
	chart("ops", "clients-", "1 2 4 8 16", "throughput against clients", \
	    "throughput-clients", "clients", "portd pairs/s", "floor pairs/s", \
	    "", "%.0f")

	if (profile != 1)
		exit
	print ""
	print "## Profile"
	print ""
	printf "User-space instructions per lease + release pair " \
	    "(callgrind, the difference of 2,500 and 500 pairs): portd " \
	    "%d, floor %d.\n", val["ir-pair", "portd"], val["ir-pair", "floor"]
	print ""
	if (("guar-marker", "portd") in val) {
		printf "The system calls portd's guarantees add to a pair, " \
		    "timed alone in this run (`portd-bench guarantees`, " \
		    "20,000 each): two journal appends 2 × %.2f µs, a " \
		    "marker's socket + bind + close %.2f µs, the dual-stack " \
		    "and shared-hold `setsockopt` pair %.2f µs: %.1f µs a " \
		    "pair.\n", val["guar-write", "portd"], \
		    val["guar-marker", "portd"], val["guar-sockopt", "portd"], \
		    2 * val["guar-write", "portd"] + \
		    val["guar-marker", "portd"] + val["guar-sockopt", "portd"]
		print ""
	}
	print "System calls per operation (`strace -c -f` attached to the " \
	    "running server; a native operation is a lease + release pair, " \
	    "a portserver one a request):"
	print ""
	print "| system call | portd | floor | portd portserver | " \
	    "floor portserver |"
	print "| --- | ---: | ---: | ---: | ---: |"
	for (i = 1; i <= nsys; i++) {
		s = sysorder[i]
		if (sys["portd", s] < 0.01 && sys["floor", s] < 0.01 &&
		    sys["portd-ps", s] < 0.01 && sys["floor-ps", s] < 0.01)
			continue
		printf "| %s | %s | %s | %s | %s |\n", s, sys["portd", s], \
		    sys["floor", s], sys["portd-ps", s], sys["floor-ps", s]
	}
	printf "| **total** | %.2f | %.2f | %.2f | %.2f |\n", \
	    systotal["portd"], systotal["floor"], systotal["portd-ps"], \
	    systotal["floor-ps"]
	print ""
	print "portd's top functions by their own instructions (callgrind, " \
	    "2,500 pairs and start-up; json-c has no symbols for its " \
	    "static functions):"
	print ""
	print "| instructions | share | function | library |"
	print "| ---: | ---: | --- | --- |"
	while ((getline l < top) > 0) {
		split(l, w, "\t")
		printf "| %s | %s %% | `%s` | %s |\n", w[1], w[2], w[3], w[4]
	}
}
