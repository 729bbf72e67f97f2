#include "data/demo_data.h"
