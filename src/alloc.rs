//! Allocator tuning for training: candle allocates a fresh buffer per operation, and glibc
//! serves large buffers with mmap and returns them to the kernel when freed, so every step
//! pays for page faults, zeroed pages and TLB shootdowns. Activations at batch 2048 reach
//! 32 MiB, glibc's largest mmap threshold, so mmap is turned off for allocations and the
//! heap is never trimmed: freed buffers are reused by the next step.

/// Keeps glibc's large allocations on the heap for reuse; a no-op elsewhere.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before training
    // allocates, and any value is valid for these two options.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// This machine's physical memory in bytes, where the system says.
pub fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf only reads system parameters; it returns -1 for an unknown one.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
}
