//! Work that many requests ask for, done together: what is asked while a round is under
//! way waits for the next round, which takes everything asked so far. One task does the
//! rounds, a task of its own, so that a request that goes away takes no one else's work
//! along. List revisions are read together this way ([`super::revisions`]: one query per
//! round) and webhook deliveries written together (`github::store`: one transaction).

use std::{
    future::Future,
    mem,
    sync::{Arc, Mutex},
};

/// Items asked and not yet taken, and whether a task is doing rounds.
struct Asked<T> {
    busy: bool,
    waiting: Vec<T>,
}

/// Work asked together: each item carries what its round needs, and where its answer
/// goes (a `oneshot` sender, say).
pub struct Together<T> {
    asked: Arc<Mutex<Asked<T>>>,
}

impl<T> Default for Together<T> {
    fn default() -> Self {
        Together {
            asked: Arc::new(Mutex::new(Asked {
                busy: false,
                waiting: Vec::new(),
            })),
        }
    }
}

impl<T: Send + 'static> Together<T> {
    /// Asks for `item`, and starts doing rounds with `round` (each given at most `most`
    /// items, in the order asked) unless a task is already doing them.
    pub fn ask<F, Fut>(&self, item: T, most: usize, round: F)
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let start = {
            let mut asked = self.asked.lock().expect("together lock");
            asked.waiting.push(item);
            !mem::replace(&mut asked.busy, true)
        };
        if start {
            let rounds = Rounds {
                asked: self.asked.clone(),
                finished: false,
            };
            tokio::spawn(rounds.run(most.max(1), round));
        }
    }
}

/// Held by the task doing rounds; if the task stops unfinished (a panic, the runtime
/// shutting down), the items waiting are dropped (their requests see their answers'
/// senders go) rather than wait forever, and the next item asked starts a new task.
struct Rounds<T> {
    asked: Arc<Mutex<Asked<T>>>,
    finished: bool,
}

impl<T> Rounds<T> {
    async fn run<F, Fut>(mut self, most: usize, mut round: F)
    where
        F: FnMut(Vec<T>) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            let items: Vec<T> = {
                let mut asked = self.asked.lock().expect("together lock");
                if asked.waiting.is_empty() {
                    asked.busy = false;
                    self.finished = true;
                    return;
                }
                let take = asked.waiting.len().min(most);
                asked.waiting.drain(..take).collect()
            };
            round(items).await;
        }
    }
}

impl<T> Drop for Rounds<T> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Ok(mut asked) = self.asked.lock() {
            asked.busy = false;
            asked.waiting.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn items_asked_during_a_round_are_taken_by_the_next() {
        let together: Together<(u32, oneshot::Sender<usize>)> = Together::default();
        let (release, hold) = tokio::sync::watch::channel(false);
        let mut answers = Vec::new();
        for n in 0..5 {
            let (answer, answered) = oneshot::channel();
            let hold = hold.clone();
            together.ask(
                (n, answer),
                3,
                move |items: Vec<(u32, oneshot::Sender<usize>)>| {
                    let mut hold = hold.clone();
                    async move {
                        // The first round waits until every item was asked.
                        let _ = hold.wait_for(|go| *go).await;
                        let size = items.len();
                        for (_, answer) in items {
                            let _ = answer.send(size);
                        }
                    }
                },
            );
            answers.push(answered);
            if n == 0 {
                // The task starts and takes the first item alone.
                tokio::task::yield_now().await;
            }
        }
        release.send(true).unwrap();
        let mut sizes = Vec::new();
        for answered in answers {
            sizes.push(answered.await.unwrap());
        }
        // The first round took the first item alone; the next took three, then one.
        assert_eq!(sizes, [1, 3, 3, 3, 1]);
    }
}
