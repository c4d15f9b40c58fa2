//! bcrypt hashing off the async executor, bounded to the machine's cores so a login storm
//! queues instead of starving every other request of CPU.

use std::sync::Arc;

use tokio::sync::{OnceCell, Semaphore};

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Passwords {
    cost: u32,
    permits: Arc<Semaphore>,
    /// A hash of nothing in particular, verified when the email is unknown so that the
    /// answer takes as long as for a wrong password.
    decoy: Arc<OnceCell<String>>,
}

impl Passwords {
    pub fn new(cost: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords {
            cost,
            permits: Arc::new(Semaphore::new(cores)),
            decoy: Arc::new(OnceCell::new()),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        let cost = self.cost;
        self.run(move || bcrypt::hash(password, cost)).await
    }

    pub async fn verify(&self, password: String, hash: String) -> Result<bool> {
        // A malformed stored hash is a failed check, not a crash.
        self.run(move || {
            Ok::<_, bcrypt::BcryptError>(bcrypt::verify(password, &hash).unwrap_or(false))
        })
        .await
    }

    /// Spends the same time as `verify` and always fails.
    pub async fn verify_decoy(&self, password: String) -> Result<bool> {
        let decoy = self.decoy().await?;
        self.verify(password, decoy).await.map(|_| false)
    }

    /// Computes the decoy hash ahead of the first unknown-email login.
    pub async fn warm_up(&self) -> Result<()> {
        self.decoy().await.map(drop)
    }

    async fn decoy(&self) -> Result<String> {
        self.decoy
            .get_or_try_init(|| self.hash("decoy password for timing".into()))
            .await
            .cloned()
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
    ) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let passwords = Passwords::new(4);
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(passwords
            .verify("correct horse".into(), hash.clone())
            .await
            .unwrap());
        assert!(!passwords.verify("wrong horse".into(), hash).await.unwrap());
        assert!(!passwords
            .verify("x".into(), "not a hash".into())
            .await
            .unwrap());
        assert!(!passwords
            .verify_decoy("decoy password for timing".into())
            .await
            .unwrap());
    }
}
