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
    }
}

fn main() {
    allocator::purge_immediately();
    let code = flotilla::cli::main();
    std::process::exit(code);
}
