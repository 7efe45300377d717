# Turn bench/run.sh's results into the Markdown report.
# Input, tab-separated, one line per result:
#   PEER NAME N MEDIAN_US P99_US OPS_PER_S   a timed test
#   PEER LABEL KB                            a resident set size (rss)
#   PEER fill|ps-fill COUNT                  leases taken (not reported)
# Variables: clients, ir (instructions per lease + release, or empty),
# machine, big_pool.

NF == 6 {
	n[$1, $2] = $3
	med[$1, $2] = $4
	p99[$1, $2] = $5
	ops[$1, $2] = $6
}
NF == 3 && $2 != "fill" && $2 != "ps-fill" {
	rss[$1, $2] = $3
}

function ratio(a, b) {
	return (a == "" || b == "" || b + 0 == 0) ? "—" : sprintf("%.2f", a / b)
}

function val(v) {
	return v == "" ? "—" : v
}

# row(LABEL, PEER-NAME, PORTD-TEST, PEER, PEER-TEST)
function row(label, pname, t, peer, pt) {
	printf "| %s | %s | %s | %s | %s | **%s** | %s | %s | **%s** | %s | %s |\n", \
	    label, pname, val(n["portd", t]), \
	    val(med["portd", t]), val(med[peer, pt]), \
	    ratio(med["portd", t], med[peer, pt]), \
	    val(p99["portd", t]), val(p99[peer, pt]), \
	    ratio(p99["portd", t], p99[peer, pt]), \
	    val(ops["portd", t]), val(ops[peer, pt])
}

function mrow(label, t, peer, pt) {
	printf "| %s | %s | %s | **%s** |\n", label, val(rss["portd", t]), \
	    peer == "" ? "—" : val(rss[peer, pt]), \
	    peer == "" ? "—" : ratio(rss["portd", t], rss[peer, pt])
}

END {
	print "# portd benchmark"
	print ""
	print machine
	print ""
	print "## Time per operation"
	print ""
	print "Microseconds as the client sees them, median and p99 of N " \
	    "operations; ops/s is N over the time they took (" clients \
	    " clients: over the wall-clock span). Ratio = portd / peer: " \
	    "below 1, portd is faster."
	print ""
	print "| operation | peer | N | portd median | peer median | ratio " \
	    "| portd p99 | peer p99 | ratio | portd ops/s | peer ops/s |"
	print "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: " \
	    "| ---: | ---: |"
	row("lease + release, one connection", "bind-0-close", "lease", \
	    "bind0", "bind0")
	row("lease + release, pool 90 % full", "bind-0-close", "lease-90", \
	    "bind0", "bind0")
	row("lease `fd: true` (receive, close) + release", "bind-0-close", \
	    "lease-fd", "bind0", "bind0")
	row("pipelined lease or release, 64 in flight (per request)", \
	    "bind-0-close", "pipeline", "bind0", "bind0")
	row("lease + release, " clients " clients", \
	    "bind-0-close, " clients " processes", "concurrent", "bind0", \
	    "bind0-concurrent")
	row("portserver request (`PID\\n` → `PORT\\n`)", \
	    "portpicker's portserver", "portserver", "portserver", \
	    "portserver")
	row("portserver request, " clients " clients", \
	    "portpicker's portserver", "portserver-concurrent", "portserver", \
	    "portserver-concurrent")
	print ""
	print "## Memory"
	print ""
	print "Resident set size (VmRSS) in kB. Peer: portpicker's portserver."
	print ""
	print "| state | portd | peer | ratio |"
	print "| --- | ---: | ---: | ---: |"
	mrow("idle, just started", "idle", "portserver", "idle")
	mrow("3,600 API leases held (pool 90 % full)", "held-3600", "", "")
	mrow("10,000 portserver-protocol leases for one live pid " \
	    "(pool " big_pool ")", "ps-10000", "portserver", "ps-10000")
	mrow("10,000 API leases held: 10,000 bound sockets (pool " \
	    big_pool ")", "api-10000", "", "")
	if (ir != "") {
		print ""
		print "## Instructions"
		print ""
		print "portd executes " ir " instructions per lease + release " \
		    "(callgrind, difference of 11,000 and 1,000 round trips)."
	}
}
