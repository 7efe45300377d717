# Host service: the config file parser, and the systemd units checked with
# systemd's own tools.
portd_check_test(test_config test_config.c LIBS portd_core)
# The example config must name every key with its real default.
target_compile_definitions(test_config PRIVATE
  PORTD_CONF_EXAMPLE="${PROJECT_SOURCE_DIR}/systemd/portd.conf.example")

# The units as built: systemd-analyze verify (any complaint fails) and an
# exposure of at most 2.0 from systemd-analyze security.
add_test(NAME test_units
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_units.sh ${PORTD_UNITS_TEST_DIR} 20)
set_tests_properties(test_units PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
