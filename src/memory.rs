//! Memory for the exclusive index's tables.
//!
//! A verify in a large store is dominated by two memory accesses: the
//! table's control bytes and the key's entry, both at random places in tens
//! of megabytes. With 4 KiB pages each of them also misses the TLB, and in a
//! virtual machine a page walk is itself a chain of memory accesses. Tables
//! of 2 MiB or more are therefore mapped on 2 MiB boundaries and the kernel
//! is asked to back their whole 2 MiB pages with transparent huge pages
//! (`MADV_HUGEPAGE`), so that a million keys' entries span about 36 TLB
//! entries instead of 18,000. This is advice: where huge pages are off or
//! unavailable the mapping works with ordinary pages. Smaller tables come
//! from the global allocator.

use core::alloc::Layout;
use core::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator, Global};

const HUGE_PAGE: usize = 2 << 20;
const PAGE: usize = 4096;

/// The allocator of the index's hash tables.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IndexMemory;

/// The length mapped for `layout` (whole 4 KiB pages), or `None` when the
/// global allocator serves it. The same answer for allocate and deallocate.
fn mapped_len(layout: Layout) -> Option<usize> {
    (layout.size() >= HUGE_PAGE && layout.align() <= HUGE_PAGE)
        .then(|| layout.size().checked_next_multiple_of(PAGE))
        .flatten()
}

// SAFETY: memory returned is either the global allocator's, or an anonymous
// private mapping of at least `layout.size()` bytes aligned to 2 MiB (so to
// `layout.align()`), valid until `deallocate` unmaps exactly that range;
// copies of the allocator are interchangeable (it has no state).
unsafe impl Allocator for IndexMemory {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
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
            // Only the whole huge pages: a table's size is a power of two
            // plus its control bytes, and a huge page for that small tail
            // would be 2 MiB resident for a few KiB used. Advice only: a
            // refusal leaves ordinary pages.
            let huge = len - len % HUGE_PAGE;
            libc::madvise(start.cast(), huge, libc::MADV_HUGEPAGE);
            let start = NonNull::new(start).ok_or(AllocError)?;
            Ok(NonNull::slice_from_raw_parts(start, len))
        }
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_are_aligned_to_huge_pages_and_usable() {
        for size in [HUGE_PAGE, HUGE_PAGE + 64, 3 * HUGE_PAGE - 1] {
            let layout = Layout::from_size_align(size, 64).expect("layout");
            let block = IndexMemory.allocate(layout).expect("allocate");
            let start = block.cast::<u8>();
            assert_eq!(start.as_ptr() as usize % HUGE_PAGE, 0);
            assert!(block.len() >= size);
            // SAFETY: the block is at least `size` bytes, writable.
            unsafe {
                start.as_ptr().write_bytes(0xA5, size);
                assert_eq!(*start.as_ptr().add(size - 1), 0xA5);
                IndexMemory.deallocate(start, layout);
            }
        }
    }

    #[test]
    fn small_blocks_come_from_the_global_allocator() {
        let layout = Layout::from_size_align(4096, 64).expect("layout");
        assert_eq!(mapped_len(layout), None);
        let block = IndexMemory.allocate(layout).expect("allocate");
        // SAFETY: allocated just above with this layout.
        unsafe { IndexMemory.deallocate(block.cast(), layout) };
    }
}
