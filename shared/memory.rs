//! Process-wide allocator settings, applied first thing by every binary's `main`.

/// glibc gives each thread that allocates its own malloc arena (up to eight per core), and the
/// restore's converting threads then keep freed blocks spread over many of them: on a 977 MiB
/// table the restore peaked at 175 MiB against 117 MiB with two arenas, and the dump at 40
/// against 29, at the same speed (BENCHMARKS.md). Call before the async runtime starts its
/// threads; an operator's `MALLOC_ARENA_MAX` still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter (glibc takes its own lock), and the
        // callers run it before starting any thread of their own.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Other platforms' allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_malloc_arenas() {}
