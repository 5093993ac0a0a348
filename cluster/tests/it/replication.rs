use std::collections::BTreeSet;
use std::time::Duration;

use roomraft_cluster::Consistency;

use crate::harness::{node_info, Claims, Cmd, Outcome, TestCluster, WAIT};

fn claimed(o: &Outcome) -> bool {
    matches!(o, Outcome::Claimed { .. })
}

async fn state_of(c: &TestCluster, id: u64) -> Claims {
    c.node(id).read_local(|a| a.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicates_to_all_three() {
    let c = TestCluster::start(21000, 3, |_| {}).await;
    let leader = c.leader().await;
    let mut last = 0;
    for i in 0..10 {
        match c.claim(leader, &format!("slot-{i}")).await {
            Outcome::Claimed { index } => last = index,
            other => panic!("unexpected {other:?}"),
        }
    }
    c.await_applied(last).await;
    let first = state_of(&c, 1).await;
    assert_eq!(first.slots.len(), 10);
    let digest = c.node(1).state_digest();
    assert_eq!(digest.records, 10);
    for id in 2..=3 {
        assert_eq!(state_of(&c, id).await, first, "node {id} differs");
        let d = c.node(id).state_digest();
        assert_eq!(
            (d.applied_index, &d.sha256),
            (digest.applied_index, &digest.sha256),
            "node {id}'s state digest differs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_to_follower_is_forwarded_and_read_on_follower_sees_it() {
    let c = TestCluster::start(21010, 3, |_| {}).await;
    let leader = c.leader().await;
    let followers = c.followers(leader);
    // A write sent to a follower is forwarded to the leader, transparently.
    let outcome = c.claim(followers[0], "forwarded").await;
    assert!(claimed(&outcome), "{outcome:?}");
    // A write on the leader is visible at once to a linearizable read on a follower.
    for i in 0..20 {
        let slot = format!("fresh-{i}");
        assert!(claimed(&c.claim(leader, &slot).await));
        let seen = c
            .node(followers[1])
            .read(Consistency::Linearizable, |a| a.slots.contains_key(&slot))
            .await
            .unwrap();
        assert!(seen, "follower {} did not see {slot}", followers[1]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_elects_new_leader_and_writes_resume() {
    let mut c = TestCluster::start(21020, 3, |_| {}).await;
    let old = c.leader().await;
    assert!(claimed(&c.claim(old, "before").await));
    c.stop(old).await;
    let survivor = c.followers(old)[0];
    // The write waits for the election inside the request deadline; the client never sees it.
    let outcome = c.claim(survivor, "after").await;
    assert!(claimed(&outcome), "{outcome:?}");
    let new = c.leader().await;
    assert_ne!(new, old);
    let st = c
        .node(survivor)
        .read(Consistency::Linearizable, |a| a.clone())
        .await
        .unwrap();
    assert!(st.slots.contains_key("before") && st.slots.contains_key("after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_follower_catches_up_from_the_log() {
    let mut c = TestCluster::start(21030, 3, |_| {}).await;
    let leader = c.leader().await;
    let follower = c.followers(leader)[0];
    c.stop(follower).await;
    let mut last = 0;
    for i in 0..30 {
        if let Outcome::Claimed { index } = c.claim(leader, &format!("while-down-{i}")).await {
            last = index;
        }
    }
    c.restart(follower).await;
    c.await_applied(last).await;
    assert_eq!(state_of(&c, follower).await, state_of(&c, leader).await);
    assert_eq!(
        c.node(follower).status().snapshot_index,
        None,
        "caught up from the log, not a snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_follower_catches_up_from_snapshot_after_purge() {
    let mut c = TestCluster::start(21040, 3, |cfg| {
        cfg.snapshot_every_entries = 20;
        cfg.snapshot_scales_with_state = false;
        cfg.keep_logs_after_snapshot = 5;
    })
    .await;
    let leader = c.leader().await;
    let follower = c.followers(leader)[0];
    c.stop(follower).await;
    let mut last = 0;
    for i in 0..120 {
        if let Outcome::Claimed { index } = c.claim(leader, &format!("s-{i}")).await {
            last = index;
        }
    }
    // The leader must have purged past what the stopped follower has, so only a snapshot helps.
    c.node(leader)
        .raft()
        .wait(Some(WAIT))
        .metrics(
            |m| m.purged.map(|p| p.index).unwrap_or(0) > 60,
            "leader purged its log",
        )
        .await
        .unwrap();
    c.restart(follower).await;
    c.await_applied(last).await;
    let st = c.node(follower).status();
    assert!(
        st.snapshot_index.is_some(),
        "follower installed a snapshot: {st:?}"
    );
    assert_eq!(state_of(&c, follower).await, state_of(&c, leader).await);

    // A node restarted after its own snapshot and purge recovers the same state.
    let before = state_of(&c, leader).await;
    c.stop(leader).await;
    c.restart(leader).await;
    c.node(leader)
        .raft()
        .wait(Some(WAIT))
        .applied_index_at_least(Some(last), "recovered")
        .await
        .unwrap();
    assert_eq!(state_of(&c, leader).await, before);
    assert!(c.node(leader).status().purged_index.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_of_one_slot_through_all_nodes_have_one_winner() {
    let c = TestCluster::start(21050, 3, |_| {}).await;
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let node = c.node(1 + i % 3).clone();
        tasks.push(tokio::spawn(async move {
            node.write(&Cmd::Claim {
                slot: "contended".into(),
                owner: format!("client-{i}"),
            })
            .await
            .unwrap()
            .1
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if claimed(&t.await.unwrap()) {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_log_entries_and_each_gets_its_outcome() {
    let c = TestCluster::start(21080, 3, |_| {}).await;
    let leader = c.leader().await;
    let node = c.node(leader).clone();
    let before = node.status().last_log_index;
    // All submitted before the batcher runs: they queue behind the first proposal.
    let writes = (0..200).map(|i| {
        let node = node.clone();
        async move {
            let slot = format!("batch-{}", i % 150);
            let cmd = Cmd::Claim {
                slot: slot.clone(),
                owner: format!("client-{i}"),
            };
            (slot, i, node.write(&cmd).await.expect("write succeeds"))
        }
    });
    let results = futures::future::join_all(writes).await;
    let mut winners = BTreeSet::new();
    let mut last = 0;
    for (slot, i, (index, outcome)) in &results {
        last = last.max(*index);
        match outcome {
            Outcome::Claimed { .. } => assert!(winners.insert(slot.clone()), "{slot} won twice"),
            Outcome::Taken { owner } => assert_ne!(owner, &format!("client-{i}")),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 150, "every slot has exactly one winner");
    let entries = last - before;
    assert!(
        entries < 20,
        "200 concurrent writes took {entries} log entries: they were not batched"
    );
    c.await_applied(last).await;
    let digest = c.node(leader).state_digest();
    for id in c.followers(leader) {
        assert_eq!(
            c.node(id).state_digest().sha256,
            digest.sha256,
            "node {id} differs"
        );
    }
    assert_eq!(state_of(&c, leader).await.slots.len(), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_to_a_follower_share_forward_requests() {
    let c = TestCluster::start(21090, 3, |_| {}).await;
    let leader = c.leader().await;
    let via = c.node(c.followers(leader)[0]).clone();
    let (requests_before, writes_before) = (
        via.metrics().forward_requests.get(),
        via.metrics().forwarded_writes.get(),
    );
    let writes = (0..200).map(|i| {
        let via = via.clone();
        async move {
            let slot = format!("fwd-{}", i % 150);
            let cmd = Cmd::Claim {
                slot: slot.clone(),
                owner: format!("client-{i}"),
            };
            (
                slot,
                i,
                via.write(&cmd).await.expect("forwarded write succeeds"),
            )
        }
    });
    let results = futures::future::join_all(writes).await;
    let mut winners = BTreeSet::new();
    for (slot, i, (_, outcome)) in &results {
        match outcome {
            Outcome::Claimed { .. } => assert!(winners.insert(slot.clone()), "{slot} won twice"),
            Outcome::Taken { owner } => assert_ne!(owner, &format!("client-{i}")),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 150, "every slot has exactly one winner");
    let requests = via.metrics().forward_requests.get() - requests_before;
    assert_eq!(via.metrics().forwarded_writes.get() - writes_before, 200);
    assert!(
        requests < 50,
        "200 concurrent forwarded writes took {requests} peer requests: they were not batched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_add_learner_promote_and_remove() {
    let mut c = TestCluster::start(21060, 3, |_| {}).await;
    let leader = c.leader().await;
    assert!(claimed(&c.claim(leader, "pre-join").await));

    // Node 4 starts empty (not an initial member), joins as a learner, then becomes a voter.
    let mut cfg4 = c.configs[&1].clone();
    cfg4.node_id = 4;
    cfg4.data_dir = c.data_dir(1).with_file_name("node4");
    cfg4.advertise = node_info(21060, 4);
    cfg4.peer_listen = cfg4.advertise.peer_addr.parse().unwrap();
    cfg4.initial_members.clear();
    let tls4 = c.ca.node_material("node4", &["127.0.0.1".into()]).unwrap();
    c.configs.insert(4, cfg4);
    c.tls.insert(4, tls4);
    c.restart(4).await;

    let via = c.followers(leader)[0];
    c.node(via)
        .add_learner(4, node_info(21060, 4))
        .await
        .unwrap();
    c.node(via).add_voters(BTreeSet::from([4])).await.unwrap();
    let st = c.node(leader).status();
    assert!(st.members.iter().any(|m| m.id == 4 && m.voter), "{st:?}");
    let has = c
        .node(4)
        .read(Consistency::Linearizable, |a| {
            a.slots.contains_key("pre-join")
        })
        .await
        .unwrap();
    assert!(has);

    c.node(4).remove_nodes(BTreeSet::from([4])).await.unwrap();
    let st = c.node(leader).status();
    assert!(!st.members.iter().any(|m| m.id == 4), "{st:?}");
    // The three remaining members still take writes.
    assert!(claimed(&c.claim(leader, "post-remove").await));
    let _ = Duration::ZERO;
}
