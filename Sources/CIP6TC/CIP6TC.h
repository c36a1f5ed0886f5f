// libip6tc, for linking the shim only: Swift never imports it, so no kernel UAPI type reaches the
// Swift importer. glibc's net headers come first, as libip6tc.h requires.
#include <netinet/in.h>
#include <net/if.h>
#include <libiptc/libip6tc.h>
