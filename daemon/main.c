#include <stdio.h>
int
main(void)
{
	puts("portd " PORTD_VERSION);
	return 0;
}
