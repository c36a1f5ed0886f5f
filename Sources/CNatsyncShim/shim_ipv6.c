// The IPv6 half of the shim: libip6tc handles, entries and the blob reader.
#include "family_ipv6.h"
#include "family_blob.h"
#include "shim_family.inc"
