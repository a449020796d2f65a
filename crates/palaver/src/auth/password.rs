//! Password hashing with argon2id.
//!
//! Parameters: argon2id, 19 MiB of memory, 2 passes, 1 lane (the OWASP
//! Password Storage Cheat Sheet's first recommendation), a 16-byte random
//! salt, stored as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`), so
//! the parameters can be raised later and old hashes still verify.
//!
//! Hashing is CPU and memory bound: it runs on the blocking pool, at most
//! [`CONCURRENT_HASHES`] at a time, so a burst of logins costs at most
//! `CONCURRENT_HASHES × 19 MiB` and cannot starve the async workers.
//! Unknown users are checked against a dummy hash of the same parameters,
//! so the answer takes as long as for a wrong password.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::identity::Password;

/// Memory cost in KiB.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Passes over the memory.
pub const ITERATIONS: u32 = 2;
/// Degree of parallelism.
pub const LANES: u32 = 1;
/// Hashes computed at the same time, process-wide.
pub const CONCURRENT_HASHES: usize = 4;

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes and verifies passwords off the async workers.
#[derive(Clone)]
pub struct Passwords {
    slots: Arc<Semaphore>,
}

impl Default for Passwords {
    fn default() -> Self {
        Self {
            slots: Arc::new(Semaphore::new(CONCURRENT_HASHES)),
        }
    }
}

impl Passwords {
    /// A PHC string for `password`.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.clone();
        self.blocking(move || hash_now(password.expose())).await?
    }

    /// Whether `password` matches `stored`; with `None` (an unknown user, or
    /// a user without a password) the dummy hash is verified and the answer
    /// is false, in the same time.
    pub async fn verify(&self, password: &str, stored: Option<String>) -> Result<bool, HashError> {
        let password = password.to_owned();
        self.blocking(move || {
            let (phc, real) = match &stored {
                Some(phc) => (phc.as_str(), true),
                None => (dummy_hash(), false),
            };
            let Ok(parsed) = PasswordHash::new(phc) else {
                return false;
            };
            let matches = argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            matches && real
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError(e.to_string()))
    }
}

fn hash_now(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// A hash of a random password with the current parameters, made once.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = uuid::Uuid::new_v4().to_string();
        hash_now(&random).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_the_documented_parameters_and_verify() {
        let passwords = Passwords::default();
        let password = Password::parse("correct horse battery").unwrap();
        let hash = passwords.hash(&password).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(passwords
            .verify("correct horse battery", Some(hash.clone()))
            .await
            .unwrap());
        assert!(!passwords
            .verify("wrong horse battery", Some(hash.clone()))
            .await
            .unwrap());
        // Salted: the same password hashes differently each time.
        assert_ne!(passwords.hash(&password).await.unwrap(), hash);
    }

    #[tokio::test]
    async fn unknown_users_and_garbage_hashes_never_verify() {
        let passwords = Passwords::default();
        assert!(!passwords.verify("anything at all", None).await.unwrap());
        assert!(!passwords
            .verify("anything at all", Some("not a phc string".into()))
            .await
            .unwrap());
        assert!(dummy_hash().starts_with("$argon2id$"));
    }
}
