//! Finding an object of a pack by its address: what a compact lookup table needs, which names
//! the pack, not the item.

use super::Pack;
use crate::hash::ObjectHash;

impl Pack {
    /// The addresses of every object stored here, by item (`None`: the item stores none, or
    /// the pack's local references are damaged), computed once for the pack.
    pub(crate) fn object_hashes(&self) -> Option<&[Option<ObjectHash>]> {
        // The expansion trusts the pack's references: they are checked first.
        self.locals()?;
        Some(&self.expanded().hashes)
    }

    /// The slot of the object whose address is `hash`, if the pack stores it (a compact
    /// lookup table names the pack, not the item). The first ask of a pack hashes its objects
    /// on every core until one is `hash` (half the pack on average: a get of one object, 2 ms
    /// at most on two cores); a pack asked again (gets in pack order) has every address
    /// computed once, and then searched.
    pub(crate) fn slot_of(&self, hash: &ObjectHash) -> Option<u32> {
        use std::sync::atomic::Ordering;
        if self.expanded.get().is_some() || self.searched.swap(true, Ordering::Relaxed) {
            let i = self
                .object_hashes()?
                .iter()
                .position(|h| h.as_ref() == Some(hash))?;
            return u32::try_from(i + 1).ok();
        }
        use rayon::prelude::*;
        (1..self.len() as u32 + 1)
            .into_par_iter()
            .with_min_len(256)
            .find_first(|s| self.object_hash(*s).as_ref() == Some(hash))
    }
}
