//! Memory for the exclusive index's tables.
//!
//! A verify in a large store is dominated by two memory accesses: the
//! table's control bytes and the key's entry, both at random places in tens
//! of megabytes. With 4 KiB pages each of them also misses the TLB, and in a
//! virtual machine a page walk is itself a chain of memory accesses. On Unix,
//! tables of 2 MiB or more are therefore mapped on 2 MiB boundaries, and on
//! Linux the kernel is asked to back their whole 2 MiB pages with transparent
//! huge pages (`MADV_HUGEPAGE`), so that a million keys' entries span about
//! 36 TLB entries instead of 18,000 (other Unix kernels that promote aligned
//! regions by themselves, such as FreeBSD's, get the alignment). This is
//! advice: where huge pages are off or unavailable the mapping works with
//! ordinary pages. Smaller tables, and every table on other platforms
//! (Windows), come from the global allocator.

use core::alloc::Layout;
use core::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator};

/// The allocator of the index's hash tables.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IndexMemory;

#[cfg(unix)]
use mapped as platform;

#[cfg(not(unix))]
use global as platform;

// SAFETY: `platform` returns blocks of at least `layout.size()` bytes aligned
// to `layout.align()`, valid until its `deallocate` is called with the same
// layout; copies of the allocator are interchangeable (it has no state).
unsafe impl Allocator for IndexMemory {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        platform::allocate(layout)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: `ptr` came from `platform::allocate` with this layout.
        unsafe { platform::deallocate(ptr, layout) }
    }
}

/// Large tables mapped on huge-page boundaries, small ones from the global
/// allocator.
#[cfg(unix)]
mod mapped {
    use core::alloc::Layout;
    use core::ptr::NonNull;

    use allocator_api2::alloc::{AllocError, Allocator, Global};

    const HUGE_PAGE: usize = 2 << 20;
    const PAGE: usize = 4096;

    /// The length mapped for `layout` (whole 4 KiB pages), or `None` when the
    /// global allocator serves it. The same answer for allocate and deallocate.
    pub(super) fn mapped_len(layout: Layout) -> Option<usize> {
        (layout.size() >= HUGE_PAGE && layout.align() <= HUGE_PAGE)
            .then(|| layout.size().checked_next_multiple_of(PAGE))
            .flatten()
    }

    /// An anonymous private mapping of at least `layout.size()` bytes aligned
    /// to 2 MiB (so to `layout.align()`) when [`mapped_len`] says so, else the
    /// global allocator's block.
    pub(super) fn allocate(layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let Some(len) = mapped_len(layout) else {
            return Global.allocate(layout);
        };
        // Map one huge page more than needed and trim both ends, so that the
        // mapping starts on a 2 MiB boundary.
        let span = len.checked_add(HUGE_PAGE).ok_or(AllocError)?;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                span,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(AllocError);
        }
        let head = (base as usize).next_multiple_of(HUGE_PAGE) - base as usize;
        let tail = span - head - len;
        // SAFETY: both ranges lie inside the mapping made above and outside
        // the part handed out; unmapping a zero-length range is skipped.
        unsafe {
            let base = base.cast::<u8>();
            if head > 0 {
                libc::munmap(base.cast(), head);
            }
            if tail > 0 {
                libc::munmap(base.add(head + len).cast(), tail);
            }
            let start = base.add(head);
            // Linux: ask for transparent huge pages over the whole huge
            // pages only. A table's size is a power of two plus its control
            // bytes, and a huge page for that small tail would be 2 MiB
            // resident for a few KiB used. Advice only: a refusal leaves
            // ordinary pages. (Other Unix kernels have no MADV_HUGEPAGE; they
            // get the alignment.)
            #[cfg(target_os = "linux")]
            libc::madvise(start.cast(), len - len % HUGE_PAGE, libc::MADV_HUGEPAGE);
            let start = NonNull::new(start).ok_or(AllocError)?;
            Ok(NonNull::slice_from_raw_parts(start, len))
        }
    }

    /// # Safety
    ///
    /// `ptr` must come from [`allocate`] with this `layout`.
    pub(super) unsafe fn deallocate(ptr: NonNull<u8>, layout: Layout) {
        match mapped_len(layout) {
            // SAFETY: `allocate` mapped exactly `len` bytes at `ptr` for this layout.
            Some(len) => unsafe {
                libc::munmap(ptr.as_ptr().cast(), len);
            },
            // SAFETY: `allocate` got this block from the global allocator.
            None => unsafe { Global.deallocate(ptr, layout) },
        }
    }
}

/// Every table from the global allocator: the platforms without `mmap`.
/// Compiled for tests on Unix too, so that this path is built and run
/// where the tests run.
#[cfg(any(not(unix), test))]
mod global {
    use core::alloc::Layout;
    use core::ptr::NonNull;

    use allocator_api2::alloc::{AllocError, Allocator, Global};

    pub(super) fn allocate(layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        Global.allocate(layout)
    }

    /// # Safety
    ///
    /// `ptr` must come from [`allocate`] with this `layout`.
    pub(super) unsafe fn deallocate(ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: `allocate` got this block from the global allocator.
        unsafe { Global.deallocate(ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUGE_PAGE: usize = 2 << 20;

    /// The allocator non-Unix platforms use, for tests on this one.
    #[derive(Clone, Copy)]
    struct GlobalOnly;

    // SAFETY: forwards to the global allocator.
    unsafe impl Allocator for GlobalOnly {
        fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            global::allocate(layout)
        }

        unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
            // SAFETY: from `allocate` with this layout.
            unsafe { global::deallocate(ptr, layout) }
        }
    }

    /// Allocates `size` bytes aligned to 64, writes and reads both ends,
    /// frees them, and returns where the block started.
    fn round_trip(allocator: &impl Allocator, size: usize) -> usize {
        let layout = Layout::from_size_align(size, 64).expect("layout");
        let block = allocator.allocate(layout).expect("allocate");
        let start = block.cast::<u8>();
        assert!(block.len() >= size);
        assert_eq!(start.as_ptr() as usize % 64, 0);
        // SAFETY: the block is at least `size` bytes, writable, and freed
        // with the layout it was allocated with.
        unsafe {
            start.as_ptr().write_bytes(0xA5, size);
            assert_eq!(*start.as_ptr(), 0xA5);
            assert_eq!(*start.as_ptr().add(size - 1), 0xA5);
            allocator.deallocate(start, layout);
        }
        start.as_ptr() as usize
    }

    #[cfg(unix)]
    #[test]
    fn large_blocks_are_aligned_to_huge_pages_and_usable() {
        for size in [HUGE_PAGE, HUGE_PAGE + 64, 3 * HUGE_PAGE - 1] {
            assert_eq!(round_trip(&IndexMemory, size) % HUGE_PAGE, 0);
        }
    }

    #[cfg(unix)]
    #[test]
    fn small_blocks_come_from_the_global_allocator() {
        let layout = Layout::from_size_align(4096, 64).expect("layout");
        assert_eq!(mapped::mapped_len(layout), None);
        round_trip(&IndexMemory, 4096);
    }

    #[test]
    fn the_global_fallback_serves_every_size() {
        for size in [64, 4096, HUGE_PAGE, HUGE_PAGE + 64, 3 * HUGE_PAGE - 1] {
            round_trip(&GlobalOnly, size);
            round_trip(&IndexMemory, size);
        }
    }

    #[test]
    fn an_index_table_grows_past_a_huge_page_with_either_allocator() {
        // 300,000 entries of 8 bytes: several doublings, the last ones past
        // 2 MiB, each reallocating (allocate, move, deallocate).
        fn fill<A: Allocator + Clone>(allocator: A) {
            let mut table = hashbrown::HashTable::new_in(allocator);
            let hash = |value: &u64| value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for value in 0..300_000u64 {
                table.insert_unique(hash(&value), value, hash);
            }
            for value in (0..300_000u64).step_by(997) {
                assert_eq!(table.find(hash(&value), |v| *v == value), Some(&value));
            }
        }
        fill(IndexMemory);
        fill(GlobalOnly);
    }
}
