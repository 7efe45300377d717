# Handoff and process lifetimes (guarantees 2-4): holds against real
# intruders, steals under pressure in a private network namespace, real
# servers co-binding and taking passed sockets, fd passing limits, and
# process-scoped leases. Pool ports 25000-25499, split between programs
# so they may run in parallel.
add_library(portd_handoff STATIC handoff.c)
target_link_libraries(portd_handoff PUBLIC portd_harness)

portd_check_test(test_hold test_hold.c LIBS portd_handoff TIMEOUT 120)
portd_check_test(test_fdpass test_fdpass.c LIBS portd_handoff TIMEOUT 120)
portd_check_test(test_process test_process.c LIBS portd_handoff TIMEOUT 120)
