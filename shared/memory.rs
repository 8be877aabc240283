//! Process-wide allocator settings, applied first thing by every binary's `main`.

/// Two glibc settings that keep the resident set near what is in use (BENCHMARKS.md,
/// `scripts/bench-memory`). Call before the async runtime starts its threads; an operator's
/// `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` still wins.
///
/// - Two malloc arenas: glibc gives each thread that allocates its own arena (up to eight per
///   core), and the restore's converting threads then keep freed blocks spread over many of
///   them: on a 977 MiB table the restore peaked at 175 MiB against 117 MiB with two arenas.
/// - Blocks of 256 KiB and more straight from the kernel, and back to it when freed: glibc
///   otherwise raises that threshold to the largest block freed (up to 32 MiB), after which
///   the megabyte statements of a dump or restore come from the arenas, whose freed space is
///   kept. Measured on the same table: restore 122–135 MiB against 89–91 MiB (about 5 %
///   slower), dump 31–34 MiB against 25 MiB (as fast).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn configure_malloc() {
    const LARGE_BLOCK_BYTES: libc::c_int = 256 * 1024;
    // SAFETY: mallopt only sets an allocator parameter (glibc takes its own lock), and the
    // callers run it before starting any thread of their own.
    unsafe {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES);
        }
    }
}

/// Other platforms' allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn configure_malloc() {}
