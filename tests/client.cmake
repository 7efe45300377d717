# The client: libportd and portctl against a real daemon, the exported
# symbols, and the installed library used through pkg-config and CMake.
portd_check_test(test_client test_client.c LIBS libportd)

portd_check_test(test_portctl test_portctl.c LIBS libportd)
target_compile_definitions(test_portctl PRIVATE
  PORTCTL_BIN="$<TARGET_FILE:portctl>")
add_dependencies(test_portctl portctl)

add_test(NAME client_symbols
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/client_symbols.sh
    $<TARGET_FILE:libportd> $<TARGET_FILE:libportd_static>)

# Installs the whole build into a temporary prefix.
add_test(NAME client_install
  COMMAND ${PORTD_NETNS} ${CMAKE_CURRENT_SOURCE_DIR}/client_install.sh
    ${PROJECT_BINARY_DIR} ${PORTD_SANITIZE})
set_tests_properties(client_install PROPERTIES TIMEOUT 300)

# bash and zsh completion (installed beside the man pages).
add_test(NAME completion
  COMMAND ${PORTD_NETNS} ${CMAKE_CURRENT_SOURCE_DIR}/completion.sh $<TARGET_FILE:portd>
    $<TARGET_FILE:portctl> ${PROJECT_SOURCE_DIR}/client/completion)
set_tests_properties(completion PROPERTIES TIMEOUT 60)
