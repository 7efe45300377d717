# portd_add_test(NAME <name> [PORTS <n>] [PROTO tcp|udp|both] [FD]
#                COMMAND <command> [<arg>...])
#
# A ctest test that runs its command under `portctl exec`: the command gets
# its own leased ports in PORT, PORTS (space separated) and PORT_0...,
# and every {port} / {port0}... in its arguments is replaced by them, so
# `ctest -j` runs never race for a port. The lease is a session lease of
# portctl's connection: it ends when the test ends, however it ends.
#
#   PORTS n  ports for the test (default 1).
#   PROTO p  tcp (default: held with a shared hold, so a server that sets
#            SO_REUSEADDR binds while portd still holds the port), udp or
#            both (claimed just before the command starts: bind freely).
#   FD       hand the bound sockets to the command as a socket-activated
#            service gets them (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES,
#            descriptors from 3) instead of claiming.
#
# The daemon is found as portctl finds it: PORTD_SOCKET, else the system
# socket, else the per-user one (started when none runs). Further test
# properties are set as usual: set_tests_properties(<name> ...).
function(portd_add_test)
  cmake_parse_arguments(PARSE_ARGV 0 PT "FD" "NAME;PORTS;PROTO" "COMMAND")
  if(NOT PT_NAME)
    message(FATAL_ERROR "portd_add_test: NAME is required")
  endif()
  if(NOT PT_COMMAND)
    message(FATAL_ERROR "portd_add_test(${PT_NAME}): COMMAND is required")
  endif()
  if(PT_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR
      "portd_add_test(${PT_NAME}): unknown arguments: ${PT_UNPARSED_ARGUMENTS}")
  endif()
  set(exec_args)
  if(DEFINED PT_PORTS)
    if(NOT PT_PORTS MATCHES "^[1-9][0-9]*$" OR PT_PORTS GREATER 64)
      message(FATAL_ERROR
        "portd_add_test(${PT_NAME}): PORTS must be 1-64, not '${PT_PORTS}'")
    endif()
    list(APPEND exec_args -n ${PT_PORTS})
  endif()
  if(DEFINED PT_PROTO)
    if(NOT PT_PROTO MATCHES "^(tcp|udp|both)$")
      message(FATAL_ERROR
        "portd_add_test(${PT_NAME}): PROTO must be tcp, udp or both, not '${PT_PROTO}'")
    endif()
    list(APPEND exec_args --proto ${PT_PROTO})
  endif()
  if(PT_FD)
    list(APPEND exec_args --fd)
  endif()
  # The command's own first word may name a target of the project.
  list(POP_FRONT PT_COMMAND cmd)
  if(TARGET ${cmd})
    set(cmd $<TARGET_FILE:${cmd}>)
  endif()
  add_test(NAME ${PT_NAME}
    COMMAND $<TARGET_FILE:portd::portctl> exec ${exec_args} -- ${cmd}
      ${PT_COMMAND})
endfunction()
