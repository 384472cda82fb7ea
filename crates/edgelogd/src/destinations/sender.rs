//! The sender of a network destination, one for every transport.
//!
//! The sender is a task on the async runtime. It asks the destination's queue owner
//! ([`queue`](super::queue)) for a batch, sends it with its [`Transport`], and tells the owner
//! what the transport accepted ([`transport`](super::transport) says what each can say).
//! When sending fails the owner rewinds the queue (the batch will be sent again), the receiver
//! is marked down with the error, and the sender reconnects with exponential backoff and
//! jitter; nothing leaves the queue until acknowledged, so a receiver that is away for a
//! minute gets the minute's records when it is back. A receiver that is connected but takes
//! nothing is marked stalled after `stall_after` and its connection dropped after
//! `stall_timeout`. The sender does network I/O only: everything that touches the queue or a
//! file happens on the owner's thread.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;

use super::backlog::{Backlog, Tier};
use super::network::{NetworkConfig, TransportConfig};
use super::queue::{Done, Feed, Owner, QueueSink, link};
use super::transport::{self, Outcome, Transport};
use crate::component::{Built, DestinationSpec, DestinationStart, Sink};
use crate::output::Encoder;
use crate::stats::{DestinationStats, ReceiverState};

/// Exponential backoff with jitter: 100 ms doubling to `max_backoff` (30 s by default), each
/// wait between half and all of the step, so many devices that lost one receiver do not come
/// back in lockstep.
#[derive(Debug)]
struct Backoff {
    step: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);

    fn new(max: Duration) -> Backoff {
        Backoff {
            step: Self::FIRST,
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let half = self.step / 2;
        let wait = half + half.mul_f64(f64::from(nanos % 1000) / 1000.0);
        self.step = (self.step * 2).min(self.max);
        wait
    }

    fn reset(&mut self) {
        self.step = Self::FIRST;
    }
}

/// Starts the sender of a network destination, with the transport its config names.
pub(super) fn spawn(
    cfg: &NetworkConfig,
    feed: Feed,
    name: &str,
    stats: Arc<DestinationStats>,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    struct Spawn<'a> {
        cfg: &'a NetworkConfig,
        feed: Feed,
        name: &'a str,
        stats: Arc<DestinationStats>,
        runtime: &'a tokio::runtime::Handle,
    }
    impl transport::Use for Spawn<'_> {
        type Output = tokio::task::JoinHandle<()>;
        fn with<T: Transport>(self, t: T) -> Self::Output {
            let (cfg, name) = (self.cfg.clone(), self.name.to_owned());
            self.runtime.spawn(run(self.feed, t, cfg, name, self.stats))
        }
    }
    let spawn = Spawn {
        cfg,
        feed,
        name,
        stats,
        runtime,
    };
    transport::dispatch(cfg, spawn)
}

/// The next batch to send, and which part of the queue it is from; `None` once the owner
/// has ended. A partial batch waits `max_wait` for company (from the same part).
async fn next_batch(
    feed: &Feed,
    batch_max: usize,
    max_wait: Duration,
) -> Option<(Tier, Vec<edgelog_queue::Record>)> {
    let mut taken = feed.read(batch_max, true, None).await?;
    if taken.records.len() < batch_max && !max_wait.is_zero() {
        feed.pause(max_wait).await;
        let more = batch_max - taken.records.len();
        if let Some(more) = feed.read(more, false, Some(taken.tier)).await {
            taken.records.extend(more.records);
        }
    }
    Some((taken.tier, taken.records))
}

/// The sender task. See the module documentation.
async fn run<T: Transport>(
    feed: Feed,
    mut transport: T,
    cfg: NetworkConfig,
    name: String,
    stats: Arc<DestinationStats>,
) {
    let batch_max = cfg.batch.max_records;
    let max_wait = cfg.batch.max_wait;
    let mut backoff = Backoff::new(cfg.max_backoff);
    let mut done: Option<Done> = None;
    loop {
        if let Some(d) = done.take()
            && !feed.done(d).await
        {
            break;
        }
        let Some((tier, batch)) = next_batch(&feed, batch_max, max_wait).await else {
            break;
        };
        let rewind = |accepted| Done {
            tier,
            accepted,
            dead: Vec::new(),
            rewind: true,
        };
        if !transport.connected() {
            match transport.connect().await {
                Ok(()) => {
                    tracing::info!(destination = %name, "connected to {}", cfg.address);
                }
                Err(e) => {
                    down(&stats, &name, &format!("{e:#}"), batch.len());
                    done = Some(rewind(Vec::new()));
                    feed.pause(backoff.next()).await;
                    continue;
                }
            }
        }
        stats.add_sent(batch.len() as u64);
        let Outcome {
            accepted,
            dead,
            error,
            retry_after,
        } = send_timed(&feed, &stats, &cfg, transport.send(&batch), &name).await;
        stats.add_acknowledged(accepted.len() as u64);
        let dead = dead
            .into_iter()
            .filter_map(|(seq, why)| Some((batch.iter().find(|r| r.seq == seq)?.clone(), why)))
            .collect();
        let taken_back = batch.len() - accepted.len();
        done = Some(Done {
            tier,
            accepted,
            dead,
            rewind: error.is_some(),
        });
        match (error, retry_after) {
            (None, _) => {
                backoff.reset();
                if stats.set_state(ReceiverState::Up) {
                    tracing::info!(destination = %name, "receiver up: taking records");
                }
            }
            (Some(e), Some(wait)) => {
                // The receiver is there and asked for time: not down, not a backoff step.
                stats.set_error(format!("{e:#}"));
                stats.add_retried(taken_back as u64);
                feed.pause(wait.min(Duration::from_secs(300))).await;
            }
            (Some(e), None) => {
                transport.disconnect();
                down(&stats, &name, &format!("{e:#}"), taken_back);
                feed.pause(backoff.next()).await;
            }
        }
    }
    transport.close().await;
}

/// Sends a batch, timing a receiver that takes nothing: after `stall_after` it is marked
/// stalled (said once), after `stall_timeout` the send fails, so the connection is dropped and
/// dialled again — a half-dead server cannot hold the destination for ever; and a stopping
/// daemon waits for it only until its grace period is over.
async fn send_timed(
    feed: &Feed,
    stats: &DestinationStats,
    cfg: &NetworkConfig,
    send: impl Future<Output = Outcome>,
    name: &str,
) -> Outcome {
    let failed = |e: anyhow::Error| Outcome {
        error: Some(e),
        ..Outcome::default()
    };
    let (stall_after, stall_timeout) = (cfg.stall_after, cfg.stall_timeout);
    let aborted = feed.aborted();
    let stall = tokio::time::sleep(stall_after);
    let give_up = tokio::time::sleep(stall_timeout);
    tokio::pin!(send, aborted, stall, give_up);
    let mut stalled = false;
    loop {
        tokio::select! {
            r = &mut send => return r,
            () = &mut aborted => return failed(anyhow!("stopping while the receiver took nothing")),
            () = &mut give_up => {
                return failed(anyhow!("the receiver took nothing for {stall_timeout:?}: reconnecting"));
            }
            () = &mut stall, if !stalled => {
                stalled = true;
                let why = format!("connected, but the receiver took nothing for {stall_after:?}");
                if stats.set_state(ReceiverState::Stalled) {
                    tracing::warn!(destination = %name, "receiver stalled: {why}");
                }
                stats.set_error(why);
            }
        }
    }
}

/// Marks the receiver down; the batch goes back to be sent again.
fn down(stats: &DestinationStats, name: &str, error: &str, batch: usize) {
    if stats.set_state(ReceiverState::Down) {
        tracing::warn!(destination = %name, "receiver down: {error}");
    }
    stats.set_error(error.to_owned());
    stats.add_retried(batch as u64);
}

/// A network destination is built here: its thread owns the queue (the [`Owner`] serving
/// this sender), its sender speaks the transport.
impl DestinationSpec for NetworkConfig {
    fn type_name(&self) -> &'static str {
        self.transport.type_name()
    }

    fn endpoint(&self) -> String {
        let tls = self.tls.is_some();
        format!("{} {}", self.transport.scheme(tls), self.address)
    }

    fn how(&self) -> String {
        let when_full = match self.queue.when_full {
            edgelog_queue::WhenFull::Block => "block",
            edgelog_queue::WhenFull::DropNewest => "drop_newest",
            edgelog_queue::WhenFull::DropOldest => "drop_oldest",
        };
        format!(
            "{}{}, {} queue, when full {when_full}",
            self.format.name(),
            self.transport.framing(),
            self.queue.kind.name(),
        )
    }

    fn breakable_framing(&self) -> Option<&'static str> {
        let lf = self.transport
            == TransportConfig::SyslogTcp {
                octet_counting: false,
            };
        (lf && self.format.is_text()).then_some("LF-framed syslog over TCP")
    }

    fn blocks(&self) -> bool {
        self.queue.when_full == edgelog_queue::WhenFull::Block
    }

    fn build(&self, cx: DestinationStart<'_>) -> anyhow::Result<Built> {
        let (link, feed) = link();
        let sender = spawn(self, feed, cx.name, cx.stats.clone(), cx.runtime)?;
        let owner = Owner {
            name: cx.name.to_owned(),
            queue: self.queue.clone(),
            encoder: Encoder::new(self.format, cx.escape, cx.stats.clone()),
            stats: cx.stats,
            dead_letters: cx.state_dir.join("dead-letter"),
            stop: cx.stop_at,
            runtime: cx.runtime.clone(),
        };
        let (name, state_dir) = (cx.name.to_owned(), cx.state_dir.to_owned());
        let open = move || {
            let backlog = Backlog::open(&name, &owner.queue, &state_dir)?;
            Ok(Box::new(QueueSink::new(backlog, owner, link)) as Box<dyn Sink>)
        };
        Ok(Built {
            open: Box::new(open),
            sender: Some(sender),
        })
    }
}
