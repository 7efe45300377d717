# State across restarts: the service manager's notify socket and fd store
# (played by the tests), socket activation, SIGKILL during a lease storm,
# damaged journals, config reload.
add_library(portd_svcmgr STATIC svcmgr.c)
target_link_libraries(portd_svcmgr PUBLIC portd_harness)

portd_check_test(test_service test_service.c LIBS portd_svcmgr TIMEOUT 120)
portd_check_test(test_crash test_crash.c LIBS portd_svcmgr TIMEOUT 120)
portd_check_test(test_restart test_restart.c LIBS portd_svcmgr TIMEOUT 120)
