# Core: the codec, the allocator, the lease table, and the daemon end to end.
portd_check_test(test_proto test_proto.c)

# Integration: a real portd on a private socket. Pool ports per program:
# test_daemon 29000-29499, test_limits 29500-29999, test_malformed
# 30000-30499.
portd_check_test(test_daemon test_daemon.c integ.c)
target_compile_definitions(test_daemon PRIVATE
  PORTD_MAIN_C="${PROJECT_SOURCE_DIR}/daemon/main.c")
portd_check_test(test_limits test_limits.c integ.c)
portd_check_test(test_malformed test_malformed.c integ.c)
