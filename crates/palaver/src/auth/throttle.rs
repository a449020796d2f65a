//! Login throttling, per username and per client IP.
//!
//! Every sign-in and registration attempt takes a token from its client IP's
//! bucket ([`PER_IP`]); every sign-in also takes one from the username's
//! ([`PER_USERNAME`]), so guessing one account's password is slow from any
//! number of addresses, and one address cannot sweep many accounts.
//!
//! Both maps are keyed by what clients choose, so both are bounded: idle keys
//! are dropped by [`LoginThrottle::forget_idle`] (every minute), and a map
//! that still holds [`MAX_KEYS`] keys refuses attempts for new keys (429)
//! rather than grow.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::identity::Username;

/// Attempts per username: a burst of 10, then one every 30 seconds.
pub const PER_USERNAME: (u32, Duration) = (10, Duration::from_secs(30));
/// Attempts per client IP: a burst of 50, then one per second.
pub const PER_IP: (u32, Duration) = (50, Duration::from_secs(1));
/// Most keys each map holds.
pub const MAX_KEYS: usize = 100_000;

pub struct LoginThrottle {
    by_username: DefaultKeyedRateLimiter<Username>,
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    max_keys: usize,
}

fn limiter<K: Hash + Eq + Clone>((burst, every): (u32, Duration)) -> DefaultKeyedRateLimiter<K> {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::keyed(quota)
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::with_max_keys(MAX_KEYS)
    }
}

impl LoginThrottle {
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            by_username: limiter(PER_USERNAME),
            by_ip: limiter(PER_IP),
            max_keys,
        }
    }

    /// Takes an attempt for `ip` (and `username`, when given); `Err` holds
    /// the seconds to wait.
    pub fn attempt(&self, ip: IpAddr, username: Option<&Username>) -> Result<(), u64> {
        check(&self.by_ip, &ip, self.max_keys)?;
        if let Some(username) = username {
            check(&self.by_username, username, self.max_keys)?;
        }
        Ok(())
    }

    /// Drops keys that are back at a full burst.
    pub fn forget_idle(&self) {
        self.by_username.retain_recent();
        self.by_username.shrink_to_fit();
        self.by_ip.retain_recent();
        self.by_ip.shrink_to_fit();
    }

    pub fn keys(&self) -> usize {
        self.by_username.len() + self.by_ip.len()
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

    #[test]
    fn a_username_is_refused_after_its_burst_from_any_address() {
        let throttle = LoginThrottle::default();
        let ada = Username::parse("ada").unwrap();
        for n in 0..PER_USERNAME.0 {
            assert!(throttle.attempt(ip(n as u8), Some(&ada)).is_ok());
        }
        let wait = throttle.attempt(ip(200), Some(&ada)).unwrap_err();
        assert!(wait >= 1);
        // Another account is unaffected.
        let bob = Username::parse("bob").unwrap();
        assert!(throttle.attempt(ip(201), Some(&bob)).is_ok());
    }

    #[test]
    fn an_address_is_refused_after_its_burst_across_usernames() {
        let throttle = LoginThrottle::default();
        for n in 0..PER_IP.0 {
            let name = Username::parse(&format!("user{n}")).unwrap();
            assert!(throttle.attempt(ip(1), Some(&name)).is_ok());
        }
        assert!(throttle.attempt(ip(1), None).is_err());
        assert!(throttle.attempt(ip(2), None).is_ok());
    }

    #[test]
    fn the_maps_never_hold_more_than_max_keys() {
        let throttle = LoginThrottle::with_max_keys(50);
        let mut refused = 0;
        for n in 0..500u32 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            if throttle.attempt(addr, None).is_err() {
                refused += 1;
            }
        }
        assert!(throttle.keys() <= 50, "{} keys", throttle.keys());
        assert_eq!(refused, 450);
    }
}
