# Operations: metrics (promtool, a real HTTP client), status's effective
# configuration, the stop op. Pool ports: test_ops 30600-30699.
portd_check_test(test_ops test_ops.c integ.c)
