# libportd's event-loop interface from a libevent program, its example, and
# the one-call forms.
portd_check_test(test_async test_async.c LIBS libportd PkgConfig::LIBEVENT)
target_compile_definitions(test_async PRIVATE
  LIBEVENT_LEASE_DIR="$<TARGET_FILE_DIR:libevent_lease>")
add_dependencies(test_async libevent_lease)
