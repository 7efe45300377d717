# The Python client (client/python) under Debian's pytest, against the
# portd of this build (under ASan in the sanitizer build): the client's
# calls, the pytest plugin run with -n 4, and the real portpicker against
# the portserver endpoint. One ctest per file, so ctest -j runs them side
# by side; they share one port range, cut into slices by the suite.
set(PORTD_TEST_PYTHON /usr/bin/python3 CACHE FILEPATH
  "Python with Debian's pytest, pytest-xdist and portpicker, for the tests")
foreach(part client fixtures portpicker install)
  add_test(NAME client_python_${part}
    COMMAND ${PORTD_NETNS} ${PORTD_TEST_PYTHON} -m pytest -p no:cacheprovider -q
      -o addopts= --rootdir ${PROJECT_SOURCE_DIR}/client/python
      ${PROJECT_SOURCE_DIR}/client/python/tests/test_${part}.py)
  set_tests_properties(client_python_${part} PROPERTIES TIMEOUT 180
    ENVIRONMENT "PORTD_BIN=$<TARGET_FILE:portd>;PORTCTL_BIN=$<TARGET_FILE:portctl>;PORTD_TEST_POOL=31500-31899;PYTHONDONTWRITEBYTECODE=1")
endforeach()

# PEP 8, as the package follows it.
add_test(NAME client_python_style
  COMMAND ${PORTD_TEST_PYTHON} -m pycodestyle
    ${PROJECT_SOURCE_DIR}/client/python/portd
    ${PROJECT_SOURCE_DIR}/client/python/tests)
