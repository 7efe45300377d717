/* request: see portd.h. */
#include "log.h"
