# Hardening against a hostile neighbour and a slow reader: the portserver
# endpoint's limits, privileged ports, half-close, memory under floods.
portd_check_test(test_hostile test_hostile.c integ.c)
