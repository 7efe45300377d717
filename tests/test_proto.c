#include "harness.h"
#include "proto.h"
START_TEST(placeholder)
{
	ck_assert_str_eq(proto_errcode_name(PROTO_E_NOT_FOUND), "not_found");
}
END_TEST
int
main(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("codes");
	tcase_add_test(tc, placeholder);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
