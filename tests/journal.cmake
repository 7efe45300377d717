# The journal under failure: a full tmpfs in a private mount namespace
# (root only; skipped otherwise). Pool ports 30500-30599.
portd_check_test(test_journal test_journal.c LIBS portd_svcmgr TIMEOUT 120)
