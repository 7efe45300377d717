# The installed CMake package: both library targets and portd_add_test()
# in a sample project, run with ctest -j4.
add_test(NAME client_cmake
  COMMAND ${PORTD_NETNS} ${CMAKE_CURRENT_SOURCE_DIR}/client_cmake.sh
    ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${PORTD_SANITIZE})
set_tests_properties(client_cmake PROPERTIES TIMEOUT 300)
