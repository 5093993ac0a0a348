//! One run of an operation shared by every caller that arrived before it started: how many
//! linearizable reads share one read index (etcd batches its ReadIndex requests the same way).
//!
//! Runs are numbered as they start. A caller arriving while run `r` is under way waits for run
//! `r + 1`, which starts after it arrived; so the answer it gets was obtained wholly after the
//! caller's request began, which is what a read index must be for the read to be linearizable.
//! Whoever finds no run under way runs the next one itself; the others wait for it.

use std::future::Future;

use parking_lot::Mutex;
use tokio::sync::Notify;

struct State<T> {
    /// Runs started so far (the number of the latest).
    started: u64,
    running: bool,
    /// The latest finished run and its answer (`None`: it failed; callers then try alone).
    finished: u64,
    answer: Option<T>,
}

pub(crate) struct Coalesce<T> {
    state: Mutex<State<T>>,
    done: Notify,
}

/// Ends a run on drop, even when the caller running it is cancelled, so nobody waits forever.
struct Running<'a, T> {
    c: &'a Coalesce<T>,
    round: u64,
    answer: Option<Option<T>>,
}

impl<T> Drop for Running<'_, T> {
    fn drop(&mut self) {
        let mut s = self.c.state.lock();
        s.running = false;
        if let Some(a) = self.answer.take() {
            s.finished = self.round;
            s.answer = a;
        }
        drop(s);
        self.c.done.notify_waiters();
    }
}

impl<T: Clone> Coalesce<T> {
    pub(crate) fn new() -> Self {
        Coalesce {
            state: Mutex::new(State {
                started: 0,
                running: false,
                finished: 0,
                answer: None,
            }),
            done: Notify::new(),
        }
    }

    /// The answer of a run of `op` that started after this call: this caller's own, or one it
    /// shares with callers that arrived meanwhile.
    pub(crate) async fn run<F, Fut>(&self, op: F) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let target = self.state.lock().started + 1;
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let round = {
                let mut s = self.state.lock();
                if s.finished >= target {
                    return s.answer.clone();
                }
                if s.running {
                    None
                } else {
                    s.running = true;
                    s.started += 1;
                    Some(s.started)
                }
            };
            match round {
                Some(round) => {
                    let mut run = Running {
                        c: self,
                        round,
                        answer: None,
                    };
                    let answer = op().await;
                    run.answer = Some(answer.clone());
                    drop(run);
                    if round >= target {
                        return answer;
                    }
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_share_runs_that_started_after_they_arrived() {
        let c = Arc::new(Coalesce::<u64>::new());
        let runs = Arc::new(AtomicU64::new(0));
        let op = {
            let runs = runs.clone();
            move || {
                let runs = runs.clone();
                async move {
                    // The answer is the run's number, taken as it starts.
                    let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Some(n)
                }
            }
        };
        let mut tasks = Vec::new();
        for i in 0..50u64 {
            let (c, op, runs) = (c.clone(), op.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i % 10)).await;
                let runs_before = runs.load(Ordering::SeqCst);
                let got = c.run(op).await.unwrap();
                // A run that had started before this caller arrived would carry a number at
                // most `runs_before`.
                assert!(got > runs_before, "{got} <= {runs_before}");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let n = runs.load(Ordering::SeqCst);
        assert!((1..=10).contains(&n), "{n} runs for 50 callers");
    }

    #[tokio::test]
    async fn a_cancelled_run_lets_the_others_go_on() {
        let c = Arc::new(Coalesce::<u64>::new());
        let slow = {
            let c = c.clone();
            tokio::spawn(async move {
                c.run(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Some(1)
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.run(|| async { Some(2) }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        slow.abort();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter went on")
            .unwrap();
        assert_eq!(got, Some(2));
    }
}
