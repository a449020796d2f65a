//! Password hashing with argon2id.
//!
//! Parameters: argon2id, 19 MiB of memory, 2 passes, 1 lane (the OWASP
//! Password Storage Cheat Sheet's first recommendation), a 16-byte random
//! salt, stored as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`), so
//! the parameters can be raised later and old hashes still verify.
//!
//! Hashing is CPU and memory bound: it runs on the blocking pool, at most
//! [`CONCURRENT_HASHES`] at a time, so it cannot starve the async workers,
//! and a burst of logins costs at most `CONCURRENT_HASHES × 19 MiB`: each
//! running hash holds one [`Memory`], taken from a pool that never holds
//! more than one per slot. A hash that ends hands its memory to the next
//! hash waiting for a slot; when none waits, the memory is freed, and freed
//! memory goes back to the operating system at once (see [`MAPPED_BLOCKS`]),
//! so the resident set after a burst is what it was before it
//! (`tests/api/signin.rs` measures both on a child process; BENCHMARKS.md,
//! "Sign-in burst (issue 21)", has the figures).
//!
//! Unknown users are checked against a dummy hash of the same parameters,
//! so the answer takes as long as for a wrong password.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// Blocks of address space reserved for a hash's memory, at least: 32 MiB.
///
/// glibc serves an allocation this large with a mapping of its own and
/// unmaps it when it is freed, whichever thread frees it: its dynamic mmap
/// threshold, raised by every large free, stops at 32 MiB
/// (`DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit). A 19 MiB allocation instead
/// lands, after the first, in the arena of the blocking thread that made
/// it, and stays there: 19 MiB kept per blocking thread that ever hashed
/// (measured: 204 MiB after 16 sign-ins). Only the 19 MiB the hash uses are
/// ever touched; the rest of the reservation is address space, not memory.
pub const MAPPED_BLOCKS: usize = (32 << 20) / Block::SIZE;

fn params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, LANES, None).unwrap_or_default()
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// The working memory of one hash.
#[derive(Default)]
pub struct Memory(Vec<Block>);

impl Memory {
    /// `count` blocks, allocated (see [`MAPPED_BLOCKS`]) unless this memory
    /// already has them.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            self.0 = Vec::new();
            let mut blocks = Vec::with_capacity(count.max(MAPPED_BLOCKS));
            blocks.resize(count, Block::default());
            self.0 = blocks;
        }
        &mut self.0[..count]
    }

    fn bytes(&self) -> usize {
        self.0.len() * Block::SIZE
    }
}

/// Slots for hashes and the memory between them.
struct Pool {
    slots: Arc<Semaphore>,
    /// Memory handed from a hash that ended to one waiting for a slot; at
    /// most [`CONCURRENT_HASHES`] (memory exists only in a slot's hands or
    /// here, and is allocated only when this is empty).
    idle: Mutex<Vec<Memory>>,
    /// Hashes waiting for a slot.
    waiting: AtomicUsize,
}

impl Pool {
    fn take(&self) -> Memory {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// Keeps `memory` for a hash waiting for a slot, or frees it (and any
    /// left by a waiter that gave up) when none waits.
    fn give_back(&self, memory: Memory) {
        let freed = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if self.waiting.load(Ordering::SeqCst) > 0 && idle.len() < CONCURRENT_HASHES {
                idle.push(memory);
                Vec::new()
            } else {
                let mut freed = std::mem::take(&mut *idle);
                freed.push(memory);
                freed
            }
        };
        drop(freed);
    }

    fn idle_bytes(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.iter().map(Memory::bytes).sum()
    }
}

/// Counts a hash as waiting for as long as it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Hashes and verifies passwords off the async workers.
#[derive(Clone)]
pub struct Passwords {
    pool: Arc<Pool>,
}

impl Default for Passwords {
    fn default() -> Self {
        Self {
            pool: Arc::new(Pool {
                slots: Arc::new(Semaphore::new(CONCURRENT_HASHES)),
                idle: Mutex::new(Vec::new()),
                waiting: AtomicUsize::new(0),
            }),
        }
    }
}

impl Passwords {
    /// A PHC string for `password`.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.clone();
        self.blocking(move |memory| hash_now(password.expose(), memory))
            .await?
    }

    /// Whether `password` matches `stored`; with `None` (an unknown user, or
    /// a user without a password) the dummy hash is verified and the answer
    /// is false, in the same time.
    pub async fn verify(&self, password: &str, stored: Option<String>) -> Result<bool, HashError> {
        let password = password.to_owned();
        self.blocking(move |memory| match &stored {
            Some(phc) => verify_now(password.as_bytes(), phc, memory),
            None => {
                let dummy = dummy_hash(memory);
                verify_now(password.as_bytes(), dummy, memory);
                false
            }
        })
        .await
    }

    /// Bytes of hash memory kept between hashes (0 when no hash waits).
    pub fn idle_memory_bytes(&self) -> usize {
        self.pool.idle_bytes()
    }

    /// Runs `work` on the blocking pool once a slot is free, with working
    /// memory from the pool; the slot is held until `work` ends, even when
    /// the caller stops waiting, so at most [`CONCURRENT_HASHES`] run.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let slot = {
            let _waiting = Waiting::new(&self.pool.waiting);
            self.pool
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| HashError(e.to_string()))?
        };
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut memory = pool.take();
            let result = work(&mut memory);
            pool.give_back(memory);
            drop(slot);
            result
        })
        .await
        .map_err(|e| HashError(e.to_string()))
    }
}

fn hash_now(password: &str, memory: &mut Memory) -> Result<String, HashError> {
    hash_with_salt(password, &SaltString::generate(&mut OsRng), memory)
}

fn hash_with_salt(
    password: &str,
    salt: &SaltString,
    memory: &mut Memory,
) -> Result<String, HashError> {
    let error = |e: &dyn std::fmt::Display| HashError(e.to_string());
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| error(&e))?;
    let params = params();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2()
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            memory.blocks(params.block_count()),
        )
        .map_err(|e| error(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| error(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| error(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` hashes to the PHC string `phc` (with the algorithm,
/// version and parameters it names), compared in constant time.
fn verify_now(password: &[u8], phc: &str, memory: &mut Memory) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = memory.blocks(params.block_count());
    let hashed = Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, blocks);
    // `Output`'s equality is constant time.
    hashed.is_ok() && Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// A hash of a random password with the current parameters, made once.
fn dummy_hash(memory: &mut Memory) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = uuid::Uuid::new_v4().to_string();
        hash_now(&random, memory).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordHasher;

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
    async fn hashes_made_by_the_argon2_crate_itself_verify_and_match_its_output() {
        let passwords = Passwords::default();
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(passwords
            .verify("correct horse battery", Some(theirs.clone()))
            .await
            .unwrap());
        assert!(!passwords
            .verify("correct horse batterx", Some(theirs.clone()))
            .await
            .unwrap());
        // Other parameters, as a hash stored before they were raised.
        let older = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 3, 1, None).unwrap(),
        )
        .hash_password(b"correct horse battery", &salt)
        .unwrap()
        .to_string();
        assert!(passwords
            .verify("correct horse battery", Some(older))
            .await
            .unwrap());
        // Ours, with the same salt, is the same string as theirs.
        let mut memory = Memory::default();
        let ours = hash_with_salt("correct horse battery", &salt, &mut memory).unwrap();
        assert_eq!(ours, theirs);
    }

    #[tokio::test]
    async fn unknown_users_and_garbage_hashes_never_verify() {
        let passwords = Passwords::default();
        assert!(!passwords.verify("anything at all", None).await.unwrap());
        assert!(!passwords
            .verify("anything at all", Some("not a phc string".into()))
            .await
            .unwrap());
        assert!(dummy_hash(&mut Memory::default()).starts_with("$argon2id$"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_is_kept_only_while_hashes_wait_and_never_beyond_the_slots() {
        let passwords = Passwords::default();
        let password = Password::parse("correct horse battery").unwrap();
        let burst: Vec<_> = (0..3 * CONCURRENT_HASHES)
            .map(|_| {
                let (passwords, password) = (passwords.clone(), password.clone());
                tokio::spawn(async move { passwords.hash(&password).await })
            })
            .collect();
        let mut most_idle = 0;
        for hash in burst {
            most_idle = most_idle.max(passwords.idle_memory_bytes());
            hash.await.unwrap().unwrap();
        }
        assert!(
            most_idle <= CONCURRENT_HASHES * MEMORY_KIB as usize * 1024,
            "{most_idle} bytes kept"
        );
        assert_eq!(
            passwords.idle_memory_bytes(),
            0,
            "all freed after the burst"
        );
    }
}
