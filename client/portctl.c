#include "portd.h"
int
main(void)
{
	return 0;
}
