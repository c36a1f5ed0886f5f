// The IPv6 table writer.
#include "family_ipv6.h"
#include "family_blob.h"
#include "shim_writer.inc"
