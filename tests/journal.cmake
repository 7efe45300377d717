# The journal under failure: a full tmpfs in a private mount namespace
# (root only; skipped otherwise).
portd_check_test(test_journal test_journal.c LIBS portd_svcmgr TIMEOUT 120)

# Fault injection is in the test-only portd-faults and never in portd.
add_test(NAME portd_has_no_faults COMMAND sh -c
  "! grep -q PORTD_FAULTS '$<TARGET_FILE:portd>' && grep -q PORTD_FAULTS '$<TARGET_FILE:portd-faults>'")

# The journal loader's fuzz target (tests/fuzz/README.md).
portd_fuzz_target(fuzz_journal fuzz/fuzz_journal.c
  ${PROJECT_SOURCE_DIR}/daemon/jrecord.c
  LIBS portd_proto PkgConfig::LIBEVENT
  SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/journal MAX_LEN 8192)
target_include_directories(fuzz_journal PRIVATE ${PROJECT_SOURCE_DIR}/daemon)
