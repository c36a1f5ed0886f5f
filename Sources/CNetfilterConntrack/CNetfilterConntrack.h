// libnetfilter_conntrack, for linking the shim only: Swift never imports it.
#include <netinet/in.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
