# Hardening against a hostile neighbour and a slow reader: the portserver
# endpoint's limits, privileged ports, half-close, memory under floods.
portd_check_test(test_hostile test_hostile.c integ.c)

# The daemon's own fuzz targets (tests/fuzz/README.md): a client's byte
# stream through the connection code, and several users' requests through
# the dispatcher, both against an in-process portd (tests/fuzz/inproc.c).
portd_fuzz_target(fuzz_conn fuzz/fuzz_conn.c fuzz/inproc.c
  LIBS portd_core SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/conn MAX_LEN 4096
  DAEMON)
portd_fuzz_target(fuzz_dispatch fuzz/fuzz_dispatch.c fuzz/inproc.c
  LIBS portd_core SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/dispatch
  MAX_LEN 4096 DAEMON)
