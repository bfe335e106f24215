//! The `flotilla` command-line entry point: all logic lives in the library.

// Planning a large fleet makes millions of small allocations; mimalloc is markedly
// faster at that than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod allocator {
    //! Allocator tuning, set once before any work.
    //!
    //! mimalloc keeps freed pages for a purge delay (1 s by default in its v3 series)
    //! before returning them to the system. A plan frees the expansion's transient
    //! working memory within that second and then allocates the plan and its rendering,
    //! so with the default the process holds both at once: about 50 MB more peak RSS at
    //! 10,000 tenants (BENCHMARKS.md, "Plan"). Purging at once costs no measurable CPU
    //! time here.

    use libmimalloc_sys as ffi;

    /// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (the sys crate names only
    /// the first options). `tests::the_option_index_is_the_purge_delay` pins it to the
    /// bundled version.
    pub(crate) const PURGE_DELAY: ffi::mi_option_t = 15;

    /// Return freed memory to the system immediately.
    pub(crate) fn purge_immediately() {
        // SAFETY: mi_option_set only stores a value in mimalloc's option table; it is
        // called before any other thread exists.
        unsafe { ffi::mi_option_set(PURGE_DELAY, 0) }
    }

    /// `mi_option_allow_thp` in the same enumeration.
    pub(crate) const ALLOW_THP: ffi::mi_option_t = 43;

    /// No transparent huge pages for this process (and the processes it starts).
    ///
    /// mimalloc asks the kernel for huge pages over its whole arena. Each first touch of
    /// a 2 MiB page then has the kernel clear all of it, taken from free 2 MiB blocks
    /// that a virtual machine's host has often reclaimed. Measured on a 2-core VM, with
    /// a pause between runs as a terminal or CI gives: a 10,000-tenant plan took
    /// 191–407 ms with huge pages and 210–213 ms without, 20,000 tenants 608–698 ms and
    /// 429–490 ms (BENCHMARKS.md, "Plan"). With 4 KiB pages the kernel clears what is
    /// touched, and its time grows with the fleet, not faster.
    pub(crate) fn no_huge_pages() {
        // SAFETY: as above; mimalloc's later mappings are then not advised as huge.
        unsafe { ffi::mi_option_set(ALLOW_THP, 0) }
        // The arena reserved at start-up was advised already: the process-wide switch
        // covers it. A kernel without it leaves huge pages on, which is only slower.
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_THP_DISABLE takes an integer flag and changes only this
        // process's memory policy.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_option_index_is_the_purge_delay() {
            // SAFETY: reads of the option table and the version number (major·10⁴ + minor·10² + patch).
            let (version, default) =
                unsafe { (ffi::mi_version(), ffi::mi_option_get(PURGE_DELAY)) };
            assert!(
                (30_000..40_000).contains(&version),
                "mimalloc {version}: re-check PURGE_DELAY against its mi_option_e"
            );
            // The purge delay's documented v3 default, unless MIMALLOC_PURGE_DELAY is set.
            if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
                assert_eq!(default, 1000);
            }
            purge_immediately();
            // SAFETY: as above.
            assert_eq!(unsafe { ffi::mi_option_get(PURGE_DELAY) }, 0);
        }

        #[test]
        fn huge_pages_are_off_after_start_up() {
            // SAFETY: a read of the option table.
            let default = unsafe { ffi::mi_option_get(ALLOW_THP) };
            if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
                // mimalloc v3's documented default on Linux: a wrong index reads
                // another option.
                assert_eq!(default, 1);
            }
            no_huge_pages();
            // SAFETY: as above.
            assert_eq!(unsafe { ffi::mi_option_get(ALLOW_THP) }, 0);
            #[cfg(target_os = "linux")]
            {
                // SAFETY: PR_GET_THP_DISABLE reads this process's flag.
                let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
                assert_eq!(disabled, 1);
            }
        }
    }
}

fn main() {
    allocator::purge_immediately();
    allocator::no_huge_pages();
    let code = flotilla::cli::main();
    std::process::exit(code);
}
