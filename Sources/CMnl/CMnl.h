// libmnl, for linking the shim only: Swift never imports it.
#include <libmnl/libmnl.h>
