//! Admission of new streams: a cap per process, a cap of concurrent streams
//! per client, and a rate of stream opens per client.
//!
//! A client is the signed-in user when there is one (DESIGN §5a: limits are
//! per user when signed in), else its address (IPv6 by its /64, the block
//! one subscriber usually holds, so that rotating through a prefix does not
//! multiply the allowance). Users behind one NAT thus each get their own
//! allowance, and one user's sessions and devices share theirs. Both
//! per-client maps have an owner and a bound:
//! - the concurrent count: an entry exists only while that client has an
//!   open stream; the [`StreamPermit`] of its last stream removes it, so the
//!   map never holds more entries than there are open streams;
//! - the open-rate limiter (governor): entries of clients quiet for long
//!   enough to be back at a full burst are dropped every minute
//!   ([`StreamLimits::forget_idle`]), and the map never holds more than
//!   [`MAX_TRACKED_CLIENTS`] entries: at that bound it is pruned at once, and
//!   a client new to a map that is still full is refused (429) until entries
//!   expire.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::identity::UserId;

/// Most clients whose stream-open rate is tracked at once.
pub const MAX_TRACKED_CLIENTS: usize = 65_536;

/// What a client is limited as: a signed-in user, or (for a caller without
/// one) an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    User(UserId),
    Ip(IpAddr),
}

impl ClientKey {
    /// The key of a caller: its user when signed in, else its address.
    pub fn of(user: Option<&UserId>, ip: IpAddr) -> Self {
        match user {
            Some(id) => ClientKey::User(id.clone()),
            None => ClientKey::from(ip),
        }
    }
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey::Ip(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::Ip(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey::Ip(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

/// Why a stream was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client opens streams faster than its rate; retry after this long.
    OpeningTooFast { retry_after: Duration },
    /// The client has as many open streams as it may.
    TooManyForClient,
    /// The process serves as many streams as it may.
    TooManyStreams,
}

/// The limits of one process.
pub struct StreamLimits {
    slots: Arc<Semaphore>,
    cap: usize,
    per_client: Option<u32>,
    open: Mutex<HashMap<ClientKey, u32>>,
    opens: Option<DefaultKeyedRateLimiter<ClientKey>>,
}

/// Settings of [`StreamLimits::new`].
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    /// Streams this process serves at once.
    pub cap: usize,
    /// Concurrent streams per client; `None`: no per-client cap.
    pub per_client: Option<NonZeroU32>,
    /// Stream opens per client (rate and burst); `None`: no rate.
    pub open_rate: Option<Quota>,
}

impl StreamLimits {
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(settings.cap)),
            cap: settings.cap,
            per_client: settings.per_client.map(NonZeroU32::get),
            open: Mutex::new(HashMap::new()),
            opens: settings.open_rate.map(RateLimiter::keyed),
        }
    }

    /// The most streams this process serves at once.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Admits one more stream from `client` (a user, or an address: see
    /// [`ClientKey::of`]), or says why not. The permit frees its slots when
    /// dropped.
    pub fn admit(self: &Arc<Self>, client: impl Into<ClientKey>) -> Result<StreamPermit, Refusal> {
        let key = client.into();
        if let Some(opens) = &self.opens {
            if opens.len() >= MAX_TRACKED_CLIENTS {
                opens.retain_recent();
            }
            if opens.len() >= MAX_TRACKED_CLIENTS {
                return Err(Refusal::OpeningTooFast {
                    retry_after: Duration::from_secs(60),
                });
            }
            opens
                .check_key(&key)
                .map_err(|not_until| Refusal::OpeningTooFast {
                    retry_after: not_until.wait_time_from(DefaultClock::default().now()),
                })?;
        }
        let global = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::TooManyStreams)?;
        if let Some(most) = self.per_client {
            let mut open = self.lock_open();
            let count = open.entry(key.clone()).or_insert(0);
            if *count >= most {
                return Err(Refusal::TooManyForClient);
            }
            *count += 1;
        }
        Ok(StreamPermit {
            _global: global,
            client: self.per_client.map(|_| (self.clone(), key)),
        })
    }

    /// Clients with an open stream now (the size of the per-client map).
    pub fn clients_with_streams(&self) -> usize {
        self.lock_open().len()
    }

    /// Clients whose open rate is tracked now.
    pub fn clients_tracked(&self) -> usize {
        self.opens.as_ref().map_or(0, |o| o.len())
    }

    /// Drops the rate state of clients back at a full burst.
    pub fn forget_idle(&self) {
        if let Some(opens) = &self.opens {
            opens.retain_recent();
            opens.shrink_to_fit();
        }
    }

    fn release(&self, key: &ClientKey) {
        let mut open = self.lock_open();
        if let Some(count) = open.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(key);
            }
        }
        if open.capacity() > 1024 && open.capacity() > 4 * open.len() {
            let keep = open.len() * 2;
            open.shrink_to(keep);
        }
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, u32>> {
        // Held for a map update, never across an await; the counts stay
        // consistent whatever panicked, so recover from poisoning.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One admitted stream's slots.
pub struct StreamPermit {
    _global: OwnedSemaphorePermit,
    client: Option<(Arc<StreamLimits>, ClientKey)>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        if let Some((limits, key)) = self.client.take() {
            limits.release(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(cap: usize, per_client: u32, open_rate: Option<Quota>) -> Arc<StreamLimits> {
        Arc::new(StreamLimits::new(LimitSettings {
            cap,
            per_client: NonZeroU32::new(per_client),
            open_rate,
        }))
    }

    fn per_second(rate: u32, burst: u32) -> Quota {
        Quota::per_second(NonZeroU32::new(rate).unwrap())
            .allow_burst(NonZeroU32::new(burst).unwrap())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_gets_at_most_its_share_of_concurrent_streams() {
        let limits = limits(100, 2, None);
        let a1 = limits.admit(ip("192.0.2.1")).unwrap();
        let _a2 = limits.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            limits.admit(ip("192.0.2.1")).err(),
            Some(Refusal::TooManyForClient)
        );
        let _b = limits.admit(ip("192.0.2.2")).unwrap();
        drop(a1);
        assert!(
            limits.admit(ip("192.0.2.1")).is_ok(),
            "a closed stream frees its slot"
        );
    }

    #[test]
    fn the_per_client_map_holds_only_clients_with_open_streams() {
        let limits = limits(10_000, 5, None);
        let permits: Vec<_> = (0..5000u32)
            .map(|i| {
                limits
                    .admit(IpAddr::from((0x0a00_0000 + i).to_be_bytes()))
                    .unwrap()
            })
            .collect();
        assert_eq!(limits.clients_with_streams(), 5000);
        drop(permits);
        assert_eq!(limits.clients_with_streams(), 0);
        assert!(limits.lock_open().capacity() <= 1024, "the map shrank back");
    }

    #[test]
    fn the_process_cap_holds_across_clients() {
        let limits = limits(2, 10, None);
        let _a = limits.admit(ip("192.0.2.1")).unwrap();
        let _b = limits.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(
            limits.admit(ip("192.0.2.3")).err(),
            Some(Refusal::TooManyStreams)
        );
        assert_eq!(
            limits.clients_with_streams(),
            2,
            "a refused stream holds nothing"
        );
    }

    #[test]
    fn opening_faster_than_the_rate_is_refused_with_a_wait() {
        let limits = limits(100, 0, Some(per_second(1, 3)));
        for _ in 0..3 {
            drop(limits.admit(ip("192.0.2.1")).unwrap());
        }
        match limits.admit(ip("192.0.2.1")) {
            Err(Refusal::OpeningTooFast { retry_after }) => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
            }
            other => panic!("expected a rate refusal, got {:?}", other.err()),
        }
        assert!(
            limits.admit(ip("192.0.2.2")).is_ok(),
            "another client is not affected"
        );
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_64_and_mapped_ipv4_as_ipv4() {
        let limits = limits(100, 1, None);
        let _a = limits.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8:1:2:ffff::9")).err(),
            Some(Refusal::TooManyForClient),
            "the same /64"
        );
        assert!(limits.admit(ip("2001:db8:1:3::1")).is_ok(), "another /64");
        let _v4 = limits.admit(ip("192.0.2.7")).unwrap();
        assert_eq!(
            limits.admit(ip("::ffff:192.0.2.7")).err(),
            Some(Refusal::TooManyForClient)
        );
    }

    fn user(id: &str) -> UserId {
        UserId::from_stored(id.to_owned())
    }

    #[test]
    fn a_signed_in_caller_is_limited_as_its_user_and_an_anonymous_one_by_address() {
        let ada = user("ada-id");
        assert_eq!(
            ClientKey::of(Some(&ada), ip("192.0.2.1")),
            ClientKey::User(ada.clone())
        );
        assert_eq!(
            ClientKey::of(Some(&ada), ip("192.0.2.1")),
            ClientKey::of(Some(&ada), ip("198.51.100.9")),
            "the address does not matter once signed in"
        );
        assert_eq!(
            ClientKey::of(None, ip("2001:db8:1:2::1")),
            ClientKey::from(ip("2001:db8:1:2::ffff"))
        );
    }

    #[test]
    fn users_behind_one_address_each_get_their_own_cap() {
        let limits = limits(100, 2, None);
        let (ada, bob) = (user("ada-id"), user("bob-id"));
        let nat = ip("192.0.2.1");
        let _a1 = limits.admit(ClientKey::of(Some(&ada), nat)).unwrap();
        let _a2 = limits.admit(ClientKey::of(Some(&ada), nat)).unwrap();
        assert_eq!(
            limits.admit(ClientKey::of(Some(&ada), nat)).err(),
            Some(Refusal::TooManyForClient)
        );
        let _b1 = limits.admit(ClientKey::of(Some(&bob), nat)).unwrap();
        let _b2 = limits.admit(ClientKey::of(Some(&bob), nat)).unwrap();
        let _anonymous = limits
            .admit(ClientKey::of(None, nat))
            .expect("the address's own allowance is untouched by its users");
        assert_eq!(limits.clients_with_streams(), 3);
    }

    #[test]
    fn one_user_from_several_addresses_shares_one_cap_and_one_rate() {
        let capped = limits(100, 2, None);
        let ada = user("ada-id");
        let _a1 = capped
            .admit(ClientKey::of(Some(&ada), ip("192.0.2.1")))
            .unwrap();
        let _a2 = capped
            .admit(ClientKey::of(Some(&ada), ip("198.51.100.1")))
            .unwrap();
        assert_eq!(
            capped
                .admit(ClientKey::of(Some(&ada), ip("203.0.113.1")))
                .err(),
            Some(Refusal::TooManyForClient)
        );

        let rated = limits(100, 0, Some(per_second(1, 2)));
        for last in ["192.0.2.1", "198.51.100.1"] {
            drop(rated.admit(ClientKey::of(Some(&ada), ip(last))).unwrap());
        }
        assert!(matches!(
            rated.admit(ClientKey::of(Some(&ada), ip("203.0.113.1"))),
            Err(Refusal::OpeningTooFast { .. })
        ));
        assert!(
            rated
                .admit(ClientKey::of(Some(&user("bob-id")), ip("192.0.2.1")))
                .is_ok(),
            "another user on the same address is not affected"
        );
    }

    #[test]
    fn the_rate_map_is_bounded() {
        // One open an hour: no entry expires while the test runs.
        let limits = limits(10, 0, Some(Quota::per_hour(NonZeroU32::new(1).unwrap())));
        // Fill the map with clients that each used their burst.
        for i in 0..MAX_TRACKED_CLIENTS as u32 {
            let _ = limits.admit(IpAddr::from((0x0a00_0000 + i).to_be_bytes()));
        }
        assert!(limits.clients_tracked() <= MAX_TRACKED_CLIENTS);
        assert!(matches!(
            limits.admit(ip("198.51.100.1")),
            Err(Refusal::OpeningTooFast { .. })
        ));
        assert!(limits.clients_tracked() <= MAX_TRACKED_CLIENTS);
    }
}
