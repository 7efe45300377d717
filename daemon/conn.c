/* conn: see portd.h. */
#include "log.h"
