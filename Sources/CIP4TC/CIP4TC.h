// libip4tc, for linking the shim only: Swift never imports it, so no kernel UAPI type reaches the
// Swift importer. glibc's net headers come first, as libiptc.h requires.
#include <netinet/in.h>
#include <net/if.h>
#include <libiptc/libiptc.h>
