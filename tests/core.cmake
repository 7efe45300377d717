# Core: the codec, the allocator, the lease table, and the daemon end to end.
# test_proto and test_malformed both read the golden tree of invalid
# request lines (tests/cases/README.md).
set(PORTD_CASES_DIR ${CMAKE_CURRENT_SOURCE_DIR}/cases/invalid)
portd_check_test(test_proto test_proto.c)
target_compile_definitions(test_proto PRIVATE
  PORTD_CASES_DIR="${PORTD_CASES_DIR}")
# Unit tests of daemon modules link them directly; unit.c stands in for
# main.c.
portd_check_test(test_alloc test_alloc.c unit.c LIBS portd_core)
portd_check_test(test_lease test_lease.c unit.c LIBS portd_core)

# Integration: a real portd on a private socket.
portd_check_test(test_daemon test_daemon.c integ.c)
target_compile_definitions(test_daemon PRIVATE
  PORTD_MAIN_C="${PROJECT_SOURCE_DIR}/daemon/main.c")
portd_check_test(test_limits test_limits.c integ.c)
portd_check_test(test_malformed test_malformed.c integ.c)
target_compile_definitions(test_malformed PRIVATE
  PORTD_CASES_DIR="${PORTD_CASES_DIR}")

# The checked-in style holds for every C file.
add_test(NAME format COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/format.sh
  ${PROJECT_SOURCE_DIR})
set_tests_properties(format PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 60)

# The codec's fuzz target (tests/fuzz/README.md), seeded with the golden
# tree's inputs too.
portd_fuzz_target(fuzz_proto fuzz/fuzz_proto.c LIBS portd_proto
  SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds ${PORTD_CASES_DIR} MAX_LEN 512)

# Every wire name is spelled once, in proto/names.c (tests/wire_names.py).
add_test(NAME wire_names COMMAND python3
  ${CMAKE_CURRENT_SOURCE_DIR}/wire_names.py ${PROJECT_SOURCE_DIR})
set_tests_properties(wire_names PROPERTIES TIMEOUT 60)
