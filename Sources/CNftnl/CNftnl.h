// libnftnl, for linking the shim only: Swift never imports it.
#include <libnftnl/common.h>
