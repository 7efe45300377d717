# Operations: metrics (promtool, a real HTTP client), status's effective
# configuration, the stop op.
portd_check_test(test_ops test_ops.c integ.c)
