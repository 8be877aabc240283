//! Process-wide allocator settings, applied first thing by every binary's `main`.

/// What a process mostly does, which decides how it should allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Restores (and restore tests): megabyte statements of any table size, each held briefly.
    Restore,
    /// Everything else: backups, whose buffers are reused, and short commands.
    Other,
}

/// glibc settings that keep the resident set near what is in use (BENCHMARKS.md,
/// `scripts/bench-memory`). Call before the async runtime starts its threads; an operator's
/// `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` still wins.
///
/// - Two malloc arenas, always: glibc gives each thread that allocates its own arena (up to
///   eight per core), and the restore's converting threads then keep freed blocks spread over
///   many of them: on a 977 MiB table the restore peaked at 175 MiB against 117 MiB with two.
/// - For a restore, blocks of 256 KiB and more straight from the kernel, and back to it when
///   freed: glibc otherwise raises that threshold to the largest block freed (up to 32 MiB),
///   after which the megabyte statements come from the arenas, whose freed space is kept.
///   Measured on the same table: restore 122–135 MiB against 89–91 MiB (about 5 % slower). A
///   dump keeps glibc's own threshold: with 256 KiB its every large buffer was mapped and
///   faulted in anew, 5–8 % slower on the sample database at scale 60 (5.4 s against 5.0 s;
///   lost in run-to-run noise at scale 165) for a resident set of 33 MiB against 42, both
///   well inside its 64 MiB budget.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn configure_malloc(workload: Workload) {
    const LARGE_BLOCK_BYTES: libc::c_int = 256 * 1024;
    // SAFETY: mallopt only sets an allocator parameter (glibc takes its own lock), and the
    // callers run it before starting any thread of their own.
    unsafe {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
        if workload == Workload::Restore && std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES);
        }
    }
}

/// Other platforms' allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn configure_malloc(_workload: Workload) {}
