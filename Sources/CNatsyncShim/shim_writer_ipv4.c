// The IPv4 table writer.
#include "family_ipv4.h"
#include "family_blob.h"
#include "shim_writer.inc"
