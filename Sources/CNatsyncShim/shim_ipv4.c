// The IPv4 half of the shim: libip4tc handles, entries and the blob reader.
#include "family_ipv4.h"
#include "family_blob.h"
#include "shim_family.inc"
