# Host service: the config file parser, and the systemd units checked with
# systemd's own tools.
portd_check_test(test_config test_config.c LIBS portd_core)
