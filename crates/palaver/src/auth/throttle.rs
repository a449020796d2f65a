//! Sign-in and registration limits, per username and per client address.
//!
//! They tell abuse from people:
//! - **Sign-in, per username** ([`PER_USERNAME`]): every attempt takes a
//!   token, so guessing one account's password is slow from any number of
//!   addresses.
//! - **Sign-in, per address** (`--login-failures-per-ip`): only failures
//!   count (credential stuffing). An address may have that many failed or
//!   unfinished sign-ins in a window of a minute ([`FAILURE_WINDOW`]); past
//!   it, its sign-ins are refused until the window ends. A correct sign-in
//!   costs nothing once it has finished, so a hundred people behind one
//!   office address (a NAT, or a proxy not listed in `--trusted-proxies`)
//!   all get in.
//! - **Registration, per address** (`--registrations-per-ip-burst`, then
//!   `--registrations-per-ip-per-hour`): a small burst, then a few an hour.
//!
//! An address is an IPv4 address or an IPv6 /64 (as for stream limits).
//! Refusals are 429 with the seconds to wait.
//!
//! Every map is keyed by what clients choose, so each is bounded: it holds
//! at most [`MAX_KEYS`] keys; idle keys are dropped by
//! [`LoginThrottle::forget_idle`] (every minute), and a map that still holds
//! [`MAX_KEYS`] keys refuses attempts for new keys (429) rather than grow.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::identity::Username;
use crate::stream::limits::ClientKey;

/// Attempts per username: a burst of 10, then one every 30 seconds.
pub const PER_USERNAME: (u32, Duration) = (10, Duration::from_secs(30));
/// The window failed sign-ins per address are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Most keys each map holds.
pub const MAX_KEYS: usize = 100_000;

/// The per-address limits (the flags of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed (or unfinished) sign-ins per address per [`FAILURE_WINDOW`];
    /// 0 turns the per-address sign-in limit off.
    pub login_failures_per_ip: u32,
    /// Registrations per address in a burst.
    pub registrations_per_ip_burst: u32,
    /// Registrations per address per hour after the burst.
    pub registrations_per_ip_per_hour: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login_failures_per_ip: 20,
            registrations_per_ip_burst: 10,
            registrations_per_ip_per_hour: 5,
        }
    }
}

/// One address's failed sign-ins in its current window.
struct Window {
    opened: Instant,
    failures: u32,
    /// Sign-ins from the address still being checked.
    unfinished: u32,
}

impl Window {
    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.opened) >= FAILURE_WINDOW {
            self.opened = now;
            self.failures = 0;
        }
    }

    fn idle(&self, now: Instant) -> bool {
        self.unfinished == 0
            && (self.failures == 0 || now.duration_since(self.opened) >= FAILURE_WINDOW)
    }
}

pub struct LoginThrottle {
    by_username: DefaultKeyedRateLimiter<Username>,
    failures: Mutex<HashMap<ClientKey, Window>>,
    registrations: DefaultKeyedRateLimiter<ClientKey>,
    limits: Limits,
    max_keys: usize,
}

fn limiter<K: Hash + Eq + Clone>(burst: u32, every: Duration) -> DefaultKeyedRateLimiter<K> {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::keyed(quota)
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

/// A sign-in being checked: it counts against its address until it is
/// dropped, and stays counted as a failure when [`SignIn::failed`] says so.
pub struct SignIn<'a> {
    throttle: &'a LoginThrottle,
    /// `None` when the per-address limit is off.
    key: Option<ClientKey>,
    failed: bool,
}

impl SignIn<'_> {
    /// The credentials were wrong.
    pub fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for SignIn<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let now = Instant::now();
        let mut windows = self.throttle.windows();
        if let Some(window) = windows.get_mut(&key) {
            window.unfinished = window.unfinished.saturating_sub(1);
            if self.failed {
                window.roll(now);
                window.failures = window.failures.saturating_add(1);
            }
            if window.idle(now) {
                windows.remove(&key);
            }
        }
    }
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        Self::with_max_keys(limits, MAX_KEYS)
    }

    pub fn with_max_keys(limits: Limits, max_keys: usize) -> Self {
        let per_hour = limits.registrations_per_ip_per_hour.max(1);
        Self {
            by_username: limiter(PER_USERNAME.0, PER_USERNAME.1),
            failures: Mutex::new(HashMap::new()),
            registrations: limiter(
                limits.registrations_per_ip_burst,
                Duration::from_secs(3600) / per_hour,
            ),
            limits,
            max_keys,
        }
    }

    fn windows(&self) -> MutexGuard<'_, HashMap<ClientKey, Window>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a sign-in from `ip` for `username` (when it parses); `Err`
    /// holds the seconds to wait.
    pub fn sign_in(&self, ip: IpAddr, username: Option<&Username>) -> Result<SignIn<'_>, u64> {
        let key = match self.limits.login_failures_per_ip {
            0 => None,
            limit => Some(self.admit(ClientKey::from(ip), limit)?),
        };
        // From here on, dropping `attempt` releases the address's count.
        let attempt = SignIn {
            throttle: self,
            key,
            failed: false,
        };
        if let Some(username) = username {
            check(&self.by_username, username, self.max_keys)?;
        }
        Ok(attempt)
    }

    /// Counts one more unfinished sign-in for `key`, unless its failures
    /// and unfinished sign-ins already reach `limit`.
    fn admit(&self, key: ClientKey, limit: u32) -> Result<ClientKey, u64> {
        let now = Instant::now();
        let mut windows = self.windows();
        if !windows.contains_key(&key) && windows.len() >= self.max_keys {
            windows.retain(|_, window| !window.idle(now));
            if windows.len() >= self.max_keys {
                return Err(FAILURE_WINDOW.as_secs());
            }
        }
        let window = windows.entry(key.clone()).or_insert(Window {
            opened: now,
            failures: 0,
            unfinished: 0,
        });
        window.roll(now);
        if window.failures >= limit {
            let left = FAILURE_WINDOW.saturating_sub(now.duration_since(window.opened));
            return Err(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        if window.failures + window.unfinished >= limit {
            return Err(1);
        }
        window.unfinished += 1;
        Ok(key)
    }

    /// Takes a registration from `ip`'s budget; `Err` holds the seconds to
    /// wait.
    pub fn register(&self, ip: IpAddr) -> Result<(), u64> {
        check(&self.registrations, &ClientKey::from(ip), self.max_keys)
    }

    /// Drops keys that are back at a full budget.
    pub fn forget_idle(&self) {
        self.by_username.retain_recent();
        self.by_username.shrink_to_fit();
        self.registrations.retain_recent();
        self.registrations.shrink_to_fit();
        let now = Instant::now();
        let mut windows = self.windows();
        windows.retain(|_, window| !window.idle(now));
        windows.shrink_to_fit();
    }

    /// Keys held, in all maps.
    pub fn keys(&self) -> usize {
        self.by_username.len() + self.registrations.len() + self.windows().len()
    }
}

fn check<K: Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    max_keys: usize,
) -> Result<(), u64> {
    if limiter.len() >= max_keys {
        limiter.retain_recent();
        if limiter.len() >= max_keys {
            return Err(60);
        }
    }
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        wait.as_secs_f64().ceil().max(1.0) as u64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    fn name(n: u32) -> Username {
        Username::parse(&format!("user{n}")).unwrap()
    }

    #[test]
    fn a_username_is_refused_after_its_burst_from_any_address() {
        let throttle = LoginThrottle::default();
        let ada = Username::parse("ada").unwrap();
        for n in 0..PER_USERNAME.0 {
            assert!(throttle.sign_in(ip(n as u8), Some(&ada)).is_ok());
        }
        let wait = throttle.sign_in(ip(200), Some(&ada)).err().unwrap();
        assert!(wait >= 1);
        // Another account is unaffected.
        let bob = Username::parse("bob").unwrap();
        assert!(throttle.sign_in(ip(201), Some(&bob)).is_ok());
    }

    #[test]
    fn correct_sign_ins_from_one_address_are_never_refused() {
        let throttle = LoginThrottle::default();
        for n in 0..1000 {
            let attempt = throttle.sign_in(ip(1), Some(&name(n)));
            assert!(attempt.is_ok(), "sign-in {n} refused");
        }
        assert_eq!(throttle.windows().len(), 0, "nothing kept for successes");
    }

    #[test]
    fn an_address_is_refused_after_its_failures_until_the_window_ends() {
        let throttle = LoginThrottle::default();
        let limit = Limits::default().login_failures_per_ip;
        for n in 0..limit {
            throttle.sign_in(ip(1), Some(&name(n))).unwrap().failed();
        }
        let wait = throttle.sign_in(ip(1), Some(&name(999))).err().unwrap();
        assert!((50..=60).contains(&wait), "{wait}");
        assert!(throttle.sign_in(ip(2), None).is_ok(), "another address");
        // The window ends.
        throttle
            .windows()
            .get_mut(&ClientKey::from(ip(1)))
            .unwrap()
            .opened -= FAILURE_WINDOW;
        assert!(throttle.sign_in(ip(1), None).is_ok());
    }

    #[test]
    fn unfinished_sign_ins_count_until_they_end() {
        let throttle = LoginThrottle::new(Limits {
            login_failures_per_ip: 3,
            ..Limits::default()
        });
        let running: Vec<_> = (0..3)
            .map(|n| throttle.sign_in(ip(1), Some(&name(n))).unwrap())
            .collect();
        assert_eq!(throttle.sign_in(ip(1), None).err(), Some(1));
        drop(running);
        assert!(throttle.sign_in(ip(1), None).is_ok());
        // A sign-in refused per username releases its address's count.
        let off = LoginThrottle::new(Limits {
            login_failures_per_ip: 0,
            ..Limits::default()
        });
        for _ in 0..100 {
            off.sign_in(ip(1), None).unwrap().failed();
        }
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let throttle = LoginThrottle::new(Limits {
            login_failures_per_ip: 1,
            ..Limits::default()
        });
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        throttle
            .sign_in(v6("2001:db8:1:2::1"), None)
            .unwrap()
            .failed();
        assert!(throttle.sign_in(v6("2001:db8:1:2::99"), None).is_err());
        assert!(throttle.sign_in(v6("2001:db8:1:3::1"), None).is_ok());
    }

    #[test]
    fn registrations_have_a_burst_of_their_own_per_address() {
        let throttle = LoginThrottle::default();
        let burst = Limits::default().registrations_per_ip_burst;
        for _ in 0..burst {
            assert!(throttle.register(ip(1)).is_ok());
        }
        let wait = throttle.register(ip(1)).unwrap_err();
        // 5 an hour: one every 12 minutes.
        assert!((600..=720).contains(&wait), "{wait}");
        assert!(throttle.register(ip(2)).is_ok());
        assert!(throttle.sign_in(ip(1), None).is_ok(), "sign-in unaffected");
    }

    #[test]
    fn the_maps_never_hold_more_than_max_keys() {
        let throttle = LoginThrottle::with_max_keys(Limits::default(), 50);
        let addr = |n: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
        let mut refused = 0;
        for n in 0..500u32 {
            if throttle.register(addr(n)).is_err() {
                refused += 1;
            }
            // Failures are kept for the window; successes are not.
            if let Ok(attempt) = throttle.sign_in(addr(n), Some(&name(n))) {
                attempt.failed();
            }
        }
        assert_eq!(refused, 450);
        assert!(throttle.registrations.len() <= 50);
        assert!(throttle.windows().len() <= 50);
        assert!(throttle.by_username.len() <= 50);
        assert!(throttle.keys() <= 150, "{} keys", throttle.keys());
    }
}
