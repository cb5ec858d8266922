//! The connection to Redis in its three modes — standalone (redis-rs's
//! `ConnectionManager`), Sentinel (a multiplexed connection to the master
//! the Sentinels name, re-resolved after a failover) and Cluster
//! (`cluster_async`) — with every wait bounded and a circuit breaker.
//!
//! # Time bounds
//!
//! | what | bound |
//! |---|---|
//! | opening a TCP (and TLS) connection | [`CONNECT_TIMEOUT`], 500 ms |
//! | one command's answer | [`RESPONSE_TIMEOUT`], 250 ms |
//! | establishing a Sentinel or Cluster connection (ask the Sentinels, verify the master; read the slots) | [`ESTABLISH_TIMEOUT`], 1 s |
//! | a whole command, connecting included | [`COMMAND_TIMEOUT`], 750 ms |
//!
//! A store slower than that is treated as down.
//!
//! # Failures
//!
//! After a failed command the breaker opens: commands fail at once,
//! without touching the network, for 500 ms, then 1 s, then 2 s (at most)
//! after each further failure in a row; the first success closes it. So a
//! dead Redis costs one short wait per back-off period, not one per
//! request, and a revived one is used again within 2 s.
//!
//! redis-rs does not follow a Sentinel failover on a live connection
//! (redis-rs#1438): the old master keeps answering reads, and writes get
//! `READONLY`. So after an I/O error, a timeout, `READONLY` or
//! `MASTERDOWN`, the standalone and Sentinel connections are dropped; the
//! next command connects anew, and in Sentinel mode asks the Sentinels for
//! the current master first. A Cluster connection follows `MOVED` and
//! refreshes its slots by itself and is kept.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::SentinelClient;
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, RedisError, RedisFuture, ServerErrorKind, Value,
};

/// Bound on opening one connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Bound on one command's answer.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);
/// Bound on establishing a Sentinel or Cluster connection.
pub(crate) const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on a whole command, connecting included (standalone connects
/// lazily, in the first command).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_millis(750);
/// First back-off of the breaker.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Longest back-off of the breaker.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How the store reaches Redis.
pub(super) enum Mode {
    /// One server.
    Standalone(redis::Client),
    /// The master of a Sentinel-monitored set.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
    /// A Redis Cluster.
    Cluster(ClusterClient),
}

impl Mode {
    /// The mode's name in logs.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Standalone(_) => "standalone",
            Self::Sentinel(_) => "sentinel",
            Self::Cluster(_) => "cluster",
        }
    }
}

/// A connection in one of the modes; clones share it.
#[derive(Clone)]
enum Conn {
    Manager(ConnectionManager),
    Multiplexed(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Manager(c) => c.req_packed_command(cmd),
            Self::Multiplexed(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Multiplexed(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Manager(c) => c.get_db(),
            Self::Multiplexed(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Why a command did not run or failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The breaker is open after recent failures: not tried.
    Skipped,
    /// No answer within [`COMMAND_TIMEOUT`] (or no connection within
    /// [`ESTABLISH_TIMEOUT`]).
    Timeout,
    /// Redis or the connection failed.
    Redis(RedisError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Skipped => f.write_str("skipped after recent failures"),
            Self::Timeout => f.write_str("timed out"),
            Self::Redis(error) => write!(f, "{error}"),
        }
    }
}

/// The connection to Redis: connects lazily, on the first command (never
/// when the middleware is built), and anew after failures.
pub(super) struct Link {
    mode: Mode,
    current: Mutex<Option<Conn>>,
    connecting: tokio::sync::Mutex<()>,
    breaker: Mutex<Breaker>,
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

impl Link {
    pub(super) fn new(mode: Mode) -> Self {
        Self {
            mode,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            breaker: Mutex::new(Breaker::default()),
        }
    }

    pub(super) fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Runs `cmd`, bounded by [`COMMAND_TIMEOUT`].
    pub(super) async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Failure> {
        let mut conn = self.conn().await?;
        self.bounded(async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Runs `script` on `key` with `args`, bounded by [`COMMAND_TIMEOUT`].
    pub(super) async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        key: &str,
        args: &[&[u8]],
    ) -> Result<T, Failure> {
        let mut conn = self.conn().await?;
        self.bounded(async move {
            let mut invocation = script.key(key);
            for arg in args {
                invocation.arg(*arg);
            }
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    async fn bounded<T>(
        &self,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
            Ok(Ok(value)) => {
                self.breaker().close();
                Ok(value)
            }
            Ok(Err(error)) => {
                if must_reconnect(&error) {
                    self.drop_connection();
                }
                self.breaker().open();
                Err(Failure::Redis(error))
            }
            Err(_) => {
                self.drop_connection();
                self.breaker().open();
                Err(Failure::Timeout)
            }
        }
    }

    /// The connection, connecting first if there is none. One caller
    /// connects; the others wait for it.
    async fn conn(&self) -> Result<Conn, Failure> {
        if !self.breaker().is_closed() {
            return Err(Failure::Skipped);
        }
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        if !self.breaker().is_closed() {
            return Err(Failure::Skipped); // the caller before us just failed
        }
        let conn = match tokio::time::timeout(ESTABLISH_TIMEOUT, self.connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(error)) => {
                self.breaker().open();
                return Err(Failure::Redis(error));
            }
            Err(_) => {
                self.breaker().open();
                return Err(Failure::Timeout);
            }
        };
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
        Ok(conn)
    }

    async fn connect(&self) -> redis::RedisResult<Conn> {
        match &self.mode {
            Mode::Standalone(client) => {
                // Lazy: the first command connects, within its own bound.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(0);
                ConnectionManager::new_lazy_with_config(client.clone(), config).map(Conn::Manager)
            }
            Mode::Sentinel(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT));
                let mut client = client.lock().await;
                client
                    .get_async_connection_with_config(&config)
                    .await
                    .map(Conn::Multiplexed)
            }
            Mode::Cluster(client) => client.get_async_connection().await.map(Conn::Cluster),
        }
    }

    fn current(&self) -> Option<Conn> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the standalone or Sentinel connection, so the next command
    /// connects anew (and asks the Sentinels where the master is now). A
    /// Cluster connection repairs itself and is kept.
    fn drop_connection(&self) {
        if !matches!(self.mode, Mode::Cluster(_)) {
            *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `error` means the connection is broken or points at a server
/// that is no longer the master.
fn must_reconnect(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || matches!(
            error.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}

impl Breaker {
    fn is_closed(&self) -> bool {
        self.open_until.is_none_or(|until| Instant::now() >= until)
    }

    /// Counts a failure and opens the breaker; failures of commands that
    /// ran while it was already open (they started together) count once.
    fn open(&mut self) {
        if !self.is_closed() {
            return;
        }
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(8);
        let backoff = MIN_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF);
        self.open_until = Some(Instant::now() + backoff);
    }

    fn close(&mut self) {
        self.failures = 0;
        self.open_until = None;
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("mode", &self.mode.name())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_backs_off_up_to_two_seconds_and_closes_on_success() {
        let mut breaker = Breaker::default();
        assert!(breaker.is_closed());
        let mut backoffs = Vec::new();
        for _ in 0..5 {
            let before = Instant::now();
            breaker.open();
            assert!(!breaker.is_closed());
            let until = breaker.open_until.unwrap();
            breaker.open(); // a failure while open counts once
            assert_eq!(breaker.open_until, Some(until));
            backoffs.push(((until - before).as_millis() + 50) / 100 * 100); // rounded
            breaker.open_until = Some(Instant::now()); // the back-off has passed
        }
        assert_eq!(backoffs, [500, 1000, 2000, 2000, 2000]);
        breaker.close();
        assert!(breaker.is_closed());
        breaker.open();
        assert!(breaker.open_until.unwrap() - Instant::now() <= MIN_BACKOFF);
    }
}
