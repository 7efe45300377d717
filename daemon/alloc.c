/* alloc: see portd.h. */
#include "log.h"
