use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::ports::{
    Admission, Completion, Decision, EmitError, Lease, PriorOutcome, ReceiptSink, Recorded, Release, Scheduler,
    StateStore, StoreError, SuppressionEntry, SuppressionReason, Verdict,
};
use crate::ports::{Advance, Claim, EventStore, RequestState};
use crate::receipt::event::{DeliveryEvent, EventKind};
use crate::receipt::{Receipt, Status};
use crate::request::{DeliveryRequest, IdempotencyKey, RecipientKey, RequestId, SuppressionKey, TenantId};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('in_progress', 'done')),
    status TEXT,
    reason TEXT,
    provider_message_id TEXT,
    at_ms INTEGER NOT NULL,
    lock_expires_ms INTEGER,
    retain_until_ms INTEGER NOT NULL,
    attempt TEXT
);
CREATE TABLE IF NOT EXISTS cap_slots (
    cap_key TEXT NOT NULL,
    slot_id TEXT NOT NULL,
    taken_ms INTEGER NOT NULL,
    PRIMARY KEY (cap_key, slot_id)
);
CREATE TABLE IF NOT EXISTS suppressions (
    key TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS consent (
    recipient_key TEXT NOT NULL,
    category TEXT NOT NULL,
    subscribed INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (recipient_key, category)
);
CREATE TABLE IF NOT EXISTS deferred (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    due_ms INTEGER NOT NULL,
    request TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    source TEXT,
    claimed_until_ms INTEGER
);
CREATE INDEX IF NOT EXISTS deferred_due ON deferred (due_ms);
CREATE TABLE IF NOT EXISTS latest_status (
    request_key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    receipt TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS receipt_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    receipt TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    request_key TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    rank INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS event_archive (
    event_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    raw TEXT NOT NULL,
    retain_until_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    id TEXT PRIMARY KEY,
    done INTEGER NOT NULL,
    until_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS disabled_endpoints (
    subscription TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
);
PRAGMA user_version = 1;
"#;

/// A request waiting in the embedded deferral table (the stand-in for SQS delays).
#[derive(Debug, Clone, PartialEq)]
pub struct DeferredEntry {
    pub seq: i64,
    pub due: Timestamp,
    pub request: String,
    pub attempt: u32,
    pub source: Option<String>,
}

/// State in `<dir>/state.db`: idempotency, caps, suppression, consent, deferrals,
/// latest status per request.
pub struct LocalStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// Switches a new database file to WAL. The switch needs exclusive access and
/// SQLite does not call the busy handler for it, so processes opening a fresh
/// folder together retry here instead of failing with "database is locked".
fn enable_wal(conn: &Connection) -> Result<(), StoreError> {
    let mut delay = Duration::from_millis(2);
    for _ in 0..40 {
        let mode: Result<String, _> = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0));
        if mode.as_deref().is_ok_and(|m| m.eq_ignore_ascii_case("wal")) {
            return Ok(());
        }
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(m) if m.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(_) | Err(rusqlite::Error::SqliteFailure(_, _)) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(db_err(e)),
        }
    }
    Err(StoreError::new("sqlite: could not switch the state file to WAL mode: it stays locked by another process"))
}

/// Brings a state file written by an earlier herald up to date.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let has_fingerprint: bool = conn
        .query_row("SELECT COUNT(*) FROM pragma_table_info('idempotency') WHERE name = 'fingerprint'", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n > 0)
        .map_err(db_err)?;
    if !has_fingerprint {
        // Two processes may migrate at once: a duplicate column is fine.
        match conn.execute("ALTER TABLE idempotency ADD COLUMN fingerprint TEXT", []) {
            Ok(_) => {}
            Err(e) if e.to_string().contains("duplicate column") => {}
            Err(e) => return Err(db_err(e)),
        }
    }
    Ok(())
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn from_ms(v: i64) -> Timestamp {
    Timestamp::from_millisecond(v).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::new(format!("sqlite: {e}"))
}

impl LocalStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::new(format!("cannot create state folder {}: {e}", dir.display())))?;
        let path = dir.join("state.db");
        let conn = Connection::open(&path).map_err(db_err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(db_err)?;
        // WAL lets readers run beside the one writer; NORMAL is durable across
        // process crashes, which is what the embedded default promises.
        enable_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        migrate(&conn)?;
        Ok(LocalStore { conn: Mutex::new(conn), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::new("store mutex poisoned"))?;
        f(&mut conn).map_err(db_err)
    }

    /// Takes up to `limit` deferred requests due at `now`, hiding them from other
    /// flushers for `claim` so two flushes never run one request twice at once.
    pub fn claim_due(&self, now: Timestamp, claim: Duration, limit: usize) -> Result<Vec<DeferredEntry>, StoreError> {
        self.claim_due_up_to(now, claim, limit, i64::MAX)
    }

    /// The newest deferral's sequence number (0 when there is none): a flush takes
    /// only what was waiting when it began, so it ends even if a request keeps
    /// coming back due at once.
    pub fn last_deferred_seq(&self) -> Result<i64, StoreError> {
        self.with(|c| c.query_row("SELECT COALESCE(MAX(seq), 0) FROM deferred", [], |r| r.get(0)))
    }

    /// [`LocalStore::claim_due`], among the deferrals up to `max_seq`.
    pub fn claim_due_up_to(
        &self,
        now: Timestamp,
        claim: Duration,
        limit: usize,
        max_seq: i64,
    ) -> Result<Vec<DeferredEntry>, StoreError> {
        let claim_ms = i64::try_from(claim.as_millis()).unwrap_or(i64::MAX);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let entries = {
                let mut stmt = tx.prepare(
                    "SELECT seq, due_ms, request, attempt, source FROM deferred
                     WHERE due_ms <= ?1 AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?1) AND seq <= ?3
                     ORDER BY due_ms, seq LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![ms(now), limit as i64, max_seq], |r| {
                    Ok(DeferredEntry {
                        seq: r.get(0)?,
                        due: from_ms(r.get(1)?),
                        request: r.get(2)?,
                        attempt: r.get::<_, i64>(3)?.try_into().unwrap_or(0),
                        source: r.get(4)?,
                    })
                })?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            for e in &entries {
                tx.execute(
                    "UPDATE deferred SET claimed_until_ms = ?1 WHERE seq = ?2",
                    params![ms(now).saturating_add(claim_ms), e.seq],
                )?;
            }
            tx.commit()?;
            Ok(entries)
        })
    }

    /// Removes a processed deferral.
    pub fn finish_deferred(&self, seq: i64) -> Result<(), StoreError> {
        self.with(|c| c.execute("DELETE FROM deferred WHERE seq = ?1", params![seq]).map(|_| ()))
    }

    /// (total waiting, due at `now`, next due instant).
    pub fn deferred_summary(&self, now: Timestamp) -> Result<(usize, usize, Option<Timestamp>), StoreError> {
        self.with(|c| {
            let total: i64 = c.query_row("SELECT COUNT(*) FROM deferred", [], |r| r.get(0))?;
            let due: i64 =
                c.query_row("SELECT COUNT(*) FROM deferred WHERE due_ms <= ?1", params![ms(now)], |r| r.get(0))?;
            let next: Option<i64> = c.query_row("SELECT MIN(due_ms) FROM deferred", [], |r| r.get(0))?;
            Ok((total as usize, due as usize, next.map(from_ms)))
        })
    }

    /// The latest receipt recorded for a request.
    pub fn latest_status(&self, tenant: Option<&str>, request_id: &str) -> Result<Option<Receipt>, StoreError> {
        let key = status_key(tenant, request_id);
        let json: Option<String> = self.with(|c| {
            c.query_row("SELECT receipt FROM latest_status WHERE request_key = ?1", params![key], |r| r.get(0))
                .optional()
        })?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Records receipts: every one in the log, the newest per request as its status.
    /// A `duplicate` receipt describes a redelivery, not the request: it never
    /// replaces the status it duplicates.
    pub fn record_receipts(&self, receipts: &[Receipt]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for r in receipts {
                let json = r.to_json();
                tx.execute("INSERT INTO receipt_log (receipt) VALUES (?1)", params![json])?;
                if let Some(id) = &r.request_id {
                    tx.execute(
                        "INSERT INTO latest_status (request_key, status, receipt, at_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (request_key) DO UPDATE SET status = excluded.status,
                           receipt = excluded.receipt, at_ms = excluded.at_ms
                         WHERE excluded.at_ms >= latest_status.at_ms AND excluded.status != 'duplicate'",
                        params![status_key(r.tenant.as_deref(), id), r.status.as_str(), json, ms(r.at)],
                    )?;
                }
            }
            tx.commit()
        })
    }
}

fn status_key(tenant: Option<&str>, request_id: &str) -> String {
    let tenant = tenant.and_then(|t| TenantId::parse(t).ok());
    match RequestId::parse(request_id) {
        Ok(id) => IdempotencyKey::new(tenant.as_ref(), &id).to_string(),
        Err(_) => format!("raw/{request_id}"),
    }
}

/// The idempotency row of a key, as (state, prior outcome, lock expiry, retained until).
type Existing = (String, PriorOutcome, Option<i64>, i64);

fn existing(tx: &rusqlite::Transaction<'_>, key: &IdempotencyKey) -> Result<Option<Existing>, rusqlite::Error> {
    tx.query_row(
        "SELECT state, status, reason, provider_message_id, at_ms, lock_expires_ms, retain_until_ms, fingerprint
         FROM idempotency WHERE key = ?1",
        params![key.as_str()],
        |r| {
            let status: Option<String> = r.get(1)?;
            let prior = PriorOutcome {
                status: parse_status(status),
                reason: r.get(2)?,
                provider_message_id: r.get(3)?,
                at: from_ms(r.get(4)?),
                fingerprint: r.get(7)?,
            };
            Ok((r.get(0)?, prior, r.get(5)?, r.get(6)?))
        },
    )
    .optional()
}

/// Writes a decided outcome (no lock, no slots) over whatever the key held.
fn write_done(
    tx: &rusqlite::Transaction<'_>,
    key: &IdempotencyKey,
    fingerprint: &str,
    status: Status,
    reason: Option<&str>,
    at: i64,
    retain_until: i64,
) -> Result<(), rusqlite::Error> {
    tx.execute(
        "INSERT INTO idempotency (key, state, status, reason, at_ms, retain_until_ms, fingerprint)
         VALUES (?1, 'done', ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (key) DO UPDATE SET state = 'done', status = ?2, reason = ?3, provider_message_id = NULL,
           at_ms = ?4, lock_expires_ms = NULL, retain_until_ms = ?5, attempt = NULL, fingerprint = ?6",
        params![key.as_str(), status.as_str(), reason, at, retain_until, fingerprint],
    )?;
    Ok(())
}

fn parse_status(s: Option<String>) -> Status {
    s.and_then(|s| s.parse().ok()).unwrap_or(Status::Failed)
}

#[async_trait]
impl StateStore for LocalStore {
    async fn admit(&self, a: &Admission) -> Result<Verdict, StoreError> {
        let now = ms(a.now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let decided = |tx: rusqlite::Transaction<'_>, verdict: Verdict| {
                if let Some((status, reason)) = verdict.decided() {
                    let reason = reason.to_string();
                    write_done(
                        &tx,
                        &a.idempotency_key,
                        &a.fingerprint,
                        status,
                        Some(&reason),
                        now,
                        ms(a.retain_until),
                    )?;
                }
                tx.commit()?;
                Ok(verdict)
            };
            // 1. Idempotency first: a request with an outcome keeps it.
            if let Some((state, prior, lock, retain)) = existing(&tx, &a.idempotency_key)?
                && retain > now
            {
                if state == "done" {
                    return Ok(Verdict::Duplicate(prior));
                }
                if let Some(lock) = lock
                    && lock > now
                {
                    return Ok(Verdict::InProgress { until: from_ms(lock) });
                }
                if prior.fingerprint.as_deref() != Some(a.fingerprint.as_str()) {
                    return Ok(Verdict::Undecided);
                }
                // The same message's attempt died: take its lock (and, implicitly, its
                // slots, which stay counted) over, without checking the rails again.
                let attempt = uuid::Uuid::new_v4().to_string();
                tx.execute(
                    "UPDATE idempotency SET at_ms = ?2, lock_expires_ms = ?3, retain_until_ms = ?4, attempt = ?5
                     WHERE key = ?1",
                    params![a.idempotency_key.as_str(), now, ms(a.lock_expires_at), ms(a.retain_until), attempt],
                )?;
                tx.commit()?;
                return Ok(Verdict::Admitted(Lease::takeover(a, attempt)));
            }
            // 2. Suppression.
            let tenant_key = a.tenant_suppression_key.as_ref().map(|k| k.as_str());
            let suppressed: Option<String> = tx
                .query_row(
                    "SELECT reason FROM suppressions WHERE key IN (?1, ?2) ORDER BY key = ?1 DESC LIMIT 1",
                    params![a.suppression_key.as_str(), tenant_key],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(reason) = suppressed {
                let why = reason.parse().unwrap_or(SuppressionReason::Manual);
                return decided(tx, Verdict::Suppressed(why));
            }
            // 3. Consent: a row for the category wins over the catch-all `*`.
            if let Some(check) = &a.consent {
                let rows: Vec<(String, bool)> = {
                    let mut stmt = tx.prepare(
                        "SELECT category, subscribed FROM consent WHERE recipient_key = ?1 AND category IN (?2, '*')",
                    )?;
                    stmt.query_map(params![check.recipient_key.as_str(), check.category], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<Result<_, _>>()?
                };
                let specific = rows.iter().find(|(c, _)| c == &check.category).map(|(_, s)| *s);
                let all = rows.iter().find(|(c, _)| c == "*").map(|(_, s)| *s);
                if specific.or(all) == Some(false) {
                    return decided(tx, Verdict::Unsubscribed { category: check.category.clone() });
                }
            }
            // 4. Caps, all of them, before taking anything. Slots are counted, not
            // pruned here: `now` may be pinned (`--now`) and must not delete real ones.
            for cap in &a.caps {
                let since = now.saturating_sub(cap.window_seconds.saturating_mul(1000));
                let used: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM cap_slots WHERE cap_key = ?1 AND taken_ms > ?2",
                    params![cap.key, since],
                    |r| r.get(0),
                )?;
                if used >= i64::from(cap.limit) {
                    return decided(tx, Verdict::Capped { rule: cap.rule.clone() });
                }
            }
            // 5. Take the lock and the slots.
            let attempt = uuid::Uuid::new_v4().to_string();
            tx.execute(
                "INSERT INTO idempotency (key, state, at_ms, lock_expires_ms, retain_until_ms, attempt, fingerprint)
                 VALUES (?1, 'in_progress', ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (key) DO UPDATE SET state = 'in_progress', status = NULL, reason = NULL,
                   provider_message_id = NULL, at_ms = ?2, lock_expires_ms = ?3, retain_until_ms = ?4,
                   attempt = ?5, fingerprint = ?6",
                params![
                    a.idempotency_key.as_str(),
                    now,
                    ms(a.lock_expires_at),
                    ms(a.retain_until),
                    attempt,
                    a.fingerprint
                ],
            )?;
            let mut slots = Vec::with_capacity(a.caps.len());
            for cap in &a.caps {
                let slot = uuid::Uuid::new_v4().to_string();
                tx.execute(
                    "INSERT INTO cap_slots (cap_key, slot_id, taken_ms) VALUES (?1, ?2, ?3)",
                    params![cap.key, slot, now],
                )?;
                slots.push((cap.key.clone(), slot));
            }
            // Slots out of every window, by the wall clock (never a pinned `now`).
            let real_now = ms(Timestamp::now()).min(now);
            for cap in &a.caps {
                let since = real_now.saturating_sub(cap.window_seconds.saturating_mul(1000));
                tx.execute("DELETE FROM cap_slots WHERE cap_key = ?1 AND taken_ms <= ?2", params![cap.key, since])?;
            }
            tx.commit()?;
            Ok(Verdict::Admitted(Lease { slots, ..Lease::of(a, attempt) }))
        })
    }

    async fn complete(&self, lease: &Lease, done: &Completion) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let owned = tx.execute(
                "UPDATE idempotency SET state = 'done', status = ?2, reason = ?3, provider_message_id = ?4,
                   at_ms = ?5, lock_expires_ms = NULL, retain_until_ms = ?6
                 WHERE key = ?1 AND state = 'in_progress' AND attempt = ?7",
                params![
                    lease.idempotency_key.as_str(),
                    done.status.as_str(),
                    done.reason,
                    done.provider_message_id,
                    ms(done.at),
                    ms(done.retain_until),
                    lease.attempt
                ],
            )?;
            // Slots move with the lock: once taken over, they are the takeover's to release.
            if done.release_slots && owned == 1 {
                for (key, slot) in &lease.slots {
                    tx.execute("DELETE FROM cap_slots WHERE cap_key = ?1 AND slot_id = ?2", params![key, slot])?;
                }
            }
            tx.commit()
        })
    }

    async fn abandon(&self, lease: &Lease, release: Release) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let sql = match release {
                Release::Everything => "DELETE FROM idempotency WHERE key = ?1 AND state = 'in_progress' AND attempt = ?2",
                Release::ForTakeover => {
                    "UPDATE idempotency SET lock_expires_ms = 0 WHERE key = ?1 AND state = 'in_progress' AND attempt = ?2"
                }
            };
            let owned = tx.execute(sql, params![lease.idempotency_key.as_str(), lease.attempt])?;
            if release == Release::Everything && owned == 1 {
                for (key, slot) in &lease.slots {
                    tx.execute("DELETE FROM cap_slots WHERE cap_key = ?1 AND slot_id = ?2", params![key, slot])?;
                }
            }
            tx.commit()
        })
    }

    async fn record(&self, d: &Decision) -> Result<Recorded, StoreError> {
        let now = ms(d.at);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some((state, prior, lock, retain)) = existing(&tx, &d.idempotency_key)?
                && retain > now
            {
                if state == "done" {
                    return Ok(Recorded::Existing(prior));
                }
                if let Some(lock) = lock
                    && lock > now
                {
                    return Ok(Recorded::InProgress { until: from_ms(lock) });
                }
            }
            write_done(
                &tx,
                &d.idempotency_key,
                &d.fingerprint,
                d.status,
                d.reason.as_deref(),
                now,
                ms(d.retain_until),
            )?;
            tx.commit()?;
            Ok(Recorded::Stored)
        })
    }

    async fn suppress(&self, entry: &SuppressionEntry, at: Timestamp) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO suppressions (key, reason, at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET reason = excluded.reason, at_ms = excluded.at_ms",
                params![entry.key.as_str(), entry.reason.as_str(), ms(at)],
            )
            .map(|_| ())
        })
    }

    async fn unsuppress(&self, key: &SuppressionKey) -> Result<bool, StoreError> {
        self.with(|c| c.execute("DELETE FROM suppressions WHERE key = ?1", params![key.as_str()]).map(|n| n > 0))
    }

    async fn set_consent(
        &self,
        recipient_key: &RecipientKey,
        category: &str,
        subscribed: bool,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if category == "*" && subscribed {
                // Resubscribing to everything clears every per-category opt-out too.
                tx.execute("DELETE FROM consent WHERE recipient_key = ?1", params![recipient_key.as_str()])?;
            } else {
                tx.execute(
                    "INSERT INTO consent (recipient_key, category, subscribed, at_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (recipient_key, category) DO UPDATE SET subscribed = excluded.subscribed, at_ms = excluded.at_ms",
                    params![recipient_key.as_str(), category, subscribed, ms(at)],
                )?;
            }
            tx.commit()
        })
    }
}

#[async_trait]
impl Scheduler for LocalStore {
    async fn defer(
        &self,
        request: &DeliveryRequest,
        until: Timestamp,
        attempt: u32,
        source: Option<&str>,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO deferred (due_ms, request, attempt, source) VALUES (?1, ?2, ?3, ?4)",
                params![ms(until), request.to_json(), attempt, source],
            )
            .map(|_| ())
        })
    }
}

#[async_trait]
impl ReceiptSink for LocalStore {
    async fn emit(&self, receipts: &[Receipt]) -> Result<(), EmitError> {
        self.record_receipts(receipts).map_err(|e| EmitError::all(receipts.len(), e.to_string()))
    }
}

#[async_trait]
impl EventStore for LocalStore {
    async fn advance_delivery(
        &self,
        key: &IdempotencyKey,
        kind: EventKind,
        at: Timestamp,
    ) -> Result<Advance, StoreError> {
        let Some(rank) = kind.status_rank() else { return Ok(Advance::Behind) };
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let known: bool = tx
                .query_row("SELECT 1 FROM idempotency WHERE key = ?1", params![key.as_str()], |_| Ok(()))
                .optional()?
                .is_some();
            if !known {
                return Ok(Advance::UnknownRequest);
            }
            let moved = tx.execute(
                "INSERT INTO deliveries (request_key, event, rank, at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (request_key) DO UPDATE SET event = excluded.event, rank = excluded.rank,
                   at_ms = excluded.at_ms WHERE excluded.rank > deliveries.rank",
                params![key.as_str(), kind.as_str(), rank, ms(at)],
            )?;
            tx.commit()?;
            Ok(if moved > 0 { Advance::Moved } else { Advance::Behind })
        })
    }

    async fn request_state(&self, key: &IdempotencyKey) -> Result<Option<RequestState>, StoreError> {
        self.with(|c| {
            // A request held back (quiet hours, send_after, a retry) has no idempotency
            // record yet; its `deferred` receipt, which the embedded store keeps, says so.
            let deferred = |c: &Connection| {
                c.query_row(
                    "SELECT receipt FROM latest_status WHERE request_key = ?1 AND status = 'deferred'",
                    params![key.as_str()],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map(|json| {
                    let receipt: Option<Receipt> = json.and_then(|j| serde_json::from_str(&j).ok());
                    receipt.map(|r| RequestState {
                        status: Some(Status::Deferred),
                        reason: r.reason,
                        provider_message_id: None,
                        at: r.at,
                        delivery: None,
                    })
                })
            };
            let recorded = c
                .query_row(
                    "SELECT i.state, i.status, i.reason, i.provider_message_id, i.at_ms, d.event, d.at_ms
                 FROM idempotency i LEFT JOIN deliveries d ON d.request_key = i.key WHERE i.key = ?1",
                    params![key.as_str()],
                    |r| {
                        let state: String = r.get(0)?;
                        let status: Option<String> = r.get(1)?;
                        let event: Option<String> = r.get(5)?;
                        let event_at: Option<i64> = r.get(6)?;
                        Ok(RequestState {
                            status: if state == "done" { status.and_then(|s| s.parse().ok()) } else { None },
                            reason: r.get(2)?,
                            provider_message_id: r.get(3)?,
                            at: from_ms(r.get(4)?),
                            delivery: event
                                .and_then(|e| e.parse::<EventKind>().ok())
                                .map(|k| (k, from_ms(event_at.unwrap_or(0)))),
                        })
                    },
                )
                .optional()?;
            match recorded {
                Some(state) => Ok(Some(state)),
                None => deferred(c),
            }
        })
    }

    async fn archive_event(&self, event: &DeliveryEvent, raw: &str, retain_until: Timestamp) -> Result<(), StoreError> {
        self.with(|c| {
            // Payloads name addresses: what is past its retention goes (DynamoDB's TTL does
            // the same on AWS).
            c.execute("DELETE FROM event_archive WHERE retain_until_ms <= ?1", params![ms(Timestamp::now())])?;
            c.execute(
                "INSERT OR REPLACE INTO event_archive (event_id, event, raw, retain_until_ms) VALUES (?1, ?2, ?3, ?4)",
                params![event.event_id, event.to_json(), raw, ms(retain_until)],
            )
            .map(|_| ())
        })
    }

    async fn opt_out(&self, key: &SuppressionKey, at: Timestamp) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO suppressions (key, reason, at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE
                 SET at_ms = excluded.at_ms WHERE suppressions.reason = excluded.reason AND suppressions.at_ms < excluded.at_ms",
                params![key.as_str(), SuppressionReason::OptedOut.as_str(), ms(at)],
            )
            .map(|_| ())
        })
    }

    async fn lift_opt_out(&self, key: &SuppressionKey, at: Timestamp) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM suppressions WHERE key = ?1 AND reason = ?2 AND at_ms < ?3",
                params![key.as_str(), SuppressionReason::OptedOut.as_str(), ms(at)],
            )
            .map(|n| n > 0)
        })
    }

    async fn claim(&self, id: &str, now: Timestamp, lock_until: Timestamp) -> Result<Claim, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existing: Option<(bool, i64)> = tx
                .query_row("SELECT done, until_ms FROM claims WHERE id = ?1", params![id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            match existing {
                Some((true, until)) if until > ms(now) => return Ok(Claim::Done),
                Some((false, until)) if until > ms(now) => return Ok(Claim::Busy),
                _ => {}
            }
            tx.execute(
                "INSERT OR REPLACE INTO claims (id, done, until_ms) VALUES (?1, 0, ?2)",
                params![id, ms(lock_until)],
            )?;
            tx.commit()?;
            Ok(Claim::New)
        })
    }

    async fn finish(&self, id: &str, retain_until: Timestamp) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO claims (id, done, until_ms) VALUES (?1, 1, ?2)",
                params![id, ms(retain_until)],
            )
            .map(|_| ())
        })
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        self.with(|c| c.execute("DELETE FROM claims WHERE id = ?1 AND done = 0", params![id]).map(|_| ()))
    }

    async fn disable_endpoint(&self, subscription: &str, at: Timestamp) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO disabled_endpoints (subscription, at_ms) VALUES (?1, ?2)",
                params![subscription, ms(at)],
            )
            .map(|_| ())
        })
    }

    async fn enable_endpoint(&self, subscription: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM disabled_endpoints WHERE subscription = ?1", params![subscription]).map(|n| n > 0)
        })
    }

    async fn disabled_endpoints(&self) -> Result<std::collections::BTreeMap<String, Timestamp>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT subscription, at_ms FROM disabled_endpoints")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, from_ms(r.get(1)?))))?;
            rows.collect()
        })
    }
}
