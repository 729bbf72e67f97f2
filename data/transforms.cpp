#include "data/transforms.h"
