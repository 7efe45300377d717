# Core: the codec, the allocator, the lease table, and the daemon end to end.
portd_check_test(test_proto test_proto.c)
# Unit tests of daemon modules link them directly; unit.c stands in for
# main.c. Ports: test_alloc 28000-28199, test_lease 28200-28399.
portd_check_test(test_alloc test_alloc.c unit.c LIBS portd_core)
portd_check_test(test_lease test_lease.c unit.c LIBS portd_core)
