# Core: the codec, the allocator, the lease table, and the daemon end to end.
portd_check_test(test_proto test_proto.c)
