//! The process's allocator: mimalloc, told to keep the memory it frees.
//!
//! The data path allocates large, short-lived buffers at a steady rate: request bodies, each
//! flush's Arrow arrays, Parquet and gzip output. With mimalloc's default (freed memory handed
//! back to the kernel after a delay), the same buffers came back as fresh pages, which the kernel
//! zeroes and maps on every flush: at 150 MB/s of delivery, page faults and `clear_page` took
//! about 6% of the server's CPU, and delivery fell behind (docs/benchmarks.md, session 18).
//! Kept, the heap stays at its high-water mark (about 415 MiB resident in that benchmark, against 374 MiB) and is reused.
//! `MIMALLOC_PURGE_DELAY` in the environment (milliseconds; 0 returns memory at once) overrides it.

/// Request buffers are large and short-lived; mimalloc reuses them instead of mapping fresh pages.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (v3's `mi_option_e`; the crate exports no constant for it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The environment variable through which mimalloc reads the same option.
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Tells mimalloc never to return freed memory to the kernel, unless the environment says
/// otherwise. Call first thing in `main`, before other threads exist.
#[allow(unsafe_code)]
pub fn keep_freed_memory() {
    if std::env::var_os(PURGE_DELAY_ENV).is_some() {
        return;
    }
    // SAFETY: mi_option_set writes one entry of mimalloc's option table with no other effect;
    // it is not thread-safe, and runs before `main` starts any thread.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

/// mimalloc's current purge delay (milliseconds; -1: never).
#[allow(unsafe_code)]
pub fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: reads one entry of mimalloc's option table.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_15_is_the_purge_delay_and_is_switched_off() {
        if std::env::var_os(PURGE_DELAY_ENV).is_some() {
            return; // the environment decides; nothing of ours to check
        }
        // v3's default purge delay is 1000 ms: if the index named another option (a mimalloc
        // upgrade renumbered them), this would read that option's default instead.
        assert_eq!(purge_delay_ms(), 1000);
        keep_freed_memory();
        assert_eq!(purge_delay_ms(), -1);
    }
}
