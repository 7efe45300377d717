# The client: libportd and portctl against a real daemon, the exported
# symbols, and the installed library used through pkg-config and CMake.
portd_check_test(test_client test_client.c LIBS libportd)

portd_check_test(test_portctl test_portctl.c LIBS libportd)
target_compile_definitions(test_portctl PRIVATE
  PORTCTL_BIN="$<TARGET_FILE:portctl>")
add_dependencies(test_portctl portctl)
