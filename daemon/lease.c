/* lease: see portd.h. */
#include "log.h"
