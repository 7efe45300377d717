# The Node and Go clients, each with its own ecosystem's test runner,
# against the portd of this build. Skipped (77) only where the toolchain
# is missing.
add_test(NAME client_node
  COMMAND ${PORTD_NETNS} ${CMAKE_CURRENT_SOURCE_DIR}/node_client.sh
    $<TARGET_FILE:portd> ${PROJECT_SOURCE_DIR}/client/node)
set_tests_properties(client_node PROPERTIES TIMEOUT 180
  SKIP_RETURN_CODE 77 ENVIRONMENT "PORTD_TEST_PORTS=30500-30999")

add_test(NAME client_go
  COMMAND ${PORTD_NETNS} ${CMAKE_CURRENT_SOURCE_DIR}/go_client.sh
    $<TARGET_FILE:portd> ${PROJECT_SOURCE_DIR}/client/go
    ${PROJECT_BINARY_DIR}/go)
set_tests_properties(client_go PROPERTIES TIMEOUT 300
  SKIP_RETURN_CODE 77 ENVIRONMENT "PORTD_TEST_PORTS=31000-31499")
