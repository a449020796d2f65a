//! The Redis bus against a real three-primary Redis Cluster: sharded
//! pub/sub (`SPUBLISH`/`SSUBSCRIBE` on the shard owning each room's slot),
//! fan-out across replicas for rooms on every shard, and one shard
//! SIGKILLed and restarted while messages are posted.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::broker::{metric, spawn_ready, wait_readyz, RedisCluster};
use crate::fault_helpers::wait_until;
use crate::helpers::{close_ws, read_messages, Backend, TestDb, Ws};
use crate::redis_bus::{assert_all_delivered, post, subscribers};

fn channel(room: &str) -> String {
    format!("palaver:room:{room}")
}

/// The owning node of each room's channel; asserts that every node owns
/// at least one, so the test covers every shard.
async fn owners(cluster: &RedisCluster, rooms: &[String]) -> Vec<usize> {
    let mut owners = Vec::new();
    for room in rooms {
        owners.push(cluster.owner(&channel(room)).await);
    }
    for node in 0..cluster.len() {
        assert!(owners.contains(&node), "no room on node {node}: {owners:?}");
    }
    owners
}

/// Waits until every room's channel has `n` shard subscribers on its owner.
async fn wait_shard_subscribed(cluster: &RedisCluster, rooms: &[String], n: i64) {
    wait_until(
        &format!("{n} shard subscriptions on every room's channel"),
        Duration::from_secs(15),
        || async {
            for room in rooms {
                if cluster.shard_subscribers(&channel(room)).await != n {
                    return false;
                }
            }
            true
        },
    )
    .await;
}

/// Each node holds shard subscriptions for exactly the rooms it owns.
async fn assert_subscribed_where_owned(cluster: &RedisCluster, rooms: &[String], owners: &[usize]) {
    for node in 0..cluster.len() {
        let held: BTreeSet<String> = cluster.shard_channels(node).await.into_iter().collect();
        let owned: BTreeSet<String> = rooms
            .iter()
            .zip(owners)
            .filter(|(_, owner)| **owner == node)
            .map(|(room, _)| channel(room))
            .collect();
        assert_eq!(held, owned, "shard channels held on node {node}");
    }
}

/// Posts one more message to every room and checks that each subscriber's
/// next frame is exactly it: nothing was delivered twice after the end.
async fn assert_nothing_extra(
    a: &crate::helpers::ServerProcess,
    rooms: &[String],
    subs: &mut [Vec<Ws>],
    sent: &[usize],
) {
    for room in rooms {
        post(a, room, &format!("after-{room}")).await;
    }
    for ((room, subs), sent) in rooms.iter().zip(subs.iter_mut()).zip(sent) {
        for ws in subs.iter_mut() {
            assert_eq!(
                read_messages(ws, 1).await,
                vec![(*sent as i64 + 1, format!("after-{room}"))],
                "room {room}: the next frame is the next message"
            );
        }
    }
}

/// Two replicas, each sending and serving, over a cluster: rooms spread over
/// all three shards, each room's subscriptions held on its own shard, the
/// writers use `SPUBLISH` only, and every subscriber gets every message of
/// its room once, in order, from the broker: the repair interval is longer
/// than the test, so messages cannot come from the table's periodic check,
/// and each room has one writer, so only the rare gap of two of its own
/// batches publishing out of order (which the write path allows) reads the
/// table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_fan_out_over_a_redis_cluster_with_rooms_on_every_shard() {
    let db = TestDb::new(Backend::Postgres).await;
    let cluster = RedisCluster::start();
    let bus = cluster.url();
    let flags = ["--bus", bus.as_str(), "--bus-repair-interval-ms", "60000"];
    let a = spawn_ready(&db.url, &flags, &[]).await;
    let b = spawn_ready(&db.url, &flags, &[]).await;
    let rooms: Vec<String> = (0..18).map(|i| format!("shard-{i}")).collect();
    let owners = owners(&cluster, &rooms).await;
    let mut subs = Vec::new();
    for room in &rooms {
        subs.push(subscribers(&[&a, &b], room, 1).await);
    }
    wait_shard_subscribed(&cluster, &rooms, 2).await;
    assert_subscribed_where_owned(&cluster, &rooms, &owners).await;

    let per_room = 8;
    let replicas = [&a, &b];
    let sends = rooms.iter().enumerate().flat_map(|(r, room)| {
        (0..per_room).map(move |i| {
            let server = replicas[r % 2];
            async move { post(server, room, &format!("{room}-m{i}")).await }
        })
    });
    futures::future::join_all(sends).await;
    for (room, subs) in rooms.iter().zip(subs.iter_mut()) {
        let expected: Vec<String> = (0..per_room).map(|i| format!("{room}-m{i}")).collect();
        assert_all_delivered(subs, &expected).await;
    }

    for node in 0..cluster.len() {
        assert!(
            cluster.calls(node, "spublish").await > 0,
            "node {node} carried sharded publishes"
        );
        assert_eq!(
            cluster.calls(node, "publish").await,
            0,
            "no classic PUBLISH on node {node}"
        );
        assert_eq!(cluster.calls(node, "subscribe").await, 0);
    }
    for server in replicas {
        let repairs = metric(server, "palaver_bus_repairs_total").await;
        assert!(
            repairs <= 3.0,
            "{repairs} repairs on port {}: the broker should carry the messages",
            server.port
        );
        assert_eq!(metric(server, "palaver_bus_up").await, 1.0);
        assert_eq!(
            metric(server, "palaver_bus_payloads_rejected_total").await,
            0.0
        );
    }
    assert_nothing_extra(&a, &rooms, &mut subs, &vec![per_room; rooms.len()]).await;

    for subs in subs {
        for ws in subs {
            close_ws(ws).await;
        }
    }
    // Rooms that lost their last subscriber are unsubscribed on their shard.
    wait_shard_subscribed(&cluster, &rooms, 0).await;
}

/// One shard's `redis-server` SIGKILLed and restarted while two replicas take
/// sends to rooms on every shard: every send succeeds, the replicas are
/// unready while the shard is down and ready again after, and every
/// subscriber still gets every message once, in order (the lost shard's
/// rooms repaired from the table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_shard_killed_and_restarted_while_posting_loses_and_repeats_nothing() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut cluster = RedisCluster::start();
    let bus = cluster.url();
    let flags = ["--bus", bus.as_str(), "--bus-repair-interval-ms", "200"];
    let a = spawn_ready(&db.url, &flags, &[]).await;
    let b = spawn_ready(&db.url, &flags, &[]).await;
    let rooms: Vec<String> = (0..9).map(|i| format!("storm-{i}")).collect();
    let owners = owners(&cluster, &rooms).await;
    // Not the node named in the bus URL: the client must find the others.
    let victim = 1;
    let mut subs = Vec::new();
    for room in &rooms {
        subs.push(subscribers(&[&a, &b], room, 1).await);
    }
    wait_shard_subscribed(&cluster, &rooms, 2).await;
    let repairs_before = metric(&a, "palaver_bus_repairs_total").await;

    let mut expected: Vec<Vec<String>> = vec![Vec::new(); rooms.len()];
    for i in 0..270 {
        if i == 90 {
            cluster.kill(victim);
            wait_readyz(&a, 503).await;
            wait_readyz(&b, 503).await;
        }
        if i == 180 {
            cluster.restart(victim);
        }
        let r = i % rooms.len();
        let text = format!("k{i}");
        post(if i % 2 == 0 { &a } else { &b }, &rooms[r], &text).await;
        expected[r].push(text);
    }
    for (subs, expected) in subs.iter_mut().zip(&expected) {
        assert_all_delivered(subs, expected).await;
    }
    wait_readyz(&a, 200).await;
    wait_readyz(&b, 200).await;
    for server in [&a, &b] {
        assert!(metric(server, "palaver_bus_reconnects_total").await >= 1.0);
        assert_eq!(metric(server, "palaver_bus_up").await, 1.0);
    }
    assert!(
        metric(&a, "palaver_bus_repairs_total").await > repairs_before,
        "the lost shard's messages came from the table"
    );
    // The restarted shard holds its rooms' subscriptions again and carries
    // their traffic.
    wait_shard_subscribed(&cluster, &rooms, 2).await;
    assert_subscribed_where_owned(&cluster, &rooms, &owners).await;
    let sent: Vec<usize> = expected.iter().map(Vec::len).collect();
    assert_nothing_extra(&a, &rooms, &mut subs, &sent).await;
}

/// A room's slot moved to another shard while its subscribers listen (as
/// resharding does): the old shard ends the room's shard subscriptions, the
/// replicas subscribe on the new owner, and every message sent before,
/// during and after the move arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_whose_slot_moves_to_another_shard_is_followed_there() {
    let db = TestDb::new(Backend::Postgres).await;
    let cluster = RedisCluster::start();
    let bus = cluster.url();
    let flags = ["--bus", bus.as_str(), "--bus-repair-interval-ms", "200"];
    let a = spawn_ready(&db.url, &flags, &[]).await;
    let b = spawn_ready(&db.url, &flags, &[]).await;
    let room = "moving".to_owned();
    let from = cluster.owner(&channel(&room)).await;
    let to = (from + 1) % cluster.len();
    let mut subs = subscribers(&[&a, &b], &room, 1).await;
    wait_shard_subscribed(&cluster, std::slice::from_ref(&room), 2).await;

    let mut expected = Vec::new();
    for i in 0..60 {
        if i == 20 {
            cluster.move_slot(&channel(&room), to).await;
        }
        let text = format!("v{i}");
        post(if i % 2 == 0 { &a } else { &b }, &room, &text).await;
        expected.push(text);
    }
    assert_all_delivered(&mut subs, &expected).await;
    assert_eq!(cluster.owner(&channel(&room)).await, to);
    wait_until(
        "the room's shard subscriptions on its new owner",
        Duration::from_secs(15),
        || async {
            cluster.shard_channels(to).await == vec![channel(&room)]
                && cluster.shard_channels(from).await.is_empty()
        },
    )
    .await;
    wait_shard_subscribed(&cluster, std::slice::from_ref(&room), 2).await;
    wait_readyz(&a, 200).await;
    wait_readyz(&b, 200).await;
    // The broker, not the table, carries the room again.
    let repairs = metric(&a, "palaver_bus_repairs_total").await;
    assert_nothing_extra(&a, std::slice::from_ref(&room), &mut [subs], &[60]).await;
    assert_eq!(metric(&a, "palaver_bus_repairs_total").await, repairs);
}
