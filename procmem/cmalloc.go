package procmem

// The C heap is SQLite's (its page caches, statements and the memory of
// each connection's thread). glibc gives every thread that calls malloc an
// arena of its own, up to eight per core, and keeps what an arena freed
// mapped until that arena's top is free: on the idle daemon that was a few
// MiB of resident memory held for connections the pool had already
// closed. One arena is plenty for a daemon whose C code is SQLite behind
// database/sql's few connections; malloc_trim gives the free pages back
// after start-up, as debug.FreeOSMemory does for the Go heap. A C library
// without these calls (musl, on OpenWrt) just keeps its own behaviour.

/*
#if defined(__GLIBC__)
#include <malloc.h>
static void gh_malloc_one_arena(void) { mallopt(M_ARENA_MAX, 1); }
static void gh_malloc_trim(void) { malloc_trim(0); }
#else
static void gh_malloc_one_arena(void) {}
static void gh_malloc_trim(void) {}
#endif
*/
import "C"

// cHeapOneArena makes every thread's C allocations share one arena; it
// must run before SQLite's first connection to take effect for it.
func cHeapOneArena() { C.gh_malloc_one_arena() }

// cHeapTrim returns the C heap's free pages to the kernel.
func cHeapTrim() { C.gh_malloc_trim() }
