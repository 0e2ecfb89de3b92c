//! When the digest index's rows move from one table to the next: the policy
//! alone ([`Levels::moves`]), a pure function of the tables' row counts, so
//! that it is tested without a file. `digests.rs` makes the moves.

/// One of the digest index's tables, oldest rows first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    /// `digests`: the old keys, most of a store.
    Digests,
    /// `digests_recent`: recent keys, used by large stores only.
    Recent,
    /// `digests_fresh`: the newest keys, where every insert goes.
    Fresh,
}

/// One move: every row of the first table into the second.
pub(super) type Move = (Level, Level);

/// When the digest index's rows move from one table to the next.
#[derive(Debug, Clone, Copy)]
pub(super) struct Levels {
    /// Most rows `digests_fresh` holds: the commit that passes it moves them
    /// all on. Inserting into a table of this size rewrites at most 66
    /// leaves however large the store.
    pub(super) fresh_max: u64,
    /// Most rows `digests_recent` holds: the commit that passes it moves
    /// them all into `digests`. While `digests` holds no more than this,
    /// fresh rows move straight into it and `digests_recent` stays empty.
    pub(super) recent_max: u64,
}

impl Levels {
    /// Each table 16 times the one before: a fresh move rewrites at most
    /// `digests_recent` (262,144 rows, about 3,000 leaves), and `digests`,
    /// the size of the store, is rewritten once per 262,144 new keys rather
    /// than once per 16,384.
    pub(super) const DEFAULT: Levels = Levels {
        fresh_max: 16_384,
        recent_max: 262_144,
    };

    /// The moves a commit makes, in order, once its rows are in, given the
    /// rows of `digests`, `digests_recent` and `digests_fresh`. Nothing
    /// moves until `digests_fresh` passes its limit, as in a log-structured
    /// tree, so that a large table is rewritten once per many keys rather
    /// than a random leaf per key. While `digests` is small, fresh rows go
    /// straight into it; past that they go to `digests_recent`, which moves
    /// into `digests` when it passes its own limit.
    pub(super) fn moves(self, [digests, recent, fresh]: [u64; 3]) -> &'static [Move] {
        use Level::*;
        if fresh <= self.fresh_max {
            &[]
        } else if recent == 0 && digests <= self.recent_max {
            &[(Fresh, Digests)]
        } else if recent + fresh > self.recent_max {
            &[(Fresh, Recent), (Recent, Digests)]
        } else {
            &[(Fresh, Recent)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Level::*;
    use super::*;

    const SMALL: Levels = Levels {
        fresh_max: 16,
        recent_max: 64,
    };

    #[test]
    fn nothing_moves_until_fresh_passes_its_limit() {
        assert!(SMALL.moves([0, 0, 0]).is_empty());
        assert!(SMALL.moves([1000, 50, 16]).is_empty());
    }

    #[test]
    fn a_small_store_moves_fresh_rows_straight_into_digests() {
        assert_eq!(SMALL.moves([0, 0, 17]), [(Fresh, Digests)]);
        assert_eq!(SMALL.moves([64, 0, 17]), [(Fresh, Digests)]);
    }

    #[test]
    fn a_large_store_moves_fresh_rows_through_recent() {
        assert_eq!(SMALL.moves([65, 0, 17]), [(Fresh, Recent)]);
        assert_eq!(SMALL.moves([65, 47, 17]), [(Fresh, Recent)]);
        // Once recent would pass its limit, it moves on in the same commit.
        assert_eq!(
            SMALL.moves([65, 48, 17]),
            [(Fresh, Recent), (Recent, Digests)]
        );
        // A recent table in use stays in use, whatever the size of digests.
        assert_eq!(SMALL.moves([10, 5, 17]), [(Fresh, Recent)]);
    }
}
