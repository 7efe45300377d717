# The client: libportd and portctl against a real daemon, the exported
# symbols, and the installed library used through pkg-config and CMake.
portd_check_test(test_client test_client.c LIBS libportd)
