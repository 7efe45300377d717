/* listener: see portd.h. */
#include "log.h"
