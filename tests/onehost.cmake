# One host: discovery, another network namespace, who, and a restored
# lease that cannot hold its port. In its own network namespace (root);
# exits 77 (skipped) where none can be made. Pool ports 25600-25699.
portd_check_test(test_onehost test_onehost.c integ.c LIBS libportd
  TIMEOUT 120)
set_tests_properties(test_onehost PROPERTIES SKIP_RETURN_CODE 77)
target_compile_definitions(test_onehost PRIVATE
  PORTCTL_BIN="$<TARGET_FILE:portctl>")
add_dependencies(test_onehost portctl)

# The portpicker endpoint under socket activation, by name.
add_test(NAME portserver_activation
  COMMAND ${PORTD_NETNS} ${CMAKE_CURRENT_SOURCE_DIR}/portserver_activation.sh
    $<TARGET_FILE:portd> $<TARGET_FILE:portctl>)
set_tests_properties(portserver_activation PROPERTIES SKIP_RETURN_CODE 77
  TIMEOUT 60)
