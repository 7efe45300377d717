# Handoff and process lifetimes (guarantees 2-4): holds against real
# intruders, steals under pressure in a private network namespace, real
# servers co-binding and taking passed sockets, fd passing limits, and
# process-scoped leases.
add_library(portd_handoff STATIC handoff.c)
target_link_libraries(portd_handoff PUBLIC portd_harness)

portd_check_test(test_hold test_hold.c LIBS portd_handoff TIMEOUT 120)
portd_check_test(test_fdpass test_fdpass.c LIBS portd_handoff TIMEOUT 120)
portd_check_test(test_process test_process.c integ.c LIBS portd_handoff
  TIMEOUT 120)

# A socket-activated server for test_servers (what `portctl exec --fd`
# starts), and the servers test itself.
add_executable(sockact_hello sockact_hello.c)
portd_check_test(test_servers test_servers.c LIBS portd_handoff TIMEOUT 120)
add_dependencies(test_servers sockact_hello portctl)
target_compile_definitions(test_servers PRIVATE
  SOCKACT_HELLO="$<TARGET_FILE:sockact_hello>"
  PORTCTL_BIN="$<TARGET_FILE:portctl>")

# Steals under pressure, in a private network namespace (root); prints
# its measurements, exits 77 (skipped) where no namespace can be made.
portd_check_test(test_steal test_steal.c LIBS portd_handoff TIMEOUT 90)
set_tests_properties(test_steal PROPERTIES SKIP_RETURN_CODE 77)
