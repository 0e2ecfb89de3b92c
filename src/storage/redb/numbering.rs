//! Key numbers: the redb backend files each record under a number it hands
//! out in order (so new records are appended) and writes that number into
//! the key's id ([`crate::key::id`]), so that ids sort by creation and
//! `by_id` finds a record without an index.

use redb::ReadableTable;

use crate::error::Error;
use crate::key::id::stamp_number;
use crate::record::KeyRecord;

/// Hands out key numbers in a write transaction: one more than the highest
/// stored.
pub(super) struct Numbers {
    next: u64,
}

impl Numbers {
    pub(super) fn new(records: &impl ReadableTable<u32, &'static [u8]>) -> Result<Numbers, Error> {
        let next = match records.last()? {
            Some((last, _)) => u64::from(last.value()) + 1,
            None => 1,
        };
        Ok(Numbers { next })
    }

    /// The number [`Numbers::assign`] gives next.
    pub(super) fn peek(&self) -> Result<u32, Error> {
        u32::try_from(self.next)
            .map_err(|_| Error::Storage("the store holds as many keys as it can".into()))
    }

    /// Numbers `record`, writing the number into its id.
    pub(super) fn assign(&mut self, record: &mut KeyRecord) -> Result<(), Error> {
        let number = u32::try_from(self.next)
            .map_err(|_| Error::Storage("the store holds as many keys as it can".into()))?;
        record.id = stamp_number(&record.id, number)?;
        self.next += 1;
        Ok(())
    }
}
