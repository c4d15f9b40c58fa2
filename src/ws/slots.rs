//! Caps on open WebSockets, per user and in total. A slot is taken before the upgrade
//! (so a refusal is a plain 429) and given back when the socket ends, however it ends.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

#[derive(Default)]
struct Counts {
    total: usize,
    per_user: HashMap<i64, usize>,
}

pub struct Slots {
    max_per_user: usize,
    max_total: usize,
    counts: Mutex<Counts>,
}

/// Held for as long as a socket is open (or about to be): dropping it frees the slot.
pub struct Slot {
    slots: Arc<Slots>,
    user_id: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    User,
    Server,
}

impl Slots {
    pub fn new(max_per_user: usize, max_total: usize) -> Arc<Self> {
        Arc::new(Slots {
            max_per_user,
            max_total,
            counts: Mutex::default(),
        })
    }

    /// Checks and takes in one step, so concurrent upgrades cannot overshoot.
    pub fn take(self: &Arc<Self>, user_id: i64) -> Result<Slot, Full> {
        let mut counts = self.counts.lock().expect("slots lock");
        if counts.total >= self.max_total {
            return Err(Full::Server);
        }
        let mine = counts.per_user.entry(user_id).or_default();
        if *mine >= self.max_per_user {
            return Err(Full::User);
        }
        *mine += 1;
        counts.total += 1;
        Ok(Slot {
            slots: self.clone(),
            user_id,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts.lock().expect("slots lock");
        counts.total -= 1;
        if let Some(mine) = counts.per_user.get_mut(&self.user_id) {
            *mine -= 1;
            if *mine == 0 {
                counts.per_user.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_user_and_in_total_and_frees_on_drop() {
        let slots = Slots::new(2, 3);
        let a1 = slots.take(1).unwrap();
        let _a2 = slots.take(1).unwrap();
        assert_eq!(slots.take(1).err(), Some(Full::User));
        let _b1 = slots.take(2).unwrap();
        assert_eq!(slots.take(3).err(), Some(Full::Server));
        drop(a1);
        let _a3 = slots.take(1).unwrap();
        assert_eq!(slots.take(2).err(), Some(Full::Server));
    }
}
