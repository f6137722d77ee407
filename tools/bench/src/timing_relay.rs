//! A TCP relay in front of DynamoDB Local that clocks how long DynamoDB Local
//! takes to answer, so the cold-start table can say how much of a function's
//! wall-time penalty is spent waiting for DynamoDB Local rather than in the
//! function (packet captures on the loopback showed the first request of a
//! cold start answered 0.6-5 ms slower than a warm one: a fresh connection to
//! its Jetty, and its threads waking after an idle spell).
//!
//! It relays bytes, not HTTP: each accepted connection gets its own upstream
//! connection, opened at once, so DynamoDB Local sees the connections the
//! function opens, when it opens them. The answer time of a request is from
//! the last request bytes written upstream to the first response bytes read
//! back (HTTP/1.1 without pipelining, as the SDK speaks it); the clock runs
//! while at least one request is unanswered, so requests in flight together
//! (`send`'s due queries) count once, as the time the function waited.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Default)]
pub struct TimingRelay {
    clock: Arc<Mutex<AnsweringClock>>,
}

/// Requests sent upstream and not yet answered, across all connections, and
/// the time during which there was at least one.
#[derive(Default)]
struct AnsweringClock {
    unanswered: usize,
    since: Option<Instant>,
    total: Duration,
}

impl AnsweringClock {
    fn asked(&mut self) {
        self.unanswered += 1;
        if self.unanswered == 1 {
            self.since = Some(Instant::now());
        }
    }

    fn answered(&mut self) {
        self.unanswered = self.unanswered.saturating_sub(1);
        if self.unanswered == 0 {
            if let Some(t) = self.since.take() {
                self.total += t.elapsed();
            }
        }
    }
}

impl TimingRelay {
    /// Starts relaying a loopback port to `upstream`; returns the relay and its URL.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<(TimingRelay, String)> {
        let relay = TimingRelay::default();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let clock = relay.clock.clone();
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let clock = clock.clone();
                tokio::spawn(async move {
                    if let Ok(up) = TcpStream::connect(upstream).await {
                        relay_connection(down, up, clock).await;
                    }
                });
            }
        });
        Ok((relay, url))
    }

    /// Time during which a request was waiting for DynamoDB Local's answer,
    /// since the relay started (up to the latest answer).
    pub fn answering(&self) -> Duration {
        lock(&self.clock).total
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records that a connection's request went upstream (`true`) or was
/// answered (`false`); only the first of each counts.
fn mark(waiting: &Mutex<bool>, clock: &Mutex<AnsweringClock>, asked: bool) {
    let mut w = lock(waiting);
    if *w != asked {
        *w = asked;
        let mut c = lock(clock);
        if asked {
            c.asked()
        } else {
            c.answered()
        }
    }
}

async fn relay_connection(down: TcpStream, up: TcpStream, clock: Arc<Mutex<AnsweringClock>>) {
    let _ = (down.set_nodelay(true), up.set_nodelay(true));
    let (mut down_read, mut down_write) = down.into_split();
    let (mut up_read, mut up_write) = up.into_split();
    // Whether this connection's latest request is still unanswered.
    let waiting = Arc::new(Mutex::new(false));
    let requests = {
        let (waiting, clock) = (waiting.clone(), clock.clone());
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match down_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if up_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        mark(&waiting, &clock, true);
                    }
                }
            }
            let _ = up_write.shutdown().await;
        }
    };
    let answers = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match up_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    mark(&waiting, &clock, false);
                    if down_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        // A connection closed mid-request must not leave the clock running.
        mark(&waiting, &clock, false);
        let _ = down_write.shutdown().await;
    };
    tokio::join!(requests, answers);
}
