/* The BPF target has no arch directory: the generic integer types are the ones BPF uses. */
#include <asm-generic/types.h>
